"""What the gateway costs: the same upstream called directly, through our gateway, through nginx.

    .venv/bin/python bench/gateway.py [--seconds 10] [--connections 32] [--json out.json]

Starts one upstream (a minimal uvicorn + httptools app answering GET /products with a fixed
~1 KB JSON body), our gateway (`msashop serve gateway`, the port map pointing `product` at the
upstream), and nginx from Debian configured the same way (`/api/products` -> the upstream,
keepalive to it); then drives each with wrk (also from Debian) for the same time and
connections, and prints requests/second and p50/p99 latency for each, plus the ratios.
Installs nginx-light and wrk with apt-get when they are missing. Not a test: a measurement.
On this 2-core machine wrk, the proxy and the upstream share the cores, so the numbers compare
the three paths with each other; they are not what the gateway does on dedicated hardware.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

UPSTREAM_APP = """
import json
BODY = json.dumps({"items": [{"id": f"p{n}", "name": f"Product {n}", "price": 9.99} for n in range(12)],
                   "total": 12, "page": 1, "page_size": 20}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": BODY})
"""

NGINX_CONF = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    upstream product {{
        server 127.0.0.1:{upstream};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location /api/products {{
            rewrite ^/api(/.*)$ $1 break;
            proxy_pass http://product;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Request-Id $request_id;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_connect_timeout 2s;
            proxy_read_timeout 15s;
        }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ok(url: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {within} s")


def ensure_tools() -> None:
    missing = [pkg for tool, pkg in (("nginx", "nginx-light"), ("wrk", "wrk")) if not _which(tool)]
    if missing:
        print(f"installing {', '.join(missing)} from Debian...", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=True, stdout=subprocess.DEVNULL)


def _which(tool: str) -> str | None:
    return shutil.which(tool) or next(
        (p for p in (f"/usr/sbin/{tool}", f"/usr/bin/{tool}") if os.path.exists(p)), None
    )


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    done = subprocess.run(
        [_which("wrk") or "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        check=True,
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50_ms": _latency(out, "50%"),
        "p99_ms": _latency(out, "99%"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def _latency(out: str, label: str) -> float:
    found = re.search(rf"^\s+{re.escape(label)}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    if not found:
        raise SystemExit(f"no {label} latency in wrk's output:\n{out}")
    value, unit = float(found.group(1)), found.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--gateway-workers", type=int, default=1, help="MSASHOP_GATEWAY_WORKERS")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    ensure_tools()
    root = Path(tempfile.mkdtemp(prefix="msashop-bench-gateway-"))
    for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi", "data"):
        (root / sub).mkdir()
    upstream_port, gateway_port, nginx_port = free_port(), free_port(), free_port()
    (root / "upstream_app.py").write_text(textwrap.dedent(UPSTREAM_APP))
    (root / "data" / "ports.json").write_text(json.dumps({"product": f"http://127.0.0.1:{upstream_port}"}))
    (root / "nginx.conf").write_text(NGINX_CONF.format(root=root, upstream=upstream_port, port=nginx_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
    env.update(
        MSASHOP_GATEWAY_PORT=str(gateway_port),
        MSASHOP_GATEWAY_DATA_DIR=str(root / "data"),
        MSASHOP_GATEWAY_PORTS_FILE=str(root / "data" / "ports.json"),
        MSASHOP_GATEWAY_LOG_LEVEL="WARNING",
        MSASHOP_RATE_LIMITS="off",
        MSASHOP_GATEWAY_WORKERS=str(args.gateway_workers),
    )
    uvicorn = [sys.executable, "-m", "uvicorn", "upstream_app:app", "--port", str(upstream_port)]
    uvicorn += ["--loop", "uvloop", "--http", "httptools", "--log-level", "warning", "--no-access-log"]
    processes = [
        subprocess.Popen(uvicorn, cwd=root),
        subprocess.Popen([sys.executable, "-m", "msashop", "serve", "gateway"], env=env, cwd=root),
        subprocess.Popen([_which("nginx") or "nginx", "-c", str(root / "nginx.conf"), "-g", "daemon off;"]),
    ]
    try:
        paths = {
            "direct": f"http://127.0.0.1:{upstream_port}/products",
            "gateway": f"http://127.0.0.1:{gateway_port}/api/products",
            "nginx": f"http://127.0.0.1:{nginx_port}/api/products",
        }
        for url in paths.values():
            wait_ok(url)
        results: dict[str, dict[str, float]] = {}
        for name, url in paths.items():
            wrk(url, 2, args.connections)  # warm-up: pools, JIT-free but caches and connections
            results[name] = wrk(url, args.seconds, args.connections)
            r = results[name]
            print(f"{name:8} {r['rps']:9.0f} req/s   p50 {r['p50_ms']:7.2f} ms   p99 {r['p99_ms']:7.2f} ms"
                  f"   non-2xx {r['non_2xx']:.0f}", flush=True)  # fmt: skip
        gateway, nginx, direct = results["gateway"], results["nginx"], results["direct"]
        summary = {
            "results": results,
            "gateway_vs_nginx_throughput": round(gateway["rps"] / nginx["rps"], 2),
            "gateway_added_p50_ms": round(gateway["p50_ms"] - direct["p50_ms"], 2),
            "nginx_added_p50_ms": round(nginx["p50_ms"] - direct["p50_ms"], 2),
            "connections": args.connections,
            "gateway_workers": args.gateway_workers,
            "seconds": args.seconds,
        }
        print(json.dumps({k: v for k, v in summary.items() if k != "results"}))
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2))
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
