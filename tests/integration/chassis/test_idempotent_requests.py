"""A route that opts in to `Idempotency-Key` (chassis `respond_idempotently`), on a small app with
a SQLite store: what is replayed (2xx and the route's own 4xx, byte for byte), what releases the
key (5xx, exceptions, a rolled-back transaction), and which header values are refused."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from fastapi import FastAPI, Response
from pydantic import BaseModel, ConfigDict

from msashop.chassis.db import Database
from msashop.chassis.errors import NotFound, UpstreamUnavailable, install_error_handlers
from msashop.chassis.idempotency import IdempotencyStore, fingerprint, metadata
from msashop.chassis.idempotent_requests import (
    REPLAYED_HEADER,
    Idempotency,
    IdempotencyKey,
    Recorder,
    respond_idempotently,
)

app_tables = sa.MetaData()
things = sa.Table("things", app_tables, sa.Column("id", sa.Integer, primary_key=True))


class ThingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    fail: str | None = None  # how the handler should fail this time, if at all


class ThingOut(BaseModel):
    id: int
    name: str


class App:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.runs = 0
        self.failure: str | None = None
        self.app = FastAPI()
        install_error_handlers(self.app)
        self.app.state.idempotency = IdempotencyStore(db)
        self.app.post("/things", response_model=ThingOut, status_code=201)(self.create)

    async def create(self, body: ThingIn, store: Idempotency, key: IdempotencyKey = None) -> Response:
        async def handle(recorder: Recorder) -> ThingOut:
            self.runs += 1
            if self.failure == "404":
                raise NotFound("no such shelf", code="shelf_not_found")
            if self.failure == "503":
                raise UpstreamUnavailable("the shelf service is down")
            if self.failure == "crash":
                raise RuntimeError("bug")
            async with self.db.writing(), self.db.session() as session, session.begin():
                new_id = await session.scalar(sa.insert(things).values().returning(things.c.id))
                answer = ThingOut(id=int(new_id or 0), name=body.name)
                await recorder.record(session, answer)
                if self.failure == "after-record":
                    raise RuntimeError("the commit never happens")
            return answer

        return await respond_idempotently(
            store,
            key,
            scope="u1",
            operation="POST /things",
            fingerprint=fingerprint(body),
            status_code=201,
            handle=handle,
        )


@pytest.fixture
async def shop(tmp_path: Path) -> AsyncIterator[tuple[App, httpx.AsyncClient]]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'app.sqlite'}")
    async with db.engine.begin() as conn:
        await conn.run_sync(metadata.create_all)
        await conn.run_sync(app_tables.create_all)
    app = App(db)
    transport = httpx.ASGITransport(app=app.app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        yield app, client
    await db.dispose()


async def post(client: httpx.AsyncClient, key: str | None = "k1", name: str = "lamp") -> httpx.Response:
    headers = {"Idempotency-Key": key} if key is not None else {}
    return await client.post("/things", json={"name": name}, headers=headers)


async def count(app: App) -> int:
    async with app.db.read() as session:
        return int(await session.scalar(sa.select(sa.func.count()).select_from(things)) or 0)


async def test_without_a_key_every_request_runs(shop: tuple[App, httpx.AsyncClient]) -> None:
    app, client = shop
    first, second = await post(client, None), await post(client, None)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json() != second.json() and await count(app) == 2


async def test_the_replay_is_the_first_answer_byte_for_byte(shop: tuple[App, httpx.AsyncClient]) -> None:
    app, client = shop
    first = await post(client)
    replay = await post(client)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.content == first.content and replay.headers["content-type"] == "application/json"
    assert replay.headers[REPLAYED_HEADER] == "true" and REPLAYED_HEADER.lower() not in first.headers
    assert app.runs == 1 and await count(app) == 1


async def test_the_routes_own_4xx_is_kept_and_replayed(shop: tuple[App, httpx.AsyncClient]) -> None:
    app, client = shop
    app.failure = "404"
    first = await post(client)
    app.failure = None  # the shelf exists now, but this key has its answer
    replay = await post(client)
    assert first.status_code == replay.status_code == 404
    assert first.json()["error"]["code"] == "shelf_not_found" and replay.content == first.content
    assert app.runs == 1


@pytest.mark.parametrize(("failure", "status"), [("503", 503), ("crash", 500), ("after-record", 500)])
async def test_a_failed_request_releases_its_key(
    shop: tuple[App, httpx.AsyncClient], failure: str, status: int
) -> None:
    app, client = shop
    app.failure = failure
    assert (await post(client)).status_code == status
    app.failure = None
    retry = await post(client)
    assert retry.status_code == 201 and REPLAYED_HEADER.lower() not in retry.headers
    assert app.runs == 2 and await count(app) == 1  # the failed attempt left nothing


async def test_another_body_under_the_key_is_422(shop: tuple[App, httpx.AsyncClient]) -> None:
    app, client = shop
    await post(client)
    other = await post(client, name="desk")
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert app.runs == 1


@pytest.mark.parametrize("key", ["", "k" * 201, "has space", "tab\tin", "naïve", "line\x7f"])
async def test_a_key_that_is_empty_too_long_or_not_printable_ascii_is_422(
    shop: tuple[App, httpx.AsyncClient], key: str
) -> None:
    app, client = shop
    response = await client.post(
        "/things", json={"name": "lamp"}, headers=[(b"Idempotency-Key", key.encode())]
    )
    assert response.status_code == 422 and response.json()["error"]["code"] == "validation_error"
    assert app.runs == 0


async def test_a_200_character_key_of_any_printable_ascii_is_fine(
    shop: tuple[App, httpx.AsyncClient],
) -> None:
    _, client = shop
    key = ("!~aZ09-_:." * 20)[:200]
    assert (await post(client, key)).status_code == 201
    assert (await post(client, key)).headers[REPLAYED_HEADER] == "true"
