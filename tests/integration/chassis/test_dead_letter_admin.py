"""A service's dead letters through its admin API (`/admin/dlq`): a handler that always fails
sends its message to the dead-letter queue after the configured attempts; once the handler is
fixed, a replay has its effect exactly once, and nothing can apply it twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from msashop.chassis.bus.memory import InMemoryBus
from msashop.chassis.bus.nats import NatsJetStreamBus
from msashop.chassis.bus.port import EventBus
from msashop.chassis.service import Service
from msashop.chassis.settings import ServiceSettings
from msashop.chassis.signing import SigningKey
from msashop.chassis.unit_of_work import UnitOfWork
from msashop.contracts.envelope import Envelope

MIGRATIONS = Path(__file__).parent / "migrations"
SUBJECT = "counter.bumped"
counters = sa.table("counters", sa.column("name", sa.String), sa.column("value", sa.Integer))


class FlakyHandler:
    """Counts each message it handles; raises (after writing, so the rollback shows) until fixed."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    async def __call__(self, envelope: Envelope, uow: UnitOfWork) -> None:
        self.calls += 1
        name = str(envelope.data["name"])
        updated = await uow.session.execute(
            sa.update(counters).where(counters.c.name == name).values(value=counters.c.value + 1)
        )
        if updated.rowcount == 0:  # type: ignore[attr-defined]
            await uow.session.execute(sa.insert(counters).values(name=name, value=1))
        if self.broken:
            raise RuntimeError("the handler is broken")


