import pytest

from msashop.services.inventory.domain import (
    InvalidStock,
    Line,
    OutOfStock,
    Reservation,
    ReservationStatus,
    Stock,
    merge_lines,
)


def _stock(**levels: int) -> dict[str, Stock]:
    return {pid: Stock(pid, available) for pid, available in levels.items()}


def test_reserve_holds_every_line() -> None:
    stock = _stock(a=5, b=3)
    reservation = Reservation.place("o1", [Line("a", 2), Line("b", 3)], stock)
    assert reservation.status is ReservationStatus.RESERVED
    assert (stock["a"].available, stock["a"].reserved) == (3, 2)
    assert (stock["b"].available, stock["b"].reserved) == (0, 3)


def test_reserve_is_all_or_nothing_and_names_the_first_short_product() -> None:
    stock = _stock(a=5, b=1, c=0)
    with pytest.raises(OutOfStock) as raised:
        Reservation.place("o1", [Line("a", 2), Line("b", 2), Line("c", 1)], stock)
    assert raised.value.product_id == "b"
    assert [(s.available, s.reserved) for s in stock.values()] == [(5, 0), (1, 0), (0, 0)]


def test_unknown_product_is_out_of_stock() -> None:
    with pytest.raises(OutOfStock) as raised:
        Reservation.place("o1", [Line("ghost", 1)], _stock(a=5))
    assert raised.value.product_id == "ghost"


def test_repeated_product_lines_are_added_before_checking() -> None:
    stock = _stock(a=3)
    with pytest.raises(OutOfStock):
        Reservation.place("o1", [Line("a", 2), Line("a", 2)], stock)
    assert merge_lines([Line("a", 2), Line("b", 1), Line("a", 1)]) == [Line("a", 3), Line("b", 1)]


@pytest.mark.parametrize("quantity", [0, -1])
def test_quantity_must_be_positive(quantity: int) -> None:
    with pytest.raises(InvalidStock):
        Reservation.place("o1", [Line("a", quantity)], _stock(a=5))


def test_commit_keeps_available_reduced_and_empties_reserved() -> None:
    stock = _stock(a=5)
    reservation = Reservation.place("o1", [Line("a", 2)], stock)
    assert reservation.commit(stock) is True
    assert reservation.status is ReservationStatus.COMMITTED
    assert (stock["a"].available, stock["a"].reserved) == (3, 0)
    assert reservation.commit(stock) is False
    assert (stock["a"].available, stock["a"].reserved) == (3, 0)


def test_release_of_a_reservation_gives_the_quantity_back() -> None:
    stock = _stock(a=5)
    reservation = Reservation.place("o1", [Line("a", 2)], stock)
    assert reservation.release(stock) is True
    assert (stock["a"].available, stock["a"].reserved) == (5, 0)
    assert reservation.release(stock) is False
    assert (stock["a"].available, stock["a"].reserved) == (5, 0)


def test_release_after_commit_restores_available() -> None:
    stock = _stock(a=5)
    reservation = Reservation.place("o1", [Line("a", 2)], stock)
    reservation.commit(stock)
    assert reservation.release(stock) is True
    assert reservation.status is ReservationStatus.RELEASED
    assert (stock["a"].available, stock["a"].reserved) == (5, 0)


def test_a_released_reservation_cannot_be_committed() -> None:
    stock = _stock(a=5)
    reservation = Reservation.place("o1", [Line("a", 2)], stock)
    reservation.release(stock)
    assert reservation.commit(stock) is False
    assert reservation.status is ReservationStatus.RELEASED


def test_release_before_reserve_records_an_empty_released_reservation() -> None:
    reservation = Reservation.released_before_reserved("o1")
    assert reservation.status is ReservationStatus.RELEASED and reservation.lines == []


def test_stock_is_never_negative() -> None:
    with pytest.raises(InvalidStock):
        Stock("a", available=-1)
    with pytest.raises(InvalidStock):
        Stock("a", available=1, reserved=-1)
    item = Stock("a", available=1, reserved=1)
    with pytest.raises(InvalidStock):
        item.settle(2)
    assert (item.available, item.reserved) == (1, 1)
    with pytest.raises(InvalidStock):
        item.restock(-5)
    assert item.available == 1
