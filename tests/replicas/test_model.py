"""HLC and the last-writer-wins rule: monotonic clocks, one deterministic winner, convergence."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgescope.replicas.model import (
    MAX_COUNTER,
    MAX_WALL_MS,
    Hlc,
    Member,
    MemberState,
    ReplicaSet,
    lww_wins,
    observe,
    tick,
)

sites = st.sampled_from(["Paris", "Corte", "Marseille"])
stamps = st.builds(Hlc, st.integers(0, MAX_WALL_MS), st.integers(0, MAX_COUNTER), sites)


@given(st.lists(st.integers(0, 10**6), min_size=1, max_size=50), sites)
def test_tick_is_strictly_monotonic_even_when_the_wall_clock_goes_back(
    walls: list[int], site: str
) -> None:
    last = None
    for now in walls:
        stamp = tick(last, now_ms=now, site=site)
        assert last is None or stamp > last
        assert stamp.wall_ms >= now
        last = stamp


@given(st.none() | stamps, stamps, st.integers(0, 10**13), sites)
def test_observe_is_after_both_clocks(last: Hlc | None, remote: Hlc, now: int, site: str) -> None:
    stamp = observe(last, remote, now_ms=now, site=site)
    assert stamp > remote and (last is None or stamp > last) and stamp.wall_ms >= now


@given(stamps, stamps)
def test_lww_picks_exactly_one_winner(a: Hlc, b: Hlc) -> None:
    if a == b:
        assert not lww_wins(a, b)  # the same write is never applied twice
    else:
        assert lww_wins(a, b) != lww_wins(b, a)


@given(st.lists(stamps, min_size=1, max_size=12, unique=True), st.randoms())
def test_every_delivery_order_converges_to_the_greatest_stamp(
    writes: list[Hlc], rnd: random.Random
) -> None:
    def apply_all(order: list[Hlc]) -> Hlc | None:
        applied: Hlc | None = None
        for write in order:
            if lww_wins(write, applied):
                applied = write
        return applied

    shuffled = writes[:]
    rnd.shuffle(shuffled)
    assert apply_all(writes) == apply_all(shuffled) == max(writes)


@given(stamps)
def test_hlc_text_round_trips_and_sorts_like_stamps(stamp: Hlc) -> None:
    assert Hlc.parse(stamp.encode()) == stamp


def test_hlc_text_order_matches_stamp_order() -> None:
    rnd = random.Random(7)
    found = [Hlc(rnd.randrange(10**13), rnd.randrange(10**6), "Paris") for _ in range(200)]
    assert sorted(found) == sorted(found, key=Hlc.encode)


# A remote stamp in the very last millisecond (year 2286) with its counter used up has no
# stamp after it; the site's clock refuses any stamp further ahead than max_lead of its own
# time (replicas/clock.py), so only a clock that far in the future could see one.
reachable = st.builds(Hlc, st.integers(0, MAX_WALL_MS - 1), st.integers(0, MAX_COUNTER), sites)


@given(st.lists(reachable, max_size=20), st.integers(0, MAX_WALL_MS - 1))
def test_a_clock_never_writes_a_stamp_it_cannot_parse(remotes: list[Hlc], now: int) -> None:
    """Issue 20: whatever stamps it observes, the site's stamps parse and keep increasing."""
    last = None
    for remote in remotes:
        stamp = observe(last, remote, now_ms=now, site="Paris")
        assert last is None or stamp > last
        assert stamp > remote and Hlc.parse(stamp.encode()) == stamp
        last = tick(stamp, now_ms=now, site="Paris")
        assert last > stamp and Hlc.parse(last.encode()) == last


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1.2",
        "x.1.Paris",
        "1.x.Paris",
        "1.2.",
        "9" * 16 + ".1.P",
        "1.2.3.4" + "x" * 70,
        "1700000000000.999999999.Evil",  # issue 20: a counter past 6 digits
        "1700000000000.1000000.Evil",
        "\u0661700000000000.1.Evil",  # a non-ASCII digit
    ],
)
def test_bad_hlc_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        Hlc.parse(text)


def test_replica_set_json_round_trip_and_states() -> None:
    s = ReplicaSet(
        "p1",
        "identity",
        "/v3/users",
        (Member("Paris", "p1"), Member("Corte", None, MemberState.PENDING)),
        Hlc(5, 0, "Paris"),
    )
    assert ReplicaSet.from_json(s.to_json()) == s
    assert s.member_id("Corte") is None and s.ids == {"p1"}
    done = s.with_member("Corte", "c9", MemberState.PRESENT)
    assert done.member_id("Corte") == "c9" and done.ids == {"p1", "c9"}
    gone = done.with_member("Paris", "p1", MemberState.GONE).with_member(
        "Corte", "c9", MemberState.GONE
    )
    assert gone.all_gone and gone.member_id("Paris") is None
    assert gone.sites == ("Paris", "Corte")
