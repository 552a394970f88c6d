"""Reserve, commit and release as the order saga sends them, through the chassis inbox."""

from msashop.contracts.envelope import deterministic_id
from msashop.contracts.events import CommitStock, OrderLine, ReleaseStock, ReserveStock
from tests.integration.inventory.conftest import Inventory


def _reserve(order_id: str, *lines: tuple[str, int]) -> ReserveStock:
    return ReserveStock(
        order_id=order_id,
        idempotency_key=f"saga-{order_id}:reserve",
        lines=[OrderLine(product_id=p, quantity=q) for p, q in lines],
    )


def _step(order_id: str, step: str) -> str:
    return deterministic_id(f"saga-{order_id}", step)


async def test_product_created_makes_one_stock_row(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.add_product("p1", 99)  # another event for the same product: first one wins
    assert await inventory.level("p1") == (10, 0)


async def test_reserve_holds_stock_and_answers_reserved(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.add_product("p2", 4)
    await inventory.deliver(_reserve("o1", ("p1", 3), ("p2", 4)), event_id=_step("o1", "reserve"))
    assert await inventory.level("p1") == (7, 3)
    assert await inventory.level("p2") == (0, 4)
    [reply] = await inventory.outbox_events()
    assert (reply.type, reply.key, reply.data["order_id"]) == ("inventory.reserved", "o1", "o1")


async def test_the_same_command_delivered_twice_has_one_effect(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    command = _reserve("o1", ("p1", 3))
    await inventory.deliver(command, event_id=_step("o1", "reserve"))
    await inventory.deliver(command, event_id=_step("o1", "reserve"))
    assert await inventory.level("p1") == (7, 3)
    assert [r.type for r in await inventory.outbox_events()] == ["inventory.reserved"]


async def test_a_second_reserve_for_the_order_is_answered_from_the_reservation(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(_reserve("o1", ("p1", 3)), event_id="first")
    await inventory.deliver(_reserve("o1", ("p1", 3)), event_id="retry")
    assert await inventory.level("p1") == (7, 3)
    assert [r.type for r in await inventory.outbox_events()] == ["inventory.reserved", "inventory.reserved"]


async def test_out_of_stock_changes_nothing(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.add_product("p2", 1)
    await inventory.deliver(_reserve("o1", ("p1", 3), ("p2", 2), ("ghost", 1)))
    assert await inventory.level("p1") == (10, 0)
    assert await inventory.level("p2") == (1, 0)
    [reply] = await inventory.outbox_events()
    assert reply.type == "inventory.reservation_failed"
    assert reply.data == {"order_id": "o1", "reason": "out_of_stock", "product_id": "p2"}


async def test_commit_takes_stock_out_for_good(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(_reserve("o1", ("p1", 3)))
    commit = CommitStock(order_id="o1", idempotency_key="saga-o1:commit")
    await inventory.deliver(commit, event_id=_step("o1", "commit"))
    await inventory.deliver(commit, event_id="commit-again")
    assert await inventory.level("p1") == (7, 0)
    assert [r.type for r in await inventory.outbox_events()] == [
        "inventory.reserved",
        "inventory.committed",
        "inventory.committed",
    ]


async def test_commit_without_reservation_is_a_no_op(inventory: Inventory) -> None:
    await inventory.deliver(CommitStock(order_id="o9", idempotency_key="saga-o9:commit"))
    assert await inventory.outbox_events() == []


async def test_release_returns_reserved_stock(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(_reserve("o1", ("p1", 3)))
    await inventory.deliver(ReleaseStock(order_id="o1", idempotency_key="saga-o1:release"))
    assert await inventory.level("p1") == (10, 0)
    await inventory.deliver(ReleaseStock(order_id="o1", idempotency_key="saga-o1:release"))
    assert await inventory.level("p1") == (10, 0)
    assert [r.type for r in await inventory.outbox_events()] == [
        "inventory.reserved",
        "inventory.released",
        "inventory.released",
    ]


async def test_release_after_commit_restores_available(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(_reserve("o1", ("p1", 3)))
    await inventory.deliver(CommitStock(order_id="o1", idempotency_key="k"))
    await inventory.deliver(ReleaseStock(order_id="o1", idempotency_key="k2"))
    assert await inventory.level("p1") == (10, 0)


async def test_reserve_after_release_of_the_same_order_is_refused(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    await inventory.deliver(ReleaseStock(order_id="o1", idempotency_key="saga-o1:release"))
    await inventory.deliver(_reserve("o1", ("p1", 3)))
    assert await inventory.level("p1") == (10, 0)
    replies = await inventory.outbox_events()
    assert [r.type for r in replies] == ["inventory.released", "inventory.reservation_failed"]
    assert replies[-1].data["reason"] == "released"


async def test_replies_carry_the_command_as_cause(inventory: Inventory) -> None:
    await inventory.add_product("p1", 10)
    command = await inventory.deliver(_reserve("o1", ("p1", 1)))
    [reply] = await inventory.outbox_events()
    assert reply.causation_id == command.id and reply.correlation_id == command.correlation_id
    assert reply.source == "inventory"
