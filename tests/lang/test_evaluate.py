"""The evaluator: the semantics of docs/semantics.md, by examples and by hypothesis laws."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from scope_strategies import PLAIN, flat_exprs

from edgescope.errors import ScopeLimitError, SiteUnreachable
from edgescope.lang import And, Expr, HttpFailurePolicy, Or, Outcome, SiteRef, evaluate, iter_sites
from edgescope.lang import parse_scope as parse


def expr_of(text: str) -> Expr:
    return parse(f"{{nova: {text}}}").entries[0].expr


class Sites:
    """A call function over fake sites: each answers a status, or raises if it is down."""

    def __init__(self, statuses: dict[str, int], down: frozenset[str] = frozenset()) -> None:
        self.statuses = statuses
        self.down = down
        self.log: list[str] = []
        self.calls: list[str] = []

    async def call(self, site: str) -> int:
        self.calls.append(site)
        self.log.append(f"start {site}")
        await asyncio.sleep(0)  # let concurrent branches interleave
        self.log.append(f"end {site}")
        if site in self.down:
            raise SiteUnreachable(site, "connection refused")
        return self.statuses.get(site, 200)


async def run(text: str, sites: Sites, policy: HttpFailurePolicy | None = None) -> Outcome[int]:
    return await evaluate(expr_of(text), sites.call, policy or HttpFailurePolicy())


async def test_site() -> None:
    sites = Sites({"Paris": 201})
    outcome = await run("Paris", sites)
    assert outcome.ok and outcome.results == (("Paris", 201),)
    assert [(a.site, a.result, a.failed) for a in outcome.attempts] == [("Paris", 201, False)]


async def test_and_runs_concurrently() -> None:
    sites = Sites({})
    outcome = await run("a & b & c", sites)
    assert outcome.ok and outcome.results == (("a", 200), ("b", 200), ("c", 200))
    first_end = sites.log.index("end a")
    assert {"start a", "start b", "start c"} <= set(sites.log[:first_end])


async def test_and_failure_names_who_succeeded_and_never_cancels() -> None:
    sites = Sites({"b": 500}, down=frozenset({"c"}))
    outcome = await run("a & b & c & d", sites)
    assert not outcome.ok
    assert outcome.succeeded == ("a", "d")
    assert outcome.failed == ("b", "c")
    assert outcome.results == (("a", 200), ("d", 200))  # effects that happened
    assert sorted(sites.calls) == ["a", "b", "c", "d"]
    assert sites.log.count("end d") == 1  # d ran to completion despite b and c failing
    error = outcome.attempts[2].error
    assert isinstance(error, SiteUnreachable) and error.site == "c"


async def test_or_falls_back_left_to_right_and_stops_at_first_success() -> None:
    sites = Sites({"a": 404, "b": 503, "c": 200, "d": 200})
    outcome = await run("a | b | c | d", sites)
    assert outcome.ok and outcome.results == (("c", 200),)
    assert sites.calls == ["a", "b", "c"]
    assert [a.failed for a in outcome.attempts] == [True, True, False]


async def test_or_falls_back_on_transport_errors() -> None:
    sites = Sites({}, down=frozenset({"Corte"}))
    outcome = await run("Corte | Marseille", sites)
    assert outcome.ok and outcome.results == (("Marseille", 200),)


@pytest.mark.parametrize("status", [400, 401, 403, 409, 413, 422, 200, 201, 204, 302])
async def test_request_errors_do_not_fall_back(status: int) -> None:
    sites = Sites({"a": status})
    outcome = await run("a | b", sites)
    assert outcome.ok and outcome.results == (("a", status),)
    assert sites.calls == ["a"]


async def test_all_alternatives_failing() -> None:
    sites = Sites({"a": 404, "b": 502})
    outcome = await run("a | b", sites)
    assert not outcome.ok and outcome.results == ()
    assert [(a.site, a.result) for a in outcome.attempts] == [("a", 404), ("b", 502)]


@pytest.mark.parametrize(
    ("policy", "status", "failure"),
    [
        (HttpFailurePolicy(), 404, True),
        (HttpFailurePolicy(), 500, True),
        (HttpFailurePolicy(), 599, True),
        (HttpFailurePolicy(), 400, False),
        (HttpFailurePolicy(), 409, False),
        (HttpFailurePolicy(), 499, False),
        (HttpFailurePolicy(fallback_on_404=False), 404, False),
        (HttpFailurePolicy(fallback_on_404=False), 503, True),
        (HttpFailurePolicy(fallback_on_5xx=False), 503, False),
        (HttpFailurePolicy(fallback_on_5xx=False), 404, True),
    ],
)
def test_http_failure_policy(policy: HttpFailurePolicy, status: int, failure: bool) -> None:
    assert policy(status) is failure


async def test_or_inside_and() -> None:
    sites = Sites({"Corte": 404})
    outcome = await run("(Corte | Marseille) & Paris", sites)
    assert outcome.ok
    assert outcome.results == (("Marseille", 200), ("Paris", 200))
    assert outcome.failed == ("Corte",)


async def test_and_inside_or_partial_effects_are_reported() -> None:
    sites = Sites({"b": 500})
    outcome = await run("a & b | c", sites)
    assert outcome.ok and outcome.results == (("c", 200),)
    assert outcome.succeeded == ("a", "c")  # a's effect happened and is not hidden


async def test_broken_predicate_is_a_bug_not_a_site_failure() -> None:
    def predicate(result: int) -> bool:
        raise RuntimeError("boom")

    sites = Sites({})
    with pytest.raises(RuntimeError, match="boom"):
        await evaluate(expr_of("a | b"), sites.call, predicate)
    assert sites.calls == ["a"]  # b is not tried: a bug ends the call


async def test_a_bug_in_one_branch_cancels_its_siblings_and_propagates() -> None:
    started = asyncio.Event()
    cancelled: list[str] = []

    async def call(site: str) -> int:
        if site == "a":
            await started.wait()
            raise KeyError("a bug, not a site's failure")
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(site)
            raise
        return 200

    with pytest.raises(KeyError):
        await evaluate(expr_of("a & b & c"), call, HttpFailurePolicy())
    assert sorted(cancelled) == ["b", "c"]


async def test_an_edgescope_error_is_the_failure_of_its_site() -> None:
    async def call(site: str) -> int:
        if site == "a":
            raise SiteUnreachable(site, "timed out")
        return 200

    outcome = await evaluate(expr_of("a | b"), call, HttpFailurePolicy())
    assert outcome.ok and outcome.failed == ("a",)
    assert isinstance(outcome.attempts[0].error, SiteUnreachable)


async def test_cancellation_propagates() -> None:
    started = asyncio.Event()

    async def hang(site: str) -> int:
        started.set()
        await asyncio.Event().wait()
        return 200

    task = asyncio.ensure_future(evaluate(expr_of("a & b"), hang, HttpFailurePolicy()))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_hand_built_deep_expression_is_refused() -> None:
    expr: Expr = SiteRef("a")
    for i in range(300):
        expr = (And if i % 2 else Or)((expr, SiteRef(f"s{i}")))
    with pytest.raises(ScopeLimitError):
        await evaluate(expr, Sites({}).call, HttpFailurePolicy())


# --- laws -------------------------------------------------------------------------------

NAMES = st.sampled_from([f"s{i}" for i in range(8)])
BEHAVIOUR = st.dictionaries(NAMES, st.sampled_from([200, 201, 400, 404, 409, 500, 503, -1]))


def make_sites(behaviour: dict[str, int]) -> Sites:
    """-1 means the site is down (call raises)."""
    return Sites(behaviour, down=frozenset(s for s, v in behaviour.items() if v == -1))


def evaluate_sync(expr: Expr, sites: Sites) -> Outcome[int]:
    return asyncio.run(evaluate(expr, sites.call, HttpFailurePolicy()))


def summary(outcome: Outcome[int]) -> tuple[object, ...]:
    attempts = [(a.site, a.result, a.failed, type(a.error)) for a in outcome.attempts]
    return outcome.ok, outcome.results, tuple(attempts)


@given(
    st.lists(flat_exprs(NAMES, 3), min_size=3, max_size=3), BEHAVIOUR, st.sampled_from([And, Or])
)
def test_associativity(parts: list[Expr], behaviour: dict[str, int], kind: type[And | Or]) -> None:
    a, b, c = parts
    left = kind((kind((a, b)), c))
    right = kind((a, kind((b, c))))
    flat = kind((a, b, c))
    results = {summary(evaluate_sync(e, make_sites(behaviour))) for e in (left, right, flat)}
    assert len(results) == 1


@given(flat_exprs(NAMES, 4), flat_exprs(NAMES, 4), BEHAVIOUR)
def test_or_never_calls_the_right_after_a_left_success(
    left: Expr, right: Expr, behaviour: dict[str, int]
) -> None:
    alone = make_sites(behaviour)
    left_outcome = evaluate_sync(left, alone)
    both = make_sites(behaviour)
    outcome = evaluate_sync(Or((left, right)), both)
    if left_outcome.ok:
        assert both.calls == alone.calls
        assert outcome.results == left_outcome.results
    else:
        assert both.calls[: len(alone.calls)] == alone.calls
        assert outcome.ok == evaluate_sync(right, make_sites(behaviour)).ok


@given(st.lists(PLAIN, min_size=1, max_size=30, unique=True), BEHAVIOUR)
def test_and_calls_every_site_exactly_once(names: list[str], behaviour: dict[str, int]) -> None:
    sites = make_sites(behaviour)
    outcome = evaluate_sync(And(tuple(SiteRef(n) for n in names)), sites)
    assert sorted(sites.calls) == sorted(names)
    assert [a.site for a in outcome.attempts] == names
    assert outcome.ok == all(not a.failed for a in outcome.attempts)


@given(flat_exprs(NAMES, 6), BEHAVIOUR)
def test_every_call_is_in_the_trace_once(expr: Expr, behaviour: dict[str, int]) -> None:
    sites = make_sites(behaviour)
    outcome = evaluate_sync(expr, sites)
    assert sorted(a.site for a in outcome.attempts) == sorted(sites.calls)
    assert set(sites.calls) <= {s.name for s in iter_sites(expr)}
    assert all(site in outcome.succeeded for site, _ in outcome.results)


class Held:
    """Sites whose answers the test releases by hand: no timer decides anything."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Future[int]] = {}
        self.cancelled: list[str] = []

    async def call(self, site: str) -> int:
        gate = self.gates.setdefault(site, asyncio.get_running_loop().create_future())
        try:
            return await gate
        except asyncio.CancelledError:
            self.cancelled.append(site)
            raise

    def answer(self, site: str, status: int) -> None:
        self.gates.setdefault(site, asyncio.get_running_loop().create_future())
        self.gates[site].set_result(status)


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("never happened")


