"""Circuit breaker state machine, with an explicit clock and jitter (no sleep anywhere)."""

from __future__ import annotations

import pytest

from edgescope.proxy.breaker import Breaker


def breaker(**kwargs: object) -> Breaker:
    kwargs.setdefault("jitter", lambda: 0.5)  # the back-off factor 0.5 + 0.5 = 1
    return Breaker(**kwargs)  # type: ignore[arg-type]


def test_opens_after_threshold_and_half_opens_after_timeout() -> None:
    b = breaker(failure_threshold=2, open_seconds=10)
    b.record_failure(now=0)
    assert b.state == "closed" and b.allow(now=0)
    b.record_failure(now=1, reason="refused")
    assert b.state == "open" and not b.allow(now=5)
    assert b.allow(now=12) and b.state == "half-open"
    assert not b.allow(now=12)  # one trial at a time
    b.record_success()
    assert b.state == "closed" and b.failures == 0


def test_a_burst_of_failures_under_loss_does_not_open_it() -> None:
    """Five calls that fail together (one lost packet, one stalled pool) are not a dead
    site: the failures in a row must also span failure_span seconds."""
    b = breaker(failure_threshold=3, failure_span=1.0)
    for i in range(5):
        b.record_failure(now=10.0 + i * 0.01, reason="connect timed out")
    assert b.state == "closed" and b.failures == 5
    b.record_success()  # one answer in between: the count starts again
    b.record_failure(now=11.5)
    b.record_failure(now=12.0)
    assert b.state == "closed"
    b.record_failure(now=12.5)  # three in a row over a second: now it is down
    assert b.state == "open" and b.failing_since == 11.5


@pytest.mark.parametrize(
    ("failures", "opens"),
    [
        ([0.0, 0.2, 0.4, 0.6, 0.8], False),  # 5 in a row, within 0.8 s
        ([0.0, 0.2, 0.4, 0.6, 1.0], True),  # 5 in a row over 1 s
        ([0.0, 5.0, 9.0, 20.0], False),  # 4 in a row, however long
    ],
)
def test_threshold_and_span_together(failures: list[float], opens: bool) -> None:
    b = breaker(failure_threshold=5, failure_span=1.0)
    for at in failures:
        b.record_failure(now=at)
    assert (b.state == "open") is opens


def test_threshold_one_opens_on_the_first_failure_whatever_the_span() -> None:
    b = breaker(failure_threshold=1, failure_span=1.0)
    b.record_failure(now=3.0)
    assert b.state == "open"


def test_failed_trial_reopens_and_a_good_probe_closes() -> None:
    b = breaker(failure_threshold=1, open_seconds=10)
    b.record_failure(now=0)
    assert b.allow(now=11)
    b.record_failure(now=11)
    assert b.state == "open" and not b.allow(now=12)
    b.record_probe(True, now=13)
    assert b.state == "closed" and b.allow(now=13) and b.failures == 0
    b.record_probe(False, now=14, reason="timeout")
    assert b.state == "open" and b.last_error == "timeout"


def test_on_open_is_called_once_per_opening() -> None:
    opened: list[float] = []
    b = breaker(failure_threshold=2, open_seconds=5.0)
    b.on_open = lambda: opened.append(b.opened_at)
    b.record_failure(now=1.0)
    assert opened == []
    b.record_failure(now=2.0)
    b.record_probe(False, now=3.0)  # already open: no second call
    assert opened == [2.0]
    assert b.allow(now=9.0) and b.state == "half-open"
    b.record_failure(now=9.5)  # the trial failed: open again
    assert opened == [2.0, 9.5]


def test_one_good_probe_closes_an_open_breaker_without_any_call() -> None:
    """A probe that came back crossed the link both ways: the peer is reachable again (a
    half-open breaker used to let one trial call through and refuse all the others)."""
    b = breaker(failure_threshold=1, open_seconds=60.0)
    b.record_probe(False, now=0.0, reason="connection refused")
    assert b.state == "open"
    b.record_probe(True, now=2.0)
    assert b.state == "closed" and b.last_error == "" and b.failures == 0


def test_an_open_breaker_is_probed_at_once_then_with_back_off() -> None:
    b = breaker(failure_threshold=1, probe_backoff_min=0.1, probe_backoff_max=1.0)
    assert not b.probe_due(now=0.0)  # closed: the regular rounds only
    b.record_failure(now=5.0)
    assert b.probe_due(now=5.0)  # right after opening
    delays = []
    now = 5.0
    for _ in range(7):
        b.probe_started(now=now)
        b.record_probe(False, now=now + 0.01)
        delays.append(round(b.next_probe_at - now, 3))
        assert not b.probe_due(now=b.next_probe_at - 0.001) and b.probe_due(now=b.next_probe_at)
        now = b.next_probe_at
    # each failed probe doubles the next delay, up to probe_backoff_max
    assert delays == [0.21, 0.41, 0.81, 1.01, 1.01, 1.01, 1.01]
    b.record_probe(True, now=now)
    assert b.state == "closed" and not b.probe_due(now=now + 100)
    b.record_failure(now=200.0)
    b.probe_started(now=200.0)  # back-off starts again from the bottom
    assert b.next_probe_at == pytest.approx(200.1)


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999])
def test_probe_delays_are_jittered_between_half_and_one_and_a_half(draw: float) -> None:
    b = breaker(failure_threshold=1, probe_backoff_max=1.0, jitter=lambda: draw)
    b.record_failure(now=0.0)
    b.probe_failures = 10
    assert b.probe_delay() == pytest.approx(0.5 + draw)


def test_jittered_probes_do_not_stay_in_step_with_a_periodic_cut() -> None:
    """Two breakers opened by the same 10 s cut, each with its own random source, probe at
    different times: the probes spread over the period instead of landing at one phase."""
    import random

    phases = []
    for seed in range(2):
        rng = random.Random(seed)
        b = breaker(failure_threshold=1, jitter=rng.random)
        b.record_failure(now=0.0)
        times, now = [], 0.0
        while now < 60.0:
            b.probe_started(now=now)
            b.record_probe(False, now=now)
            now = b.next_probe_at
            times.append(now)
        phases.append({round(t % 10.0, 1) for t in times})
    assert phases[0] != phases[1] and len(phases[0]) > 20


def test_an_abandoned_read_makes_the_peer_suspect_but_is_no_failure() -> None:
    """A hedged read that stopped waiting for the peer (another site answered first) says
    nothing of failure: it never opens the breaker, however many, but the peer is suspect
    until its next success (then a '|' asks the next site at once, hedge.py)."""
    b = breaker(failure_threshold=2, failure_span=0.0)
    assert not b.suspect
    for _ in range(10):
        b.record_abandoned()
    assert b.state == "closed" and b.failures == 0 and b.allow(now=0.0) and b.suspect
    b.record_probe(True, now=1.0)
    assert not b.suspect


def test_a_failure_or_an_open_breaker_makes_the_peer_suspect_until_a_success() -> None:
    b = breaker(failure_threshold=2, failure_span=0.0)
    b.record_failure(now=0.0)
    assert b.state == "closed" and b.suspect  # one failure: not open, but suspect
    b.record_failure(now=0.1)
    assert b.state == "open" and b.suspect
    b.record_probe(False, now=0.2)
    assert b.suspect
    b.record_probe(True, now=0.5)
    assert b.state == "closed" and not b.suspect
