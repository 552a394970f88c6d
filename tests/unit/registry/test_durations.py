import pytest

from msashop.registry.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("10s", 10.0),
        ("1m", 60.0),
        ("1m30s", 90.0),
        ("500ms", 0.5),
        ("1.5s", 1.5),
        ("2h", 7200.0),
        ("250us", 0.00025),
        ("0", 0.0),
    ],
)
def test_go_durations_read_as_seconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_a_json_number_is_nanoseconds_as_in_go() -> None:
    assert parse_duration(10_000_000_000) == 10.0


def test_nothing_is_none() -> None:
    assert parse_duration(None) is None
    assert parse_duration("") is None


@pytest.mark.parametrize("text", ["10", "ten seconds", "-1s", "1x", "s", "1s junk", "1d"])
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(10.0, "10s"), (90.0, "1m30s"), (60.0, "1m0s"), (0.5, "500ms"), (0.0, "0s")]
)
def test_printed_as_go_prints_them(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
    assert parse_duration(text) == seconds
