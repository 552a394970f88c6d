"""The whole platform, started once per session by the same supervisor users run (`msashop up`).

Tests talk to it only through the gateway, as CONTRACT.md describes; `ShopClient` holds the few
helpers every scenario needs (register and log in, place an order, wait for its end state).

The event bus backend comes from MSASHOP_E2E_BUS (`nats`, the default, `rabbitmq` or `kafka`; a
comma-separated list runs the suite once per backend). Each test is marked `bus_<backend>`:
`MSASHOP_E2E_BUS=kafka pytest tests/e2e/test_checkout.py` runs the checkout tests on Kafka alone.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser

from tests.conftest import free_port, unavailable
from tests.e2e.browser import chromium

ADMIN_EMAIL = "admin@msashop.local"
ADMIN_PASSWORD = "E2e-admin-" + uuid.uuid4().hex[:12]
STARTUP_SECONDS = 120
STOP_SECONDS = 20
TERMINAL = ("CONFIRMED", "CANCELLED")
BUSES = ("nats", "rabbitmq", "kafka")
RABBITMQ = ("127.0.0.1", 5672)
ADDRESS = {
    "name": "E2E Buyer",
    "line1": "1 Test Street",
    "city": "Seoul",
    "postal_code": "04524",
    "country": "KR",
}


class Platform:
    """One `msashop up` process tree on a private port and data dir."""

    def __init__(self, root: Path, config: str = "", args: tuple[str, ...] = ()) -> None:
        self.root = root
        # The platform config file's text (`msashop up --config`); empty: the embedded defaults.
        self.config = config
        self.args = args  # more `msashop up` options, e.g. ("--replicas", "product=3")
        self.data_dir = root / "data"
        self.log_path = root / "supervisor.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ports_file(self) -> Path:
        return self.data_dir / "ports.json"

    @property
    def notification_faults(self) -> Path:
        return self.root / "notification-faults"

    @property
    def order_crash_points(self) -> Path:
        """`before_commit:payment.captured` lines kill the order service there (chassis/crash_points)."""
        return self.root / "order-crash-points"

    def start(self) -> None:
        self.port = free_port()
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("MSASHOP_")}
        env["MSASHOP_ADMIN_PASSWORD"] = ADMIN_PASSWORD
        # Rate limits would throttle the tests' polling and the load scenario; CONTRACT: nothing else changes.
        env["MSASHOP_RATE_LIMITS"] = "off"
        # test_dead_letters.py lists a user here to make their order notifications fail (off: absent).
        env["MSASHOP_NOTIFICATION_FAULT_FILE"] = str(self.notification_faults)
        # test_order_crashes.py arms crash points of the order service here (off: absent or empty).
        env["MSASHOP_ORDER_CRASH_FILE"] = str(self.order_crash_points)
        config: list[str] = []
        if self.config:
            config_file = self.root / "msashop.toml"
            config_file.write_text(self.config)
            config = ["--config", str(config_file)]
        with self.log_path.open("ab") as log:
            log.write(f"\n===== start {self.starts} on port {self.port} =====\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "msashop",
                    "up",
                    "--port",
                    str(self.port),
                    "--data-dir",
                    str(self.data_dir),
                    *config,
                    *self.args,
                ],
                cwd=self.root,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: a leftover tree can be cleaned up
            )
        self._wait_healthy()
        self._wait_stocked()

    def _wait_healthy(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        last: object = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"msashop up exited with {self.process.returncode} before it was healthy")
            try:
                response = httpx.get(f"{self.base_url}/health", timeout=2)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            time.sleep(0.5)
        self.fail(f"GET /health not 200 after {STARTUP_SECONDS} s; last answer: {last}")

    def _wait_stocked(self, within: float = 60.0) -> None:
        """The catalog is seeded through events (product.created -> inventory): on a fresh platform
        stock rows trail /health by however long the broker takes to hand them over (Kafka groups
        join slowly). Tests start once every seeded product has stock."""
        deadline = time.monotonic() + within
        missing: list[str] = ["(catalog not read yet)"]
        while time.monotonic() < deadline:
            try:
                page = httpx.get(f"{self.base_url}/api/products", params={"page_size": 100}, timeout=5)
                ids = [p["id"] for p in page.json()["items"]]
                missing = [
                    pid
                    for pid in ids
                    if httpx.get(f"{self.base_url}/api/inventory/{pid}", timeout=5).status_code != 200
                ]
                if ids and not missing:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        self.fail(f"seeded products without stock after {within} s: {missing[:5]}")

    def stop(self) -> int | None:
        """SIGTERM, as a user's Ctrl-C would; the exit code, or None if it did not stop in time."""
        if self.process is None:
            return 0
        process, self.process = self.process, None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            return process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            return None

    def tail(self, lines: int = 80) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no supervisor output)"

    def fail(self, reason: str) -> None:
        self.stop()
        pytest.fail(f"{reason}\n--- last lines of the supervisor output ---\n{self.tail()}", pytrace=False)


