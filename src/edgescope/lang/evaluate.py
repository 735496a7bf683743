"""The pure evaluator of a location expression for one service call (docs/semantics.md).

It does no I/O itself: the caller (the proxy, :mod:`edgescope.proxy`) passes ``call(site)``,
which forwards the request to one site, and ``is_failure(result)``, which says whether a
result counts as a failure (see :class:`HttpFailurePolicy`). The rules:

- a site: one ``call(site)``; an :class:`~edgescope.errors.EdgescopeError` from it, or
  ``is_failure(result)``, is a failure. Any other exception (a bug, of ``call`` or of
  ``is_failure``) is never a site's failure: it propagates, and cancels the calls in flight;
- ``e1 & ... & en``: every branch runs concurrently, none is ever cancelled because another
  failed; ok iff all are ok; the value is every branch's results, in operand order;
- ``e1 | ... | en``: branches run one after the other until one is ok; the right of an ok
  branch is never run; the value is the winner's results. With ``hedge_after`` (reads
  only, the caller decides), a branch that has not finished within ``hedge_after(branch)``
  seconds gets the next one started too (at most ``max_extra`` more at once): the first
  ok branch wins and the others still running are cancelled.

    >>> import asyncio
    >>> from edgescope.lang import parse_scope
    >>> async def call(site: str) -> int:
    ...     return 404 if site == "Corte" else 200
    >>> expr = parse_scope("{glance: Corte | Marseille}").entries[0].expr
    >>> outcome = asyncio.run(evaluate(expr, call, HttpFailurePolicy()))
    >>> outcome.ok, outcome.results, [a.site for a in outcome.attempts]
    (True, (('Marseille', 200),), ['Corte', 'Marseille'])
"""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from edgescope.aio import spawn
from edgescope.errors import EdgescopeError, ScopeCheckError, ScopeLimitError
from edgescope.lang.ast import And, Expr, SiteRef, has_network_form

R = TypeVar("R")

MAX_EVAL_DEPTH = 200
"""Nesting bound for hand-built expressions (parsed ones are far shallower: Limits.max_depth)."""


@dataclass(frozen=True, slots=True)
class Attempt(Generic[R]):
    """One site tried: its result, or the error ``call`` raised, and whether it failed."""

    site: str
    result: R | None
    error: EdgescopeError | None
    failed: bool


@dataclass(frozen=True, slots=True)
class Outcome(Generic[R]):
    """What evaluating an expression did."""

    ok: bool
    """True when the expression succeeded: every ``&`` branch, or one ``|`` branch."""
    attempts: tuple[Attempt[R], ...]
    """Every site tried, in operand order (``&`` branches are listed left to right)."""
    results: tuple[tuple[str, R], ...]
    """The (site, result) pairs that make the value: all of them for ``&``, the winner's for
    ``|``. When ``ok`` is False, the results of the calls that did succeed (effects that
    happened) inside the failed ``&`` branches."""

    @property
    def succeeded(self) -> tuple[str, ...]:
        """Sites whose call succeeded (their effects happened)."""
        return tuple(a.site for a in self.attempts if not a.failed)

    @property
    def failed(self) -> tuple[str, ...]:
        """Sites whose call failed."""
        return tuple(a.site for a in self.attempts if a.failed)


@dataclass(frozen=True, slots=True)
class HttpFailurePolicy:
    """Which HTTP statuses count as a *failure* (so ``|`` falls back and ``&`` fails).

    Transport errors (refused, unreachable, timeout) are exceptions from ``call`` and always
    fail. 404 and 5xx fail by default and can be turned off. Any other status, including
    400, 409 and the other 4xx caused by the request itself, is an answer, not a failure.
    """

    fallback_on_404: bool = True
    fallback_on_5xx: bool = True

    def __call__(self, status: int) -> bool:
        if 500 <= status <= 599:
            return self.fallback_on_5xx
        if status == 404:
            return self.fallback_on_404
        return False


HedgeAfter = Callable[[Expr], "float | None"]
"""Seconds after which a ``|`` operand still running gets the next one started too (None:
never); the caller's decision (:mod:`edgescope.proxy.hedge`)."""


@dataclass(frozen=True, slots=True)
class _Rules(Generic[R]):
    call: Callable[[str], Awaitable[R]]
    is_failure: Callable[[R], bool]
    hedge_after: HedgeAfter | None
    max_extra: int
    discard: Callable[[R], None] | None


async def evaluate(
    expr: Expr,
    call: Callable[[str], Awaitable[R]],
    is_failure: Callable[[R], bool],
    *,
    hedge_after: HedgeAfter | None = None,
    max_extra: int = 1,
    discard: Callable[[R], None] | None = None,
) -> Outcome[R]:
    """Evaluate ``expr``: call sites through ``call`` as the semantics say; never raises for a
    failed call (it is in the outcome). Cancelling ``evaluate`` cancels the calls in flight.
    ``hedge_after`` lets a slow ``|`` operand be raced by the next (reads only); the answers
    of operands that lose such a race are not in the outcome: ``discard`` gets them."""
    if _depth(expr) > MAX_EVAL_DEPTH:
        raise ScopeLimitError(f"expression nesting is deeper than {MAX_EVAL_DEPTH} levels")
    if has_network_form(expr):  # never guess: the caller resolves them (lang.network)
        raise ScopeCheckError("around()/nearest() must be resolved into sites before evaluation")
    return await _eval(expr, _Rules(call, is_failure, hedge_after, max(0, max_extra), discard))


