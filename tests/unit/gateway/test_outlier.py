"""Outlier detection: eject after 5 consecutive failures, come back after the time, longer each time."""

from msashop.chassis.discovery import Instance
from msashop.gateway.outlier import OutlierDetector
from msashop.gateway.traffic import OutlierDetection


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _instances(n: int) -> list[Instance]:
    return [Instance(f"p-{i}", "product", f"http://h{i}") for i in range(1, n + 1)]


def _detector(n: int = 4, **policy: object) -> tuple[OutlierDetector, Clock, list[Instance]]:
    clock, instances = Clock(), _instances(n)
    detector = OutlierDetector(OutlierDetection.model_validate(policy), clock)
    detector.seen(instances)
    return detector, clock, instances


def _fail(detector: OutlierDetector, instance_id: str, times: int) -> list[bool]:
    return [detector.record(instance_id, failed=True) for _ in range(times)]


def test_five_consecutive_failures_eject_the_instance() -> None:
    detector, _, instances = _detector()
    assert _fail(detector, "p-1", 5) == [False, False, False, False, True]
    assert [i.id for i in detector.available(instances)] == ["p-2", "p-3", "p-4"]


def test_a_success_resets_the_streak() -> None:
    detector, _, instances = _detector()
    _fail(detector, "p-1", 4)
    detector.record("p-1", failed=False)
    assert _fail(detector, "p-1", 4) == [False] * 4
    assert detector.available(instances) == instances


def test_the_instance_returns_after_the_base_ejection_time() -> None:
    detector, clock, instances = _detector()
    _fail(detector, "p-1", 5)
    clock.now += 29.9
    assert detector.is_ejected("p-1")
    clock.now += 0.1
    assert not detector.is_ejected("p-1")
    assert detector.available(instances) == instances


def test_each_ejection_lasts_longer() -> None:
    detector, clock, _ = _detector()
    for times_ejected in (1, 2, 3):
        _fail(detector, "p-1", 5)
        clock.now += 30 * times_ejected - 0.1
        assert detector.is_ejected("p-1")
        clock.now += 0.1
        assert not detector.is_ejected("p-1")


def test_time_spent_healthy_shortens_the_next_ejection_again() -> None:
    detector, clock, _ = _detector()
    _fail(detector, "p-1", 5)
    clock.now += 30
    _fail(detector, "p-1", 5)  # second ejection: 60 s
    clock.now += 60 + 30  # back, then healthy for one base time: the multiplier drops to 1
    detector.record("p-1", failed=False)
    _fail(detector, "p-1", 5)  # third ejection: 2 x 30 s, not 3 x 30 s
    clock.now += 60
    assert not detector.is_ejected("p-1")


def test_never_more_than_half_of_the_instances_are_ejected() -> None:
    detector, _, instances = _detector(4)
    assert _fail(detector, "p-1", 5)[-1] and _fail(detector, "p-2", 5)[-1]
    assert not any(_fail(detector, "p-3", 10))
    assert [i.id for i in detector.available(instances)] == ["p-3", "p-4"]


def test_a_lone_instance_is_never_ejected() -> None:
    detector, _, instances = _detector(1)
    assert not any(_fail(detector, "p-1", 20))
    assert detector.available(instances) == instances


def test_a_returned_instance_makes_room_for_another() -> None:
    detector, clock, _ = _detector(2)
    assert _fail(detector, "p-1", 5)[-1]
    assert not _fail(detector, "p-2", 5)[-1]
    clock.now += 30
    assert detector.record("p-2", failed=True)  # the streak was kept; p-1 is back


def test_zero_consecutive_errors_turns_detection_off() -> None:
    detector, _, _ = _detector(consecutive5xxErrors=0)
    assert not any(_fail(detector, "p-1", 50))


def test_late_failures_from_calls_sent_before_the_ejection_do_not_extend_it() -> None:
    detector, clock, _ = _detector()
    _fail(detector, "p-1", 5)
    _fail(detector, "p-1", 10)
    clock.now += 30
    assert not detector.is_ejected("p-1")
