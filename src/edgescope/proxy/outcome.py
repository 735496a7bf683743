"""What a multi-site call answers: the branch rule and the strict/eventual rule. Pure.

scope-lang's evaluator says whether the expression succeeded (every ``&`` branch, one ``|``
branch); these rules say what a branch's status means and what the call answers when the
``&`` did not fully succeed (docs/semantics.md, "Strict and eventual").

* :func:`branch_failed` -- in an ``&``, a site refusing the caller (401, 403) fails the
  branch; a write refused with any 4xx did not happen there, so it fails too. Otherwise the
  read policy decides (404 and 5xx fail, any other answer is an answer).
* :func:`tried_before` -- the sites an ``|`` tries before each site: a write in doubt at
  one of them is not sent on to it (docs/semantics.md, "A write never falls over").
* :func:`judge` -- strict: anything short of every branch is a failure. Eventual: a write
  that succeeded somewhere and failed only by unreachable members is queued for them
  (``DEGRADED``, when something can queue it); a read answers from the reachable members
  (``DEGRADED``), or with their failure when one of them failed (``MISSED``: a 404 where
  reachable stays a 404, so a client's lookup by name goes on).

    >>> judge([Branch("Paris", 201, False), Branch("Corte", None, True)], ok=False, write=True,
    ...       eventual=True, can_queue=True)
    Judgement(verdict=<Verdict.DEGRADED: 'degraded'>, pending=('Corte',))
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from edgescope.lang import And, Expr, HttpFailurePolicy, Or, SiteRef, iter_sites

READ_POLICY = HttpFailurePolicy()


class Verdict(enum.Enum):
    OK = "ok"
    """The expression succeeded."""
    DEGRADED = "degraded"
    """Eventual: answered by the reachable members; a write is queued for the others."""
    MISSED = "missed"
    """Eventual read: a reachable member's failure (e.g. 404) is the answer."""
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Branch:
    """One site tried: its status, or None when it could not be reached."""

    site: str
    status: int | None
    failed: bool


@dataclass(frozen=True, slots=True)
class Judgement:
    verdict: Verdict
    pending: tuple[str, ...] = ()
    """Sites a degraded write must be queued for."""


def branch_failed(status: int, *, write: bool, policy: HttpFailurePolicy = READ_POLICY) -> bool:
    """Whether one ``&`` branch's answer fails that branch."""
    return status in (401, 403) or policy(status) or (write and status >= 400)


def tried_before(expr: Expr) -> dict[str, frozenset[str]]:
    """Each site of ``expr`` with the sites some enclosing ``|`` tries before it.

    >>> from edgescope.lang import parse_scope
    >>> before = tried_before(parse_scope("{nova: Paris & (Corte | Marseille)}").entries[0].expr)
    >>> before["Paris"], before["Corte"], before["Marseille"]
    (frozenset(), frozenset(), frozenset({'Corte'}))
    """
    out: dict[str, frozenset[str]] = {}
    stack: list[tuple[Expr, frozenset[str]]] = [(expr, frozenset())]
    while stack:  # iterative: no recursion limit
        node, before = stack.pop()
        if isinstance(node, SiteRef):
            out[node.name] = before
        elif isinstance(node, Or):
            earlier = before
            for operand in node.operands:
                stack.append((operand, earlier))
                earlier = earlier | {site.name for site in iter_sites(operand)}
        elif isinstance(node, And):
            stack.extend((operand, before) for operand in node.operands)
    return out


def judge(
    branches: Sequence[Branch], *, ok: bool, write: bool, eventual: bool, can_queue: bool
) -> Judgement:
    """The verdict of an ``&`` whose evaluation gave ``ok`` over ``branches``."""
    if ok:
        return Judgement(Verdict.OK)
    if not eventual:
        return Judgement(Verdict.FAILED)
    unreachable = tuple(b.site for b in branches if b.status is None)
    answered = [b for b in branches if b.status is not None]
    if write:
        refused = any(b.failed for b in answered)
        if can_queue and unreachable and not refused and answered:
            return Judgement(Verdict.DEGRADED, unreachable)
        return Judgement(Verdict.FAILED)
    if not unreachable or not answered:
        return Judgement(Verdict.FAILED)
    if any(b.failed for b in answered):
        return Judgement(Verdict.MISSED)
    return Judgement(Verdict.DEGRADED)
