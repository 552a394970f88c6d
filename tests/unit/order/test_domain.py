"""The order's rules and the saga's step log, without I/O."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from msashop.services.order.domain import (
    CatalogEntry,
    InvalidOrder,
    InvalidTransition,
    Order,
    OrderLine,
    OrderStatus,
    Saga,
    SagaStatus,
    ShippingAddress,
    Step,
    StepStatus,
    UnknownProducts,
    merge_items,
    money,
    place_order,
)

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
LATER = NOW + timedelta(seconds=30)
ADDRESS = ShippingAddress(name="Ada", line1="1 Loop St", city="Leeds", postal_code="LS1", country="GB")
CATALOG = {
    "p1": CatalogEntry("p1", "Mouse", Decimal("19.99"), "USD"),
    "p2": CatalogEntry("p2", "Pen", Decimal("0.10"), "USD"),
}


def _order(**quantities: int) -> Order:
    return place_order(
        order_id="o1",
        user_id="u1",
        quantities=quantities or {"p1": 1},
        catalog=CATALOG,
        shipping_address=ADDRESS,
        now=NOW,
    )


def test_total_is_the_sum_of_line_totals_to_the_cent() -> None:
    order = _order(p1=3, p2=7)
    assert [line.line_total for line in order.lines] == [Decimal("59.97"), Decimal("0.70")]
    assert order.total == Decimal("60.67")
    assert order.currency == "USD" and order.status is OrderStatus.PENDING


def test_total_adds_the_shipping_cost_to_the_items_subtotal() -> None:
    order = _order(p1=3, p2=7)
    assert order.shipping_cost == Decimal("0.00")  # nothing added yet
    order.add_shipping(Decimal("4.995"), "USD")
    assert (order.subtotal, order.shipping_cost, order.total) == (
        Decimal("60.67"),
        Decimal("5.00"),  # to the cent, half up
        Decimal("65.67"),
    )


@pytest.mark.parametrize(("cost", "currency"), [(Decimal("-0.01"), "USD"), (Decimal("5"), "EUR")])
def test_a_negative_shipping_cost_or_another_currency_is_refused(cost: Decimal, currency: str) -> None:
    order = _order()
    with pytest.raises(InvalidOrder):
        order.add_shipping(cost, currency)
    assert order.total == Decimal("19.99")


def test_money_rounds_half_up_from_floats_without_binary_noise() -> None:
    assert money(19.99) == Decimal("19.99")
    assert money("0.005") == Decimal("0.01")


def test_duplicate_products_merge_into_one_line_in_first_seen_order() -> None:
    assert merge_items([("p2", 1), ("p1", 2), ("p2", 3)]) == {"p2": 4, "p1": 2}


def test_merged_quantity_above_the_limit_is_refused() -> None:
    with pytest.raises(InvalidOrder):
        merge_items([("p1", 60), ("p1", 41)])


@pytest.mark.parametrize("items", [[], [(f"p{i}", 1) for i in range(51)], [("p1", 0)]])
def test_line_count_and_quantity_bounds(items: list[tuple[str, int]]) -> None:
    with pytest.raises(InvalidOrder):
        merge_items(items)


def test_unknown_products_are_named() -> None:
    with pytest.raises(UnknownProducts) as caught:
        _order(p1=1, nope=2, gone=1)
    assert caught.value.product_ids == ["nope", "gone"]


def test_products_in_two_currencies_cannot_share_an_order() -> None:
    catalog = {**CATALOG, "p3": CatalogEntry("p3", "Euro thing", Decimal("5"), "EUR")}
    with pytest.raises(InvalidOrder):
        place_order(
            order_id="o1",
            user_id="u1",
            quantities={"p1": 1, "p3": 1},
            catalog=catalog,
            shipping_address=ADDRESS,
            now=NOW,
        )


def test_a_line_needs_a_positive_price() -> None:
    with pytest.raises(InvalidOrder):
        OrderLine("p1", "Free", 1, Decimal("0"))


def test_country_must_be_two_letters() -> None:
    with pytest.raises(InvalidOrder):
        ShippingAddress(name="A", line1="B", city="C", postal_code="D", country="GBR")


def test_pending_order_confirms() -> None:
    order = _order()
    order.confirm(LATER)
    assert order.status is OrderStatus.CONFIRMED and order.updated_at == LATER
    assert order.can_cancel


def test_only_a_pending_order_confirms() -> None:
    order = _order()
    order.cancel("timeout", LATER)
    with pytest.raises(InvalidTransition):
        order.confirm(LATER)


@pytest.mark.parametrize("confirm_first", [False, True])
def test_pending_or_confirmed_order_cancels_with_a_reason(confirm_first: bool) -> None:
    order = _order()
    if confirm_first:
        order.confirm(NOW)
    order.cancel("cancelled_by_user", LATER)
    assert order.status is OrderStatus.CANCELLED and order.status_reason == "cancelled_by_user"
    assert not order.can_cancel


def test_cancelled_order_cannot_cancel_again() -> None:
    order = _order()
    order.cancel("out_of_stock", LATER)
    with pytest.raises(InvalidTransition):
        order.cancel("cancelled_by_user", LATER)
    assert order.status_reason == "out_of_stock"


def test_as_placed_is_the_first_answer_whatever_happened_since() -> None:
    order = _order()
    order.confirm(LATER)
    placed = order.as_placed()
    assert (placed.status, placed.status_reason, placed.updated_at) == (OrderStatus.PENDING, None, NOW)
    assert order.status is OrderStatus.CONFIRMED


def _saga() -> Saga:
    return Saga.start("s1", "o1", "tok_visa", NOW, timedelta(seconds=300))


def test_saga_starts_waiting_for_the_reservation_with_its_deadline() -> None:
    saga = _saga()
    assert saga.status is SagaStatus.RUNNING and saga.step is Step.RESERVE_INVENTORY
    assert [(s.name, s.status) for s in saga.steps] == [
        (Step.CREATE_ORDER, StepStatus.COMPLETED),
        (Step.RESERVE_INVENTORY, StepStatus.RUNNING),
    ]
    assert saga.deadline_at == NOW + timedelta(seconds=300)


def test_a_reply_closes_its_waiting_step_once() -> None:
    saga = _saga()
    assert saga.finish(Step.RESERVE_INVENTORY, LATER)
    assert not saga.finish(Step.RESERVE_INVENTORY, LATER)  # the duplicate
    assert saga.steps[-1].status is StepStatus.COMPLETED and saga.steps[-1].finished_at == LATER


def test_a_refusal_fails_the_step_with_its_error() -> None:
    saga = _saga()
    saga.finish(Step.RESERVE_INVENTORY, LATER, error="out_of_stock")
    assert (saga.steps[-1].status, saga.steps[-1].error) == (StepStatus.FAILED, "out_of_stock")


def test_completing_the_saga_forgets_the_payment_token() -> None:
    saga = _saga()
    saga.complete(LATER)
    assert saga.status is SagaStatus.COMPLETED and saga.payment_token is None


def test_compensating_a_running_saga_fails_it_and_logs_the_compensations() -> None:
    saga = _saga()
    saga.begin(Step.PROCESS_PAYMENT, NOW)
    assert saga.charge_requested
    saga.compensate([Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY], LATER)
    assert saga.status is SagaStatus.FAILED and saga.payment_token is None
    assert [s.name for s in saga.steps[-2:]] == [Step.REFUND_PAYMENT, Step.RELEASE_INVENTORY]


def test_compensating_a_completed_saga_keeps_it_completed() -> None:
    saga = _saga()
    saga.complete(NOW)
    saga.compensate([Step.RELEASE_INVENTORY], LATER)
    assert saga.status is SagaStatus.COMPLETED