async def test_hedged_or_races_the_next_site_and_cancels_the_loser() -> None:
    held = Held()
    # a hedge delay of 0: "a" is overdue at once, so "b" starts too (but not "c": max_extra 1)
    task = asyncio.ensure_future(
        evaluate(expr_of("a | b | c"), held.call, HttpFailurePolicy(), hedge_after=lambda e: 0.0)
    )
    await _until(lambda: {"a", "b"} <= set(held.gates))
    assert "c" not in held.gates
    held.answer("b", 200)
    outcome = await task
    assert outcome.ok and outcome.results == (("b", 200),)
    assert [a.site for a in outcome.attempts] == ["b"] and held.cancelled == ["a"]


async def test_hedged_or_falls_back_when_the_racers_fail() -> None:
    held = Held()
    task = asyncio.ensure_future(
        evaluate(expr_of("a | b | c"), held.call, HttpFailurePolicy(), hedge_after=lambda e: 0.0)
    )
    await _until(lambda: {"a", "b"} <= set(held.gates))
    held.answer("b", 503)  # the hedge failed; "a" is overdue: "c" joins
    await _until(lambda: "c" in held.gates)
    held.answer("a", 404)
    held.answer("c", 200)
    outcome = await task
    assert outcome.ok and outcome.results == (("c", 200),)
    assert [(a.site, a.failed) for a in outcome.attempts] == [
        ("a", True),
        ("b", True),
        ("c", False),
    ]


async def test_without_a_hedge_delay_or_is_sequential() -> None:
    held = Held()
    task = asyncio.ensure_future(
        evaluate(expr_of("a | b"), held.call, HttpFailurePolicy(), hedge_after=lambda e: None)
    )
    await _until(lambda: "a" in held.gates)
    for _ in range(50):
        await asyncio.sleep(0)
    assert "b" not in held.gates  # a write: "b" only after "a" failed
    held.answer("a", 503)
    await _until(lambda: "b" in held.gates)
    held.answer("b", 200)
    assert (await task).results == (("b", 200),)
