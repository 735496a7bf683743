"""Sites chosen by the network: ``around(Paris, 25ms)`` and ``nearest(Corte, Marseille)``.

Scope-lang proper parses them (grammar.lark) into :class:`edgescope.lang.ast.Around` and
:class:`edgescope.lang.ast.Nearest`; :func:`resolve_expr` and :func:`resolve_scope` replace
those nodes with concrete sites from a :class:`NetworkView` (the entry proxy's probes and
breakers) before routing. The functions below work on one form's text on its own:

* :func:`parse_form` -- the text of one form (its own small lark grammar) into
  :class:`Around` or :class:`Nearest`, with the checks: radius within
  ``(0, MAX_RADIUS_MS]`` in whole or decimal milliseconds, known sites, no site twice;
* :func:`unparse_form` -- the canonical text;
* :func:`resolve` -- pure: what a form is *now*, given measured RTTs (milliseconds, None
  when unknown) and the sites whose breaker is open. ``around(c, r)`` is the ``&`` of the
  ``sites`` (the candidates: those that run the scoped service) whose RTT from ``c`` is
  known and at most ``r`` (``c`` itself at 0), never one whose breaker is open, ``c`` first
  then by RTT (ties by the order of ``sites``); ``nearest(...)`` is the ``|`` of its sites
  by RTT from the entry site, ties and unknown RTTs (last) by the written order.

    >>> from edgescope.lang.unparse import unparse_expr
    >>> form = parse_form("around(Paris, 15ms)", known_sites=["Paris", "Marseille", "Corte"])
    >>> rtt = {"Paris": {"Marseille": 10.0, "Corte": 20.0}}
    >>> unparse_expr(resolve(form, rtt=lambda a, b: rtt.get(a, {}).get(b), entry="Paris",
    ...                      sites=["Paris", "Marseille", "Corte"]))
    'Paris & Marseille'
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from functools import cache

from lark import Lark, Token, exceptions

from edgescope.errors import ScopeCheckError, ScopeSyntaxError
from edgescope.lang import ast
from edgescope.lang.ast import And, Expr, Or, Scope, SiteRef
from edgescope.lang.unparse import quote_site, unparse_expr

__all__ = [
    "MAX_RADIUS_MS",
    "Around",
    "Nearest",
    "NetworkView",
    "NoSiteAround",
    "RttUnknown",
    "consulted",
    "needs_network",
    "parse_form",
    "resolve",
    "resolve_expr",
    "resolve_scope",
    "unparse_form",
]

MAX_RADIUS_MS = Decimal(1000)
"""An ``around`` radius above a second is refused: past it, "near" means every site."""
MAX_NEAREST = 64
"""A ``nearest`` of more sites is refused (its ``|`` is tried one site after the other)."""

_GRAMMAR = r"""
form: "around" "(" site "," RADIUS ")"   -> around
    | "nearest" "(" site ("," site)* ")" -> nearest