async def _eval(expr: Expr, rules: _Rules[R]) -> Outcome[R]:
    if isinstance(expr, SiteRef):
        return await _call_site(expr.name, rules.call, rules.is_failure)
    if isinstance(expr, And):
        parts = await _all(expr.operands, rules)
        return Outcome(
            ok=all(part.ok for part in parts),
            attempts=tuple(a for part in parts for a in part.attempts),
            results=tuple(r for part in parts for r in part.results),
        )
    if rules.hedge_after is not None and rules.max_extra > 0:
        return await _hedged_or(expr.operands, rules)
    attempts: list[Attempt[R]] = []
    for operand in expr.operands:
        part = await _eval(operand, rules)
        attempts.extend(part.attempts)
        if part.ok:
            return Outcome(True, tuple(attempts), part.results)
    return Outcome(False, tuple(attempts), ())


async def _all(operands: Sequence[Expr], rules: _Rules[R]) -> list[Outcome[R]]:
    """Every operand at once. Branches catch their own failures, so one never cancels a
    sibling; only a bug (or a cancel from outside) ends the others, which are then cancelled."""
    tasks = [spawn(_eval(op, rules)) for op in operands]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        running = [t for t in tasks if not t.done()]
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)


async def _hedged_or(operands: Sequence[Expr], rules: _Rules[R]) -> Outcome[R]:
    """``|`` with hedging: the next operand starts when every running one has failed (as
    without hedging) or has run past its hedge delay; the first ok one wins."""
    assert rules.hedge_after is not None
    loop = asyncio.get_running_loop()
    running: dict[asyncio.Task[Outcome[R]], int] = {}
    finished: dict[int, Outcome[R]] = {}
    deadlines: dict[int, float | None] = {}
    started = 0

    def start() -> None:
        nonlocal started
        delay = rules.hedge_after(operands[started]) if rules.hedge_after else None
        deadlines[started] = None if delay is None else loop.time() + delay
        running[spawn(_eval(operands[started], rules))] = started
        started += 1

    def overdue(now: float) -> bool:
        """Every running operand is past its hedge delay, and another may start."""
        return (
            started < len(operands)
            and len(running) <= rules.max_extra
            and all((d := deadlines[i]) is not None and d <= now for i in running.values())
        )

    try:
        start()
        while running:
            pending = [d for i in running.values() if (d := deadlines[i]) is not None]
            timeout = max(0.0, max(pending) - loop.time()) if len(pending) == len(running) else None
            can_hedge = started < len(operands) and len(running) <= rules.max_extra
            done, _ = await asyncio.wait(
                running, timeout=timeout if can_hedge else None, return_when=FIRST_COMPLETED
            )
            winner = None
            for task in sorted(done, key=running.__getitem__):
                index = running.pop(task)
                part = task.result()
                if part.ok and winner is not None:
                    _discard(part, rules)  # lost the race by a hair
                    continue
                finished[index] = part
                if part.ok:
                    winner = part
            if winner is not None:
                attempts = tuple(a for i in sorted(finished) for a in finished[i].attempts)
                return Outcome(True, attempts, winner.results)
            if not running and started < len(operands):
                start()  # all failed: the next one, as a plain |
            elif overdue(loop.time()):
                start()  # a hedge: the next one too
        attempts = tuple(a for i in sorted(finished) for a in finished[i].attempts)
        return Outcome(False, attempts, ())
    finally:
        for task in running:
            task.cancel()
        if running:
            await asyncio.wait(running)
        for task in running:  # done before the cancel came: its answer is not wanted
            if not task.cancelled() and task.exception() is None and task.result().ok:
                _discard(task.result(), rules)


def _discard(part: Outcome[R], rules: _Rules[R]) -> None:
    if rules.discard is not None:
        for _, result in part.results:
            rules.discard(result)


async def _call_site(
    site: str, call: Callable[[str], Awaitable[R]], is_failure: Callable[[R], bool]
) -> Outcome[R]:
    try:
        result = await call(site)
    except EdgescopeError as exc:  # an error of one site is that site's failure, by contract
        return Outcome(False, (Attempt(site, None, exc, True),), ())
    if is_failure(result):
        return Outcome(False, (Attempt(site, result, None, True),), ())
    return Outcome(True, (Attempt(site, result, None, False),), ((site, result),))


def _depth(expr: Expr) -> int:
    """Nesting depth of ``expr`` (a site is 1), computed without recursion."""
    deepest = 0
    stack: list[tuple[Expr, int]] = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if depth > MAX_EVAL_DEPTH:
            break
        if not isinstance(node, SiteRef):
            stack.extend((op, depth + 1) for op in node.operands)
    return deepest
