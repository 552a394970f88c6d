"""deploy/nginx/msashop.conf: nginx accepts it, and run in front of stub services it routes like
the gateway: /api/legacy to the monolith, moved paths to their services, and 10% of catalog
reads to the new product service (writes always), within 3 points over 2,000 requests."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import tomllib
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from tests.conftest import free_port, unavailable, wait_for_port
from tests.integration.deploy.upstream_stubs import stub_upstreams

NGINX_DIR = Path(__file__).resolve().parents[3] / "deploy" / "nginx"
MSASHOP_CONF = NGINX_DIR / "msashop.conf"
LISTEN = "    listen 8080;\n"

WRAPPER = """
worker_processes 1;
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    include {conf};
}}
"""


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        unavailable("nginx is not installed (apt-get install nginx-light)")
        raise AssertionError("unreachable")
    return found


def load_upstreams_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("msashop_nginx_upstreams", NGINX_DIR / "upstreams.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_config(root: Path, urls: dict[str, str], port: int) -> Path:
    """The shipped file as is, but for the port it listens on, in a wrapper of its own; the
    upstreams written by deploy/nginx/upstreams.py from a port map, next to the wrapper (nginx
    reads a relative include from the directory of the main config file)."""
    text = MSASHOP_CONF.read_text()
    assert text.count(LISTEN) == 1
    (root / "msashop.conf").write_text(text.replace(LISTEN, f"    listen 127.0.0.1:{port};\n"))
    (root / "msashop.upstreams.conf").write_text(load_upstreams_script().render(urls))
    wrapper = root / "nginx.conf"
    wrapper.write_text(WRAPPER.format(root=root, conf=root / "msashop.conf"))
    return wrapper


def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    nginx = nginx_binary()
    urls = {name: f"http://127.0.0.1:{9000 + n}" for n, name in enumerate(load_upstreams_script().SERVICES)}
    wrapper = write_config(tmp_path, urls, free_port())
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-c", str(wrapper)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stderr
    assert "syntax is ok" in checked.stderr


def test_every_upstream_the_config_uses_is_shipped_and_generated() -> None:
    used = set(re.findall(r"\bmsashop_(?!catalog)[a-z]+\b", MSASHOP_CONF.read_text()))
    shipped = set(
        re.findall(r"upstream (msashop_[a-z]+)", (NGINX_DIR / "msashop.upstreams.conf").read_text())
    )
    generated = {f"msashop_{name}" for name in load_upstreams_script().SERVICES}
    assert used == shipped == generated


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[str]:
    """nginx with the shipped config in front of one stub per service; its base URL."""
    binary = nginx_binary()
    services = tuple(load_upstreams_script().SERVICES)
    with stub_upstreams(services) as urls:
        port = free_port()
        wrapper = write_config(tmp_path, urls, port)
        process = subprocess.Popen(
            [binary, "-p", str(tmp_path), "-c", str(wrapper), "-g", "daemon off; master_process off;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_for_port(port)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_strangler_split_and_routes(nginx: str) -> None:
    with httpx.Client(base_url=nginx, timeout=5) as client:
        reads = Counter(client.get(f"/api/products/p{n}").json()["service"] for n in range(2000))
        assert set(reads) == {"product", "legacy"}
        share = 100 * reads["product"] / 2000
        assert 7 <= share <= 13, reads

        # Writes go to the owner, every time.
        for method in ("POST", "PUT", "DELETE"):
            for _ in range(20):
                answer = client.request(method, "/api/products/p1").json()
                assert (answer["service"], answer["path"]) == ("product", "/products/p1")

        seen = client.get("/api/legacy/orders/o1?x=1").json()
        assert (seen["service"], seen["path"]) == ("legacy", "/legacy/orders/o1?x=1")
        for path, service in (
            ("/api/orders/o1", "order"),
            ("/api/auth/login", "user"),
            ("/api/users/me", "user"),
            ("/api/inventory/p1", "inventory"),
            ("/api/payments?order_id=o1", "payment"),
            ("/api/notifications", "notification"),
        ):
            answer = client.get(path).json()
            assert (answer["service"], answer["path"]) == (service, path.removeprefix("/api")), path
        assert client.get("/.well-known/jwks.json").json()["path"] == "/.well-known/jwks.json"

        # Identity headers are never a client's to set; a request id is always there.
        headers = client.get("/api/orders/o1", headers={"X-User-Id": "admin"}).json()["headers"]
        assert "x-user-id" not in headers and headers["x-request-id"]
        kept = client.get("/api/orders/o1", headers={"X-Request-Id": "r-1"}).json()["headers"]
        assert kept["x-request-id"] == "r-1"

        missing = client.get("/nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
        assert client.get("/api/productsX").status_code == 404


def test_the_split_is_the_traffic_files() -> None:
    """nginx's share of catalog reads for the product service is the traffic file's weight."""
    traffic = NGINX_DIR.parent / "traffic.example.toml"
    if not traffic.exists():
        pytest.skip("no deploy/traffic.example.toml to compare with")
    rules = {r["name"]: r for r in tomllib.loads(traffic.read_text())["http"]}
    weights = {d["destination"]["host"]: d["weight"] for d in rules["catalog-reads-migration"]["route"]}
    split = re.search(
        r"split_clients\s+\"[^\"]*\"\s+\$\w+\s*\{\s*([\d.]+)%\s+msashop_product;", MSASHOP_CONF.read_text()
    )
    assert split is not None
    assert float(split[1]) == 100 * weights["product"] / sum(weights.values())
