"""The order saga resends a command it got no answer to: a new envelope id, the same idempotency
key. Commit and release answer every resend again, and change the stock once."""

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import CommitStock, OrderLine, ReleaseStock, ReserveStock
from tests.integration.inventory.conftest import Inventory


async def _reserved(inventory: Inventory, order_id: str = "o1", quantity: int = 3) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(
        ReserveStock(
            order_id=order_id,
            idempotency_key=f"saga-{order_id}:reserve",
            lines=[OrderLine(product_id="p1", quantity=quantity)],
        )
    )


async def test_a_resent_commit_answers_committed_again_and_commits_once(inventory: Inventory) -> None:
    await _reserved(inventory)
    commit = CommitStock(order_id="o1", idempotency_key="saga-o1:commit")
    sent = [await inventory.deliver(commit, event_id=f"commit-{n}") for n in (1, 2, 3)]
    assert await inventory.level("p1") == (7, 0)
    replies = [r for r in await inventory.outbox_events() if r.type == "inventory.committed"]
    assert [r.causation_id for r in replies] == [c.id for c in sent]
    assert [r.id for r in replies] == [
        deterministic_id("inventory", c.id, "inventory.committed") for c in sent
    ]
    assert all(r.data == {"order_id": "o1"} and r.key == "o1" for r in replies)


async def test_a_resent_release_answers_released_again_and_releases_once(inventory: Inventory) -> None:
    await _reserved(inventory)
    release = ReleaseStock(order_id="o1", idempotency_key="saga-o1:release")
    sent = [await inventory.deliver(release, event_id=f"release-{n}") for n in (1, 2)]
    assert await inventory.level("p1") == (10, 0)
    replies = [r for r in await inventory.outbox_events() if r.type == "inventory.released"]
    assert [r.causation_id for r in replies] == [c.id for c in sent]
    assert len({r.id for r in replies}) == 2


async def test_a_resent_release_of_a_committed_order_restores_the_stock_once(inventory: Inventory) -> None:
    await _reserved(inventory)
    await inventory.deliver(CommitStock(order_id="o1", idempotency_key="saga-o1:commit"))
    release = ReleaseStock(order_id="o1", idempotency_key="saga-o1:release")
    for n in (1, 2, 3):
        await inventory.deliver(release, event_id=f"release-{n}")
    assert await inventory.level("p1") == (10, 0)
    assert [r.type for r in await inventory.outbox_events()] == [
        "inventory.reserved",
        "inventory.committed",
        *3 * ["inventory.released"],
    ]


async def test_a_resent_release_of_an_order_never_reserved_still_answers(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    release = ReleaseStock(order_id="o1", idempotency_key="saga-o1:release")
    await inventory.deliver(release, event_id="release-1")
    await inventory.deliver(release, event_id="release-2")
    assert await inventory.level("p1") == (10, 0)
    assert [r.type for r in await inventory.outbox_events()] == 2 * ["inventory.released"]
