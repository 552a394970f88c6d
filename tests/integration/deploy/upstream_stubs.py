"""Tiny HTTP upstreams for the deploy tests: each answers JSON naming itself, with the method,
path and headers it received, so a test can see where a proxy sent a request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def _handler(name: str) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as nginx's upstream keepalive expects
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stall

        def _answer(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            if length:
                self.rfile.read(length)
            body = json.dumps(
                {
                    "service": name,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                }
            ).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _answer

        def log_message(self, format: str, *args: object) -> None:
            return None

    return Echo


@contextmanager
def stub_upstreams(names: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """One echo server per name on a free port; yields `{name: "http://127.0.0.1:port"}`."""
    servers = {name: ThreadingHTTPServer(("127.0.0.1", 0), _handler(name)) for name in names}
    threads = [threading.Thread(target=s.serve_forever, args=(0.05,), daemon=True) for s in servers.values()]
    for thread in threads:
        thread.start()
    try:
        yield {name: f"http://127.0.0.1:{s.server_address[1]}" for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.shutdown()
            server.server_close()
