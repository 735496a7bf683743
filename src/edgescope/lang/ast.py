"""The scope AST: frozen dataclasses, with source positions that do not take part in equality.

A :class:`Scope` maps canonical service types to location expressions::

    Scope(entries=(ServiceScope("compute", And((SiteRef("Paris"), SiteRef("Corte")))),))

is ``{compute: Paris & Corte}``. ``And`` and ``Or`` are n-ary and kept flat by the parser
(``a & (b & c)`` is ``And((a, b, c))``), so structurally equal scopes compare equal.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal


@dataclass(frozen=True, slots=True)
class Span:
    """Half-open ``[start, end)`` character offsets into the source text."""

    start: int
    end: int


@dataclass(frozen=True, slots=True)
class SiteRef:
    """An atomic location: one site's instance of the service."""

    name: str
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class And:
    """``e1 & e2 & ...``: every operand, concurrently."""

    operands: tuple[Expr, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Or:
    """``e1 | e2 | ...``: operands in order until one succeeds."""

    operands: tuple[Expr, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Around:
    """``around(center, 25ms)``: every site within ``radius_ms`` of ``center``, as an ``&``.

    Resolved into concrete sites when the call is evaluated (:mod:`edgescope.lang.network`);
    ``operands`` is the center alone, so walks over the sites see it."""

    center: SiteRef
    radius_ms: Decimal
    span: Span | None = field(default=None, compare=False, repr=False)

    @property
    def operands(self) -> tuple[SiteRef, ...]:
        return (self.center,)


@dataclass(frozen=True, slots=True)
class Nearest:
    """``nearest(a, b, ...)``: a ``|`` of the sites, nearest (from the entry site) first.

    Resolved when the call is evaluated (:mod:`edgescope.lang.network`)."""

    operands: tuple[SiteRef, ...]
    span: Span | None = field(default=None, compare=False, repr=False)


Expr = SiteRef | And | Or | Around | Nearest


@dataclass(frozen=True, slots=True)
class ServiceScope:
    """One ``service: expression`` entry. ``service`` is the canonical service type."""

    service: str
    expr: Expr
    span: Span | None = field(default=None, compare=False, repr=False)
    """Span of the service key as written."""
    written_as: str = field(default="", compare=False, repr=False)
    """The key as the user wrote it (``nova`` for ``compute``), for messages."""


@dataclass(frozen=True, slots=True)
class Scope:
    """A whole scope. Services missing from it are served locally."""

    entries: tuple[ServiceScope, ...] = ()
    source: str = field(default="", compare=False, repr=False)

    def expr_for(self, service: str) -> Expr | None:
        """The expression for a canonical service type, or None when it is implicitly local."""
        for entry in self.entries:
            if entry.service == service:
                return entry.expr
        return None

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(entry.service for entry in self.entries)

    def with_expr(self, service: str, expr: Expr) -> Scope:
        """A copy where ``service`` maps to ``expr`` (added at the end if absent)."""
        entries = [
            ServiceScope(e.service, expr, e.span, e.written_as) if e.service == service else e
            for e in self.entries
        ]  # not dataclasses.replace: a branch's scope is built per branch, and replace is slow
        if service not in self.services:
            entries.append(ServiceScope(service, expr))
        return Scope(tuple(entries))

    def with_site(self, service: str, site: str) -> Scope:
        """A copy where ``service`` maps to the single site ``site`` (downstream propagation)."""
        return self.with_expr(service, SiteRef(site))


def has_network_form(expr: Expr) -> bool:
    """Whether ``expr`` has an ``around`` or ``nearest`` still to resolve."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Around | Nearest):
            return True
        if not isinstance(node, SiteRef):
            stack.extend(node.operands)
    return False


def iter_sites(expr: Expr) -> Iterator[SiteRef]:
    """Every site reference of ``expr``, left to right (iterative: no recursion limit)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, SiteRef):
            yield node
        else:
            stack.extend(reversed(node.operands))