@dataclass
class Running:
    service: Service
    handler: FlakyHandler
    client: httpx.AsyncClient
    admin: dict[str, str]
    customer: dict[str, str]

    async def count(self, name: str) -> int:
        assert self.service.db is not None
        async with self.service.db.session() as session:
            value = await session.scalar(sa.select(counters.c.value).where(counters.c.name == name))
            return int(value or 0)

    async def dead_letters(self) -> list[dict[str, Any]]:
        response = await self.client.get("/admin/dlq", headers=self.admin)
        assert response.status_code == 200, response.text
        letters: list[dict[str, Any]] = response.json()
        return letters

    async def wait_for_dead_letters(self, count: int, within: float = 20.0) -> list[dict[str, Any]]:
        deadline = asyncio.get_running_loop().time() + within
        while len(letters := await self.dead_letters()) < count:
            assert asyncio.get_running_loop().time() < deadline, f"{len(letters)} dead letters, not {count}"
            await asyncio.sleep(0.1)
        return letters

    async def wait_for_count(self, name: str, value: int, within: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + within
        while await self.count(name) != value:
            assert asyncio.get_running_loop().time() < deadline, f"{name} is {await self.count(name)}"
            await asyncio.sleep(0.05)


@pytest.fixture(params=["memory", pytest.param("nats", marks=pytest.mark.nats)])
def bus_factory(request: pytest.FixtureRequest) -> Callable[[], EventBus]:
    """The in-memory fake (inline delivery) and NATS JetStream on a private nats-server."""
    if request.param == "memory":
        return InMemoryBus
    url: str = request.getfixturevalue("nats_server")
    return lambda: NatsJetStreamBus(url)


@pytest.fixture
async def running(tmp_path: Path, bus_factory: Callable[[], EventBus]) -> AsyncIterator[Running]:
    settings = ServiceSettings.load(
        "probe",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'probe.sqlite'}",
        bus_max_attempts=3,
    )
    service = Service(settings, migrations=MIGRATIONS, bus=bus_factory())
    handler = FlakyHandler()
    service.on_message(SUBJECT, handler)
    key = SigningKey.generate()
    service.verifier.set_jwks(key.jwks())
    service.verifier.fetch_jwks = None
    admin_token, _ = key.access_token("admin-1", ("admin",))
    customer_token, _ = key.access_token("user-1", ("customer",))
    async with service.app.router.lifespan_context(service.app):
        transport = httpx.ASGITransport(app=service.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe") as client:
            yield Running(
                service,
                handler,
                client,
                {"Authorization": f"Bearer {admin_token}"},
                {"Authorization": f"Bearer {customer_token}"},
            )


async def poison(running: Running, name: str = "hits") -> Envelope:
    envelope = Envelope(source="test", type=SUBJECT, key=name, data={"name": name})
    assert running.service.bus is not None
    await running.service.bus.publish(envelope)
    return envelope


async def test_a_failing_handler_dead_letters_after_max_attempts_and_a_replay_after_the_fix_applies_once(
    running: Running,
) -> None:
    sent = await poison(running)

    [letter] = await running.wait_for_dead_letters(1)
    assert running.handler.calls == 3
    assert (letter["group"], letter["subject"], letter["attempts"]) == ("probe", SUBJECT, 3)
    assert letter["reason"] == "RuntimeError: the handler is broken"
    assert letter["envelope"]["id"] == sent.id and letter["envelope"]["data"] == {"name": "hits"}
    assert await running.count("hits") == 0  # every failed attempt rolled back

    shown = await running.client.get(f"/admin/dlq/{letter['id']}", headers=running.admin)
    assert shown.status_code == 200 and shown.json() == letter

    running.handler.broken = False  # the fix
    replayed = await running.client.post(f"/admin/dlq/{letter['id']}/replay", headers=running.admin)
    assert replayed.status_code == 200, replayed.text
    assert replayed.json() == {"group": "probe", "replayed": 1, "id": letter["id"]}
    await running.wait_for_count("hits", 1)
    assert await running.dead_letters() == []

    again = await running.client.post(f"/admin/dlq/{letter['id']}/replay", headers=running.admin)
    assert again.status_code == 404 and again.json()["error"]["code"] == "not_found"
    # The same message delivered once more (a duplicate replay) is skipped by the inbox.
    assert running.service.bus is not None
    await running.service.bus.publish(sent)
    await asyncio.sleep(0.5)
    assert await running.count("hits") == 1
    assert running.handler.calls == 4


async def test_replay_all_and_purge_all_handle_every_dead_letter_of_the_service(running: Running) -> None:
    for name in ("a", "b", "c"):
        await poison(running, name)
    letters = await running.wait_for_dead_letters(3)

    purged = await running.client.delete(f"/admin/dlq/{letters[0]['id']}", headers=running.admin)
    assert purged.status_code == 204
    running.handler.broken = False
    replayed = await running.client.post("/admin/dlq/replay", headers=running.admin)
    assert replayed.status_code == 200 and replayed.json() == {"group": "probe", "replayed": 2}
    await running.wait_for_count("c", 1)
    await running.wait_for_count("b", 1)
    assert await running.count("a") == 0
    assert await running.dead_letters() == []

    running.handler.broken = True
    await poison(running, "d")
    await running.wait_for_dead_letters(1)
    cleared = await running.client.delete("/admin/dlq", headers=running.admin)
    assert cleared.status_code == 200 and cleared.json() == {"group": "probe", "purged": 1}
    assert await running.dead_letters() == []
    assert await running.count("d") == 0


async def test_unknown_ids_are_404_and_another_groups_dead_letters_are_invisible(running: Running) -> None:
    bus = running.service.bus
    assert bus is not None

    async def always_fails(envelope: Envelope) -> None:
        raise RuntimeError("other service's bug")

    await bus.subscribe(SUBJECT, "other", always_fails, max_attempts=1)
    await poison(running)
    await running.wait_for_dead_letters(1)
    [theirs] = await bus.dead_letters("other")

    assert [d["group"] for d in await running.dead_letters()] == ["probe"]
    for method, path in [
        ("GET", "/admin/dlq/nope"),
        ("POST", "/admin/dlq/nope/replay"),
        ("DELETE", "/admin/dlq/nope"),
        ("GET", f"/admin/dlq/{theirs.id}"),
        ("POST", f"/admin/dlq/{theirs.id}/replay"),
        ("DELETE", f"/admin/dlq/{theirs.id}"),
    ]:
        response = await running.client.request(method, path, headers=running.admin)
        assert response.status_code == 404, (method, path, response.text)
    assert [d.id for d in await bus.dead_letters("other")] == [theirs.id]


@pytest.mark.parametrize("bus_factory", ["memory"], indirect=True)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/dlq"),
        ("GET", "/admin/dlq/x"),
        ("POST", "/admin/dlq/x/replay"),
        ("POST", "/admin/dlq/replay"),
        ("DELETE", "/admin/dlq/x"),
        ("DELETE", "/admin/dlq"),
    ],
)
async def test_only_an_admin_may_use_the_dead_letter_api(running: Running, method: str, path: str) -> None:
    anonymous = await running.client.request(method, path)
    customer = await running.client.request(method, path, headers=running.customer)
    assert (anonymous.status_code, customer.status_code) == (401, 403)
