"""Circuit breaker state machine, with an explicit clock."""

from edgescope.proxy.breaker import Breaker


def test_opens_after_threshold_and_half_opens_after_timeout() -> None:
    breaker = Breaker(failure_threshold=2, open_seconds=10)
    breaker.record_failure(now=0)
    assert breaker.state == "closed" and breaker.allow(now=0)
    breaker.record_failure(now=1, reason="refused")
    assert breaker.state == "open" and not breaker.allow(now=5)
    assert breaker.allow(now=12) and breaker.state == "half-open"
    assert not breaker.allow(now=12)  # one trial at a time
    breaker.record_success()
    assert breaker.state == "closed" and breaker.failures == 0


def test_failed_trial_reopens_and_probe_half_opens() -> None:
    breaker = Breaker(failure_threshold=1, open_seconds=10)
    breaker.record_failure(now=0)
    assert breaker.allow(now=11)
    breaker.record_failure(now=11)
    assert breaker.state == "open" and not breaker.allow(now=12)
    breaker.record_probe(True, now=13)
    assert breaker.state == "half-open" and breaker.allow(now=13)
    breaker.record_probe(False, now=14, reason="timeout")
    assert breaker.state == "open" and breaker.last_error == "timeout"


def test_on_open_is_called_once_per_opening() -> None:
    opened: list[float] = []
    b = Breaker(failure_threshold=2, open_seconds=5.0)
    b.on_open = lambda: opened.append(b.opened_at)
    b.record_failure(now=1.0)
    assert opened == []
    b.record_failure(now=2.0)
    b.record_probe(False, now=3.0)  # already open: no second call
    assert opened == [2.0]
    assert b.allow(now=9.0) and b.state == "half-open"
    b.record_failure(now=9.5)  # the trial failed: open again
    assert opened == [2.0, 9.5]


def test_two_good_probes_close_an_open_breaker_without_any_call() -> None:
    """A peer that refused connections at start-up, then answers its probes, is trusted again
    (a half-open breaker used to wait for a real call, stale for as long as none came)."""
    b = Breaker(failure_threshold=1, open_seconds=60.0)
    b.record_probe(False, now=0.0, reason="connection refused")
    assert b.state == "open"
    b.record_probe(True, now=2.0)
    assert b.state == "half-open"
    b.record_probe(True, now=4.0)
    assert b.state == "closed" and b.last_error == "" and b.failures == 0
    # with a trial call in flight, the call decides, not the probe
    b.record_failure(now=5.0)
    b.record_probe(True, now=6.0)
    assert b.allow(now=6.0) and b.trial_in_flight
    b.record_probe(True, now=7.0)
    assert b.state == "half-open"