site: NAME | QUOTED
RADIUS: /[0-9]+(\.[0-9]+)?[ \t]*ms/
NAME: /[A-Za-z0-9._-]+/
QUOTED: /"([^"\\]|\\["\\])*"/
%ignore /[ \t]+/
"""


@dataclass(frozen=True, slots=True)
class Around:
    """``around(center, radius)``: every site within ``radius_ms`` of ``center``, as an ``&``."""

    center: str
    radius_ms: Decimal


@dataclass(frozen=True, slots=True)
class Nearest:
    """``nearest(a, b, ...)``: a ``|`` of the sites, nearest (from the entry site) first."""

    sites: tuple[str, ...]


Form = Around | Nearest
Rtt = Callable[[str, str], float | None]
"""``rtt(a, b)``: the last measured round trip from ``a``'s proxy to ``b``'s, in ms, or None."""


class NoSiteAround(ScopeCheckError):
    """``around`` resolved to no site (every candidate unknown, too far or breaker open)."""


@cache
def _parser() -> Lark:
    return Lark(_GRAMMAR, start="form", parser="lalr")


def parse_form(text: str, *, known_sites: Collection[str]) -> Form:
    """One form's text, checked; :class:`ScopeSyntaxError` or :class:`ScopeCheckError`."""
    if len(text) > 4096:
        raise ScopeSyntaxError("a network form is at most 4096 characters", text[:80], 0)
    try:
        tree = _parser().parse(text)
    except exceptions.UnexpectedInput as exc:
        pos = getattr(exc, "pos_in_stream", None) or 0
        raise ScopeSyntaxError(
            "expected around(SITE, RADIUS ms) or nearest(SITE, SITE, ...)", text, pos
        ) from None
    except exceptions.LarkError:
        raise ScopeSyntaxError("not a network form", text, 0) from None
    names = [
        _site_name(child)
        for child in tree.scan_values(lambda v: isinstance(v, Token))
        if child.type in ("NAME", "QUOTED")
    ]
    for name in names:
        if name not in known_sites:
            raise ScopeCheckError(f"unknown site {name!r}", text, text.find(name))
    if tree.data == "around":
        radius_text = next(t for t in tree.children if isinstance(t, Token))
        return Around(names[0], _radius(str(radius_text), text))
    repeated = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if repeated is not None:
        raise ScopeCheckError(f"site {repeated!r} is named twice in nearest()", text, 0)
    if len(names) < 2:
        raise ScopeCheckError("nearest() needs two sites or more to choose from", text, 0)
    if len(names) > MAX_NEAREST:
        raise ScopeCheckError(f"nearest() takes at most {MAX_NEAREST} sites", text, 0)
    return Nearest(tuple(names))


def _site_name(token: Token) -> str:
    if token.type == "QUOTED":
        return str(token)[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    return str(token)


def _radius(token: str, text: str) -> Decimal:
    number = token.removesuffix("ms").strip()
    try:
        radius = Decimal(number)
    except InvalidOperation:  # the grammar's pattern makes this unreachable; kept clear
        raise ScopeSyntaxError(f"bad radius {token!r}", text, text.find(token)) from None
    if not 0 < radius <= MAX_RADIUS_MS:
        raise ScopeCheckError(
            f"the radius must be more than 0 ms and at most {MAX_RADIUS_MS} ms, not {number} ms",
            text,
            text.find(token),
        )
    return radius


def unparse_form(form: Form) -> str:
    """Canonical text: ``around(Paris, 25ms)``, ``nearest(Corte, Marseille)``."""
    if isinstance(form, Around):
        radius = format(form.radius_ms.normalize(), "f")
        return f"around({quote_site(form.center)}, {radius}ms)"
    return f"nearest({', '.join(quote_site(s) for s in form.sites)})"


def resolve(
    form: Form,
    *,
    rtt: Rtt,
    entry: str,
    sites: Sequence[str],
    open_breakers: Collection[str] = (),
) -> Expr:
    """What ``form`` is now: an ``&`` (around) or ``|`` (nearest) of sites. Pure."""
    if isinstance(form, Around):
        return _around(form, rtt, sites, open_breakers)
    known = [(s, _rtt_from(rtt, entry, s)) for s in form.sites]
    order = sorted(
        range(len(known)),
        key=lambda i: (known[i][1] is None, known[i][1] or 0.0, i),
    )
    return Or(tuple(SiteRef(known[i][0]) for i in order))


def _around(form: Around, rtt: Rtt, sites: Sequence[str], open_breakers: Collection[str]) -> Expr:
    inside: list[tuple[float, int, str]] = []
    for index, site in enumerate(sites):
        if site in open_breakers:
            continue
        distance = _rtt_from(rtt, form.center, site)
        if distance is not None and distance <= float(form.radius_ms):
            inside.append((distance, index, site))
    inside.sort()
    if not inside:
        raise NoSiteAround(
            f"{unparse_form(form)} is no site now (not running the service, unknown RTTs, "
            "too far, or breakers open)"
        )
    refs = tuple(SiteRef(site) for _, _, site in inside)
    return refs[0] if len(refs) == 1 else And(refs)


def _rtt_from(rtt: Rtt, origin: str, site: str) -> float | None:
    return 0.0 if origin == site else rtt(origin, site)


class RttUnknown(ScopeCheckError):
    """``around(X, r)`` where no RTT measured from X is known here (-> 400)."""


@dataclass(frozen=True, slots=True)
class NetworkView:
    """What a proxy knows of the network when a call is evaluated.

    ``rtt_ms[a][b]`` is the measured round trip from ``a``'s proxy to ``b``'s (a proxy
    knows its own row: its probes); ``sites`` are the candidates of ``around``, in catalog
    order (ties); sites in ``open_breakers`` are never inside ``around``. ``services[s]`` is
    what site ``s`` runs: a site is a candidate of ``around`` for a service only when it is
    known to run it (a site missing from ``services`` runs nothing known), and a ``nearest``
    drops a site known not to run it. ``services`` None: every site runs every service."""

    entry: str
    sites: tuple[str, ...]
    rtt_ms: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    open_breakers: frozenset[str] = frozenset()
    services: Mapping[str, frozenset[str]] | None = None

    def rtt(self, origin: str, site: str) -> float | None:
        return self.rtt_ms.get(origin, {}).get(site)

    def runs(self, site: str, service: str | None) -> bool | None:
        """Whether ``site`` runs ``service``: True, False, or None (not known)."""
        if self.services is None or service is None:
            return True
        known = self.services.get(site)
        return None if known is None else service in known

    def candidates(self, service: str | None) -> tuple[str, ...]:
        """The sites ``around`` may hold for ``service``: those known to run it."""
        return tuple(s for s in self.sites if self.runs(s, service))


def needs_network(scope: Scope) -> bool:
    """Whether ``scope`` has an ``around`` or ``nearest`` to resolve."""
    return any(ast.has_network_form(entry.expr) for entry in scope.entries)


def resolve_scope(scope: Scope, view: NetworkView) -> Scope:
    """``scope`` with every ``around``/``nearest`` of every entry resolved. Pure."""
    if not needs_network(scope):
        return scope
    entries = tuple(
        replace(e, expr=resolve_expr(e.expr, view, scope.source, e.service)) for e in scope.entries
    )
    return Scope(entries, scope.source)


def consulted(scope: Scope, view: NetworkView) -> frozenset[str]:
    """The sites whose RTT the ``around``/``nearest`` of ``scope`` read (the entry excepted):
    the proxy keeps probing them, so their RTTs stay measured while such scopes are in use."""
    found: set[str] = set()
    for entry in scope.entries:
        stack: list[Expr] = [entry.expr]
        while stack:
            node = stack.pop()
            if isinstance(node, ast.Around):  # a site not measured yet may run it: measure it
                found.update(s for s in view.sites if view.runs(s, entry.service) is not False)
            elif isinstance(node, ast.Nearest):
                found.update(ref.name for ref in node.operands)
            elif not isinstance(node, SiteRef):
                stack.extend(node.operands)
    return frozenset(found - {view.entry})


def resolve_expr(
    expr: Expr, view: NetworkView, source: str = "", service: str | None = None
) -> Expr:
    """``expr`` (the expression of ``service``) with its ``around`` as ``&`` and its
    ``nearest`` as ``|`` of concrete sites.

    Raises :class:`RttUnknown` for ``around(X, r)`` when nothing measured from X is known
    (X is not the entry site and no RTT row from X was given), :class:`NoSiteAround` when an
    ``around`` or a ``nearest`` holds no site, and :class:`ScopeCheckError` when a site ends
    up twice."""
    resolved = _resolve(expr, view, source, service)
    seen: set[str] = set()
    for ref in ast.iter_sites(resolved):
        if ref.name in seen:
            raise ScopeCheckError(
                f"site {ref.name!r} is named twice once around()/nearest() are resolved: "
                f"{unparse_expr(resolved)}",
                source,
                0,
            )
        seen.add(ref.name)
    return resolved


def _resolve(expr: Expr, view: NetworkView, source: str, service: str | None) -> Expr:
    if isinstance(expr, SiteRef):
        return expr
    if isinstance(expr, ast.Around):
        center = expr.center.name
        if center != view.entry and center not in view.rtt_ms:
            start, end = (expr.span.start, expr.span.end) if expr.span else (0, None)
            raise RttUnknown(
                f"{unparse_expr(expr)}: no RTT measured from {center} is known at {view.entry} "
                f"(a proxy measures its own RTTs only); write around({quote_site(view.entry)}, "
                f"...) or enter through {center}'s proxy",
                source,
                start,
                end,
            )
        form = Around(center, expr.radius_ms)
        try:
            return resolve(
                form,
                rtt=view.rtt,
                entry=view.entry,
                sites=view.candidates(service),
                open_breakers=view.open_breakers,
            )
        except NoSiteAround as exc:
            start = expr.span.start if expr.span else 0
            raise NoSiteAround(str(exc.args[0]), source, start) from None
    if isinstance(expr, ast.Nearest):
        names = tuple(s.name for s in expr.operands if view.runs(s.name, service) is not False)
        if not names:
            start = expr.span.start if expr.span else 0
            raise NoSiteAround(
                f"{unparse_expr(expr)}: none of these sites runs {service}", source, start
            )
        if len(names) == 1:
            return SiteRef(names[0])
        return resolve(Nearest(names), rtt=view.rtt, entry=view.entry, sites=view.sites)
    kind = And if isinstance(expr, And) else Or
    flat: list[Expr] = []
    for operand in expr.operands:
        child = _resolve(operand, view, source, service)
        flat.extend(child.operands if isinstance(child, kind) else (child,))
    return kind(tuple(flat), expr.span)
