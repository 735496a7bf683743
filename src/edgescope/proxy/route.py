"""The routing decision: (scope, service, this site, peers, hop marker) -> :class:`Plan`. Pure.

Neighbours: ``server.py`` parses the carriers and calls :func:`plan_route`; ``dispatch.py``
(``Dispatcher.run``) runs the plan with scope-lang's evaluator (``&`` concurrently, ``|`` in
order), and ``sender.py`` sends each branch the scope of :func:`branch_scope`. No I/O
here, so every rule is testable without sockets.

Rules: no scope, or no entry for the service, or an entry that is just this site, means
*local*. Every other site named must be a configured peer. At ingress the scope gets an
explicit ``identity`` entry (this site) so a remote service validates the user's token at
the user's own Keystone. A call that already crossed ``max_hops`` proxies is a loop.

    >>> from edgescope.lang.ast import Scope, ServiceScope, SiteRef
    >>> s = Scope((ServiceScope("image", SiteRef("Corte")),))
    >>> plan = plan_route(s, "image", "Paris", {"Corte"}, hops=0, max_hops=4, max_fanout=8)
    >>> plan.sites, plan.is_local
    (('Corte',), False)
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from edgescope.errors import EdgescopeError, ErrorCode, ScopeCheckError, ScopeLimitError
from edgescope.lang.ast import And, Expr, Scope, SiteRef, iter_sites
from edgescope.lang.network import NetworkView, needs_network, resolve_scope
from edgescope.lang.registry import IDENTITY
from edgescope.lang.unparse import unparse


class FanoutTooWide(ScopeLimitError):
    """The scope names more sites for one service than ``max_fanout`` (-> 400)."""

    code = ErrorCode.FANOUT_TOO_WIDE

    def answer(self) -> tuple[int, str, str]:
        return self.code.http_status(), self.code.title, self.message  # no column: it is 1


class LoopDetected(EdgescopeError):
    """The call went through more proxies than ``max_hops``: a routing loop (-> 508)."""

    code = ErrorCode.LOOP_DETECTED


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do with one call."""

    expr: Expr
    """The location expression to evaluate (``SiteRef(this site)`` when local)."""
    sites: tuple[str, ...]
    """Every site the expression names, left to right."""
    downstream: Scope | None
    """The scope forwarded on every branch (before the branch's own site is set)."""
    local_site: str

    @property
    def is_local(self) -> bool:
        return self.sites == (self.local_site,)

    @property
    def merges(self) -> bool:
        """Whether results are combined (an ``&`` somewhere): branch bodies are then read whole."""
        return _has_and(self.expr)


def plan_route(
    scope: Scope | None,
    service: str,
    local_site: str,
    peers: Collection[str],
    *,
    hops: int,
    max_hops: int,
    max_fanout: int,
    ingress: bool = True,
    network: NetworkView | None = None,
) -> Plan:
    """Decide how to serve ``service`` for a call carrying ``scope``; raise on a bad route.

    ``around``/``nearest`` anywhere in the scope are resolved first, from ``network`` (this
    proxy's RTTs and open breakers; none known when None), so the plan and the scope sent
    downstream name concrete sites only."""
    local = SiteRef(local_site)
    if scope is None:
        return Plan(local, (local_site,), None, local_site)
    source = scope.source
    if ingress and scope.expr_for(IDENTITY) is None:
        scope = scope.with_site(IDENTITY, local_site)
    known = {local_site, *peers}
    if needs_network(scope):
        for entry in scope.entries:
            _check_known(entry.expr, entry.service, known, source)
        view = network or NetworkView(local_site, (local_site, *sorted(peers)))
        scope = resolve_scope(scope, view)
        _check_resolved(scope, max_fanout, source)
    expr = scope.expr_for(service) or local
    sites = tuple(ref.name for ref in iter_sites(expr))
    if len(sites) > max_fanout:
        raise FanoutTooWide(
            f"the scope sends {service} to {len(sites)} sites; the fan-out limit is {max_fanout}",
            source,
            0,
        )
    _check_known(expr, service, known, source)
    if any(site != local_site for site in sites) and hops + 1 > max_hops:
        raise LoopDetected(
            f"the call has crossed {hops} proxies (limit {max_hops}): "
            f"a routing loop towards {', '.join(s for s in sites if s != local_site)}"
        )
    return Plan(expr, sites, scope, local_site)


RESOLVED_MAX_LENGTH = 8000
"""Longest resolved scope sent on (it travels in one header; servers refuse one over 8 KiB)."""


def _check_resolved(scope: Scope, max_fanout: int, source: str) -> None:
    """An ``around`` may name many sites, for any service of the scope, not only the one
    called: each service's sites stay within the fan-out limit, and the whole resolved scope
    within what one header carries."""
    for entry in scope.entries:
        width = sum(1 for _ in iter_sites(entry.expr))
        if width > max_fanout:
            raise FanoutTooWide(
                f"the scope resolves {entry.service} to {width} sites; the fan-out limit is "
                f"{max_fanout}",
                source,
                0,
            )
    length = len(unparse(scope))
    if length > RESOLVED_MAX_LENGTH:
        raise FanoutTooWide(
            f"the scope resolves to {length} characters; at most {RESOLVED_MAX_LENGTH} are sent on",
            source,
            0,
        )


def _check_known(expr: Expr, service: str, known: Collection[str], source: str) -> None:
    for ref in iter_sites(expr):
        if ref.name not in known:
            span = ref.span
            raise ScopeCheckError(
                f"unknown site {ref.name!r} for {service}; known sites: {', '.join(sorted(known))}",
                source,
                span.start if span else 0,
                span.end if span else None,
            )


def branch_scope(plan: Plan, service: str, site: str) -> Scope | None:
    """The scope sent on the branch to ``site``: the routed service pinned to that site."""
    if plan.downstream is None:
        return None
    if plan.downstream.expr_for(service) is None and site == plan.local_site:
        return plan.downstream
    return plan.downstream.with_site(service, site)


def _has_and(expr: Expr) -> bool:
    stack = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, And):
            return True
        if not isinstance(node, SiteRef):
            stack.extend(node.operands)
    return False