@dataclass
class User:
    id: str
    email: str
    password: str
    token: str
    refresh_token: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class ShopClient:
    """HTTP helpers against the gateway of the platform under test."""

    def __init__(self, platform: Platform) -> None:
        self.platform = platform
        self.admin_password = ADMIN_PASSWORD
        self._admin_token: str | None = None

    @property
    def base_url(self) -> str:
        return self.platform.base_url

    def request(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return httpx.request(method, self.base_url + path, headers=headers, timeout=30, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    # --- users ----------------------------------------------------------------------------------
    def login(self, email: str, password: str) -> dict[str, Any]:
        response = self.post("/api/auth/login", json={"email": email, "password": password})
        assert response.status_code == 200, f"login {email}: {response.status_code} {response.text}"
        tokens: dict[str, Any] = response.json()
        return tokens

    def register_and_login(self, name: str = "E2E Buyer") -> User:
        email = f"e2e-{uuid.uuid4().hex[:12]}@example.com"
        password = "E2e-pass-" + uuid.uuid4().hex[:10]
        response = self.post("/api/auth/register", json={"email": email, "password": password, "name": name})
        assert response.status_code == 201, f"register: {response.status_code} {response.text}"
        tokens = self.login(email, password)
        token = tokens["access_token"]
        return User(
            id=response.json()["id"],
            email=email,
            password=password,
            token=token,
            refresh_token=tokens.get("refresh_token", ""),
            headers={"Authorization": f"Bearer {token}"},
        )

    def admin_token(self) -> str:
        if self._admin_token is None:
            self._admin_token = self.login(ADMIN_EMAIL, self.admin_password)["access_token"]
        return self._admin_token

    # --- catalog and stock ------------------------------------------------------------------------
    def products(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            response = self.get("/api/products", params={"page": page, "page_size": 100})
            assert response.status_code == 200, f"products: {response.status_code} {response.text}"
            body = response.json()
            items += body["items"]
            if len(items) >= body["total"] or not body["items"]:
                return items
            page += 1

    def inventory(self, product_id: str) -> dict[str, Any]:
        response = self.get(f"/api/inventory/{product_id}")
        assert response.status_code == 200, f"inventory {product_id}: {response.status_code} {response.text}"
        stock: dict[str, Any] = response.json()
        return stock

    def products_in_stock(self, count: int, at_least: int = 20) -> list[dict[str, Any]]:
        """`count` catalog products with at least `at_least` available, with their stock now."""
        chosen = []
        for product in self.products():
            stock = self.inventory(product["id"])
            if stock["available"] >= at_least:
                chosen.append({**product, "stock": stock})
                if len(chosen) == count:
                    return chosen
        raise AssertionError(f"fewer than {count} products with {at_least} in stock")

    def wait_for_stock(
        self, product_id: str, available: int, reserved: int, within: float = 5.0
    ) -> dict[str, Any]:
        """Poll until the stock reads as expected (reads may trail the order status a little)."""
        deadline = time.monotonic() + within
        while True:
            stock = self.inventory(product_id)
            if (stock["available"], stock["reserved"]) == (
                available,
                reserved,
            ) or time.monotonic() > deadline:
                return stock
            time.sleep(0.2)

    # --- orders -----------------------------------------------------------------------------------
    def order_body(self, items: list[tuple[str, int]], payment_token: str = "tok_visa") -> dict[str, Any]:
        return {
            "items": [{"product_id": pid, "quantity": qty} for pid, qty in items],
            "payment": {"token": payment_token},
            "shipping_address": ADDRESS,
        }

    def place_order(
        self,
        token: str,
        items: list[tuple[str, int]],
        payment_token: str = "tok_visa",
        key: str | None = None,
    ) -> httpx.Response:
        return self.post(
            "/api/orders",
            token=token,
            json=self.order_body(items, payment_token),
            headers={"Idempotency-Key": key or uuid.uuid4().hex},
        )

    def checkout(
        self, token: str, items: list[tuple[str, int]], payment_token: str = "tok_visa"
    ) -> dict[str, Any]:
        """Place an order, expect 202 PENDING, and return its end state."""
        response = self.place_order(token, items, payment_token)
        assert response.status_code == 202, f"POST /api/orders: {response.status_code} {response.text}"
        assert response.json()["status"] == "PENDING", response.text
        return self.wait_for_status(response.json()["id"], token)

    def wait_for_status(
        self, order_id: str, token: str, until: tuple[str, ...] = TERMINAL, within: float = 60.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        last: object = None
        while time.monotonic() < deadline:
            try:
                response = self.get(f"/api/orders/{order_id}", token=token)
            except httpx.TransportError as exc:  # the gateway may be restarting
                last = repr(exc)
                time.sleep(0.25)
                continue
            if response.status_code == 200:
                last = response.json()
                if last["status"] in until:  # type: ignore[index]
                    return last  # type: ignore[return-value]
            else:
                last = f"{response.status_code} {response.text[:300]}"
            time.sleep(0.25)
        raise AssertionError(f"order {order_id} not in {until} after {within} s; last answer: {last}")

    def notifications(self, token: str) -> list[dict[str, Any]]:
        response = self.get("/api/notifications", token=token)
        assert response.status_code == 200, f"notifications: {response.status_code} {response.text}"
        body = response.json()
        assert isinstance(body, list), f"CONTRACT: GET /api/notifications is a list, got {body!r}"
        return body

    def wait_for_notification(
        self, token: str, order_id: str, kind: str, within: float = 5.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + within
        seen: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            seen = self.notifications(token)
            for note in seen:
                if note.get("order_id") == order_id and note.get("type") == kind:
                    return note
            time.sleep(0.2)
        raise AssertionError(f"no {kind} notification for {order_id} within {within} s; have {seen}")

    def payments(self, order_id: str, token: str) -> list[dict[str, Any]]:
        response = self.get("/api/payments", token=token, params={"order_id": order_id})
        assert response.status_code == 200, f"payments: {response.status_code} {response.text}"
        body = response.json()
        assert isinstance(body, list), f"CONTRACT: GET /api/payments is a list, got {body!r}"
        return body


def e2e_buses() -> list[str]:
    """The backends named by MSASHOP_E2E_BUS, default nats."""
    names = [b.strip() for b in os.environ.get("MSASHOP_E2E_BUS", "nats").split(",") if b.strip()]
    unknown = sorted(set(names) - set(BUSES))
    if unknown or not names:
        raise pytest.UsageError(f"MSASHOP_E2E_BUS={','.join(names)}: use one or more of {', '.join(BUSES)}")
    return names


def _rabbitmqctl(*args: str) -> None:
    done = subprocess.run(["rabbitmqctl", *args], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        unavailable(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip() or done.stdout.strip()}")


@contextmanager
def rabbitmq_vhost() -> Iterator[str]:
    """A fresh vhost on the machine's RabbitMQ, so the fixed exchange names never collide with
    another run's; its amqp:// URL. Deleted afterwards with everything in it."""
    try:
        socket.create_connection(RABBITMQ, timeout=2).close()
    except OSError as exc:
        unavailable(f"RabbitMQ is not reachable at {RABBITMQ[0]}:{RABBITMQ[1]}: {exc}")
    if shutil.which("rabbitmqctl") is None:
        unavailable("rabbitmqctl is not installed: cannot create a vhost for the e2e platform")
    vhost = f"msashop-e2e-{uuid.uuid4().hex[:12]}"
    _rabbitmqctl("add_vhost", vhost)
    try:
        _rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield f"amqp://guest:guest@{RABBITMQ[0]}:{RABBITMQ[1]}/{vhost}"
    finally:
        subprocess.run(["rabbitmqctl", "delete_vhost", vhost], capture_output=True, timeout=60)


@contextmanager
def bus_config(bus: str) -> Iterator[str]:
    """The `[bus]` section of the platform config file for `bus`."""
    if bus == "rabbitmq":
        with rabbitmq_vhost() as url:
            yield f'[bus]\nurl = "{url}"\n'
    elif bus == "kafka":
        yield '[bus]\nbackend = "kafka"\n'  # the supervisor starts Tansu
    else:
        yield ""  # the embedded nats-server


@pytest.fixture(
    scope="session",
    params=[pytest.param(bus, marks=getattr(pytest.mark, f"bus_{bus}")) for bus in e2e_buses()],
)
def bus(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory, bus: str) -> Iterator[Platform]:
    with bus_config(bus) as config:
        platform = Platform(tmp_path_factory.mktemp(f"platform-{bus}"), config)
        platform.start()
        yield platform
        code = platform.stop()  # before the vhost goes
    assert code == 0, f"msashop up exited with {code} after SIGTERM\n{platform.tail()}"


@pytest.fixture(scope="session")
def shop(platform: Platform) -> ShopClient:
    return ShopClient(platform)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium (tests/e2e/browser.py), for the browser tests."""
    yield from chromium()


@pytest.fixture
def buyer(shop: ShopClient) -> User:
    return shop.register_and_login()
