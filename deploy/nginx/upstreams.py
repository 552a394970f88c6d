"""Write msashop.upstreams.conf for nginx from a port map (`<data-dir>/ports.json` of `msashop up`).

    python deploy/nginx/upstreams.py .msashop/ports.json > /etc/nginx/msashop.upstreams.conf

The port map is `{service: url | [url, ...]}`; every url becomes a server of that service's
upstream (replicas included), with the same limits as the shipped msashop.upstreams.conf.
Standard library only, so it runs anywhere nginx does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from urllib.parse import urlsplit

# The upstreams msashop.conf proxies to.
SERVICES = ("user", "product", "inventory", "order", "payment", "notification", "legacy")
SERVER_OPTIONS = "max_fails=5 fail_timeout=30s max_conns=100"


def render(port_map: dict[str, str | list[str]], services: tuple[str, ...] = SERVICES) -> str:
    blocks = []
    for service in services:
        urls = port_map.get(service)
        if not urls:
            raise SystemExit(f"{service}: not in the port map (is it running?)")
        servers = [urls] if isinstance(urls, str) else urls
        lines = [f"upstream msashop_{service} {{"]
        lines += [f"    server {urlsplit(url).netloc} {SERVER_OPTIONS};" for url in servers]
        lines += ["    keepalive 32;", "}"]
        blocks.append("\n".join(lines))
    return "\n".join(blocks) + "\n"


def main(argv: list[str]) -> None:
    if len(argv) != 2:
        raise SystemExit("usage: upstreams.py <data-dir>/ports.json")
    sys.stdout.write(render(json.loads(Path(argv[1]).read_text())))


if __name__ == "__main__":
    main(sys.argv)
