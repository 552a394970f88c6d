from msashop.supervisor.process import Backoff, backoff_delay


def test_restart_delays_double_up_to_thirty_seconds() -> None:
    assert [backoff_delay(n) for n in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    assert backoff_delay(500) == 30


def test_a_child_that_keeps_crashing_waits_longer_each_time() -> None:
    backoff = Backoff()
    assert [backoff.next_delay(healthy_for=None) for _ in range(4)] == [1, 2, 4, 8]
    # healthy only briefly between crashes: no reset
    assert backoff.next_delay(healthy_for=59.0) == 16


def test_a_minute_of_health_starts_the_schedule_over() -> None:
    backoff = Backoff()
    for _ in range(5):
        backoff.next_delay(healthy_for=None)
    assert backoff.next_delay(healthy_for=60.0) == 1
    assert backoff.next_delay(healthy_for=None) == 2
