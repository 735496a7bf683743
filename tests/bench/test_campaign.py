"""The campaign's checker on planted anomalies, and its seeded schedule (issue 24)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from pathlib import Path

import pytest
from bench.campaign.checker import Observed, Seen, check, summary
from bench.campaign.history import OK, REFUSED, UNKNOWN, Fault, Op, read_ops, write_lines
from bench.campaign.schedule import KINDS, plan

PAIR = ("Paris", "Corte")
SET = "{image: Paris & Corte}"


def op(seq: int, kind: str, name: str, outcome: str = OK, *, mode: str = "strict",
       sites: tuple[str, ...] = PAIR, value: str | None = None, resource: str = "image",
       at: str = "Paris") -> Op:  # fmt: skip
    scope = None if len(sites) == 1 else SET
    return Op(seq, "Paris-0", kind, resource, name, at, scope, mode, sites, seq, seq + 0.5,
              outcome, value=value)  # fmt: skip


def seen(name: str, *sites: str, value: str | None = None, resource: str = "image") -> list[Seen]:
    return [Seen(resource, s, name, f"{s}-{name}-{i}", value) for i, s in enumerate(sites)]


def kinds(ops: list[Op], held: list[Seen], faults: list[Fault] | None = None) -> list[str]:
    return [a.kind for a in check(ops, faults or [], Observed(held))]


def test_a_clean_history_reports_nothing() -> None:
    ops = [
        op(1, "create", "a"),
        op(2, "create", "b", REFUSED),
        op(3, "create", "c"),
        op(4, "delete", "c"),
        op(5, "create", "u", resource="user"),
        op(6, "update", "u", value="v1", resource="user"),
        op(7, "create", "d", mode="eventual"),
        op(8, "create", "e", UNKNOWN),
        op(9, "create", "local", sites=("Corte",), at="Corte"),
    ]
    held = [*seen("a", *PAIR), *seen("u", *PAIR, value="v1", resource="user"),
            *seen("d", *PAIR), *seen("local", "Corte")]  # fmt: skip
    observed = Observed(held, serving={"Paris": True, "Corte": True}, pending={"Paris": 0})
    assert check(ops, [], observed) == []


def test_a_duplicate_is_reported_with_its_operation() -> None:
    [anomaly] = check([op(1, "create", "a")], [], Observed(seen("a", "Paris", "Corte", "Corte")))
    assert (anomaly.kind, anomaly.sites, anomaly.ops) == ("duplicate", ("Corte",), (1,))


def test_an_eventual_write_applied_twice_is_a_duplicate() -> None:
    ops = [op(1, "create", "a", mode="eventual")]
    [anomaly] = check(ops, [], Observed(seen("a", "Paris", "Corte", "Corte")))
    assert anomaly.kind == "duplicate" and "eventual" in anomaly.detail


def test_an_orphan_of_a_refused_strict_create_is_reported() -> None:
    [anomaly] = check([op(1, "create", "a", REFUSED)], [], Observed(seen("a", "Paris")))
    assert (anomaly.kind, anomaly.sites) == ("orphan", ("Paris",))


def test_a_lost_delete_is_reported_with_create_and_delete() -> None:
    ops = [op(1, "create", "a"), op(2, "delete", "a")]
    [anomaly] = check(ops, [], Observed(seen("a", "Corte")))
    assert (anomaly.kind, anomaly.sites, anomaly.ops) == ("lost-delete", ("Corte",), (1, 2))


def test_a_missing_member_is_reported() -> None:
    assert kinds([op(1, "create", "a")], seen("a", "Paris")) == ["missing-member"]


def test_a_member_outside_the_set_is_reported() -> None:
    assert kinds([op(1, "create", "a")], seen("a", "Paris", "Corte", "Marseille")) == [
        "outside-set"
    ]


def test_an_unacknowledged_write_must_be_all_or_nothing() -> None:
    assert kinds([op(1, "create", "a", UNKNOWN)], seen("a", "Paris")) == ["partial"]
    eventual = op(1, "create", "a", REFUSED, mode="eventual")
    assert kinds([eventual], seen("a", "Corte")) == ["partial"]


def test_a_lost_update_is_reported_and_a_later_attempt_allowed() -> None:
    ops = [op(1, "create", "u", resource="user"), op(2, "update", "u", value="v1", resource="user")]
    assert kinds(ops, seen("u", *PAIR, value=None, resource="user")) == ["lost-update"]
    ops.append(op(3, "update", "u", UNKNOWN, value="v2", resource="user"))
    held = [Seen("user", "Paris", "u", "1", "v1"), Seen("user", "Corte", "u", "2", "v2")]
    assert kinds(ops, held) == []


def test_an_unrecorded_resource_is_reported() -> None:
    assert kinds([], seen("ghost", "Paris")) == ["unrecorded"]


def test_a_local_call_fails_only_for_a_fault_of_its_own_site() -> None:
    local = op(1, "create", "x", REFUSED, sites=("Paris",))
    cut = Fault("partition", PAIR, 0.0, 10.0)
    assert kinds([local], [], [cut]) == ["local-failed"]
    killed = Fault("proxy-kill", ("Paris",), 0.0, 10.0)
    assert kinds([local], [], [killed]) == []
    elsewhere = Fault("proxy-kill", ("Corte",), 0.0, 10.0)
    assert kinds([local], [], [elsewhere]) == ["local-failed"]


def test_a_proxy_down_and_a_queue_left_are_reported() -> None:
    observed = Observed([], serving={"Paris": False}, pending={"Corte": 2})
    found = check([], [], observed)
    assert [a.kind for a in found] == ["proxy-down", "queue-not-drained"]
    assert summary(found)["queue-not-drained"]["count"] == 1


def test_history_round_trips_through_json_lines(tmp_path: Path) -> None:
    ops = [op(1, "create", "a"), op(2, "update", "a", UNKNOWN, value="v")]
    write_lines(tmp_path / "ops.jsonl", ops)
    assert read_ops(tmp_path / "ops.jsonl") == ops


def test_the_schedule_is_reproducible_from_its_seed() -> None:
    sites = ("Paris", "Corte", "Marseille")
    first = plan(42, 600, sites)
    assert first == plan(42, 600, sites)
    assert first != plan(43, 600, sites)
    assert {f.kind for f in first} == set(KINDS)
    for before, after in itertools.pairwise(first):
        assert before.at + before.hold < after.at, "faults overlap"
    assert all(set(f.sites) <= set(sites) for f in first)
    assert first[-1].at + first[-1].hold <= 600 - 10


def test_the_schedule_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="two sites"):
        plan(1, 60, ("Paris",))
    with pytest.raises(ValueError, match="positive"):
        plan(1, 0, ("Paris", "Corte"))


def boot(outcome: str = OK) -> Op:
    return Op(1, "Paris-http", "boot", "server", "s", "Paris", "{nova: Paris | Corte}", "strict",
              PAIR, 1.0, 2.0, outcome)  # fmt: skip


def test_a_boot_runs_at_exactly_one_site_of_its_or() -> None:
    assert kinds([boot()], seen("s", "Corte", resource="server")) == []
    assert kinds([boot()], seen("s", "Paris", "Corte", resource="server")) == ["duplicate"]
    assert kinds([boot()], []) == ["missing-member"]
    assert kinds([boot()], seen("s", "Marseille", resource="server")) == ["outside-set"]


def test_a_refused_boot_left_nothing_and_an_unknown_one_at_most_one() -> None:
    assert kinds([boot(REFUSED)], seen("s", "Paris", resource="server")) == ["orphan"]
    assert kinds([boot(UNKNOWN)], seen("s", "Paris", resource="server")) == []
    assert kinds([boot(UNKNOWN)], seen("s", *PAIR, resource="server")) == ["duplicate"]


def test_a_restart_excuses_only_what_it_stops() -> None:
    user = op(1, "create", "u", REFUSED, sites=("Paris",), resource="user")
    image = op(2, "create", "i", REFUSED, sites=("Paris",))
    glance = Fault("service-restart", ("Paris",), 0.0, 10.0, {"service": "glance"})
    assert kinds([user, image], [], [glance]) == ["local-failed"]
    keystone = Fault("service-restart", ("Paris",), 0.0, 10.0, {"service": "keystone"})
    assert kinds([user, image], [], [keystone]) == []
    locked = Fault("db-lock", ("Paris",), 0.0, 10.0)
    assert kinds([image], [], [locked]) == ["local-failed"]
    stepped = Fault("clock-step", ("Paris",), 0.0, 10.0, {"offset": -30.0})
    assert kinds([user, image], [], [stepped]) == []


def test_clock_steps_stay_within_the_allowed_skew() -> None:
    from edgescope.replicas.clock import MAX_LEAD_SECONDS

    steps = [f for seed in range(20) for f in plan(seed, 600, PAIR) if f.kind == "clock-step"]
    assert steps and all(10 <= abs(f.detail["offset"]) <= 120 < MAX_LEAD_SECONDS for f in steps)
    assert {f.detail["offset"] > 0 for f in steps} == {True, False}


def test_a_partial_set_after_its_proxy_crashed_is_reported_apart() -> None:
    lost = op(1, "create", "a", UNKNOWN, mode="eventual")  # in flight from 1.0 to 1.5
    killed = Fault("proxy-kill", ("Paris",), 1.2, 20.0)
    assert kinds([lost], seen("a", "Paris"), [killed]) == ["partial-after-crash"]
    before = Fault("proxy-kill", ("Paris",), 0.5, 20.0)  # down before the call: not mid-call
    assert kinds([lost], seen("a", "Paris"), [before]) == ["partial"]
    elsewhere = Fault("proxy-kill", ("Corte",), 1.2, 20.0)
    assert kinds([lost], seen("a", "Paris"), [elsewhere]) == ["partial"]


def test_a_service_refusing_a_local_call_is_not_a_fault() -> None:
    busy = replace(op(1, "delete", "v", REFUSED, sites=("Paris",), resource="volume"),
                   error="HTTP 400: Volume status must be available")  # fmt: skip
    made = op(0, "create", "v", sites=("Paris",), resource="volume")
    held = seen("v", "Paris", resource="volume")
    assert kinds([made, busy], held, []) == []
    lost = replace(busy, error="HTTP 500: oops")
    assert kinds([made, lost], held, []) == ["local-failed"]
