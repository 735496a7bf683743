"""bench/soak.py's figures from the cut schedule: success while the link is up, heal to
first success (pure functions over driver records; no testbed)."""

from __future__ import annotations

from typing import Any

from bench.soak import heal_to_first_success, link_up_share

CUTS = [(10.0, 15.0), (20.0, 25.0)]  # cut 5 s every 10 s


def call(start: float, seconds: float, status: int | None) -> dict[str, Any]:
    return {"start": start, "seconds": seconds, "status": status}


def test_only_calls_issued_while_the_link_was_up_count() -> None:
    records = [
        call(9.0, 0.5, 200),  # up
        call(9.8, 5.5, 200),  # issued up, answered after the heal: counts, succeeded
        call(11.0, 0.1, 503),  # issued during the cut: left out
        call(16.0, 0.2, 503),  # up, failed
        call(17.0, 0.2, 200),  # up
        call(24.9, 0.2, 503),  # cut: left out
    ]
    assert link_up_share(records, CUTS) == (4, 0.75)
    assert link_up_share([], CUTS)[0] == 0
    assert link_up_share(records, []) == (6, 0.5)  # no cut: every call


def test_heal_to_first_success_per_heal() -> None:
    records = [
        call(14.0, 1.6, 200),  # issued in the first cut, ended 0.6 s after its heal
        call(16.0, 0.2, 200),
        call(25.5, 0.1, 503),  # after the second heal: only failures
        call(26.0, 0.3, 504),
    ]
    assert heal_to_first_success(records, CUTS) == [0.6, None]
    late = [call(9.0, 0.1, 200), call(26.0, 0.7, 200)]
    assert heal_to_first_success(late, CUTS) == [None, 1.7]
    # heals before the stream's first call (a driver still starting) are not counted
    assert heal_to_first_success([call(16.0, 0.2, 200), call(26.0, 0.7, 200)], CUTS) == [1.7]
    assert heal_to_first_success([], CUTS) == []
    # a success that ended after the next cut began is not the first heal's
    assert heal_to_first_success([call(14.0, 0.1, 503), call(19.0, 1.5, 200)], CUTS) == [None]
