"""Parse scope text (or its JSON form) into the AST of :mod:`edgescope.lang.ast`.

The one entry point is :func:`parse_scope`. Untrusted text first goes through
:func:`edgescope.lang.limits.prescan` (length, control characters, nesting), then lark's
LALR parser (grammar.lark); every lark exception is mapped here, at one boundary, to a
:class:`~edgescope.errors.ScopeSyntaxError` with a friendly message from
:mod:`edgescope.lang.messages`. Aliases become service types via the
:class:`~edgescope.lang.registry.ServiceRegistry`.

    >>> parse_scope("{nova: Paris & Corte, glance: Corte | Marseille}").services
    ('compute', 'image')
"""

from __future__ import annotations

import difflib
import json
import re
from decimal import Decimal
from functools import cache
from importlib.resources import files
from typing import Any, cast

import lark
from lark import Lark, Token, Transformer, v_args
from lark.tree import Meta

from edgescope.errors import ScopeCheckError, ScopeError, ScopeLimitError, ScopeSyntaxError
from edgescope.lang import messages as msg
from edgescope.lang.ast import (
    And,
    Around,
    Expr,
    Nearest,
    Or,
    Scope,
    ServiceScope,
    SiteRef,
    Span,
    iter_sites,
)
from edgescope.lang.limits import DEFAULT_LIMITS, Limits, prescan
from edgescope.lang.network import MAX_NEAREST, MAX_RADIUS_MS
from edgescope.lang.registry import DEFAULT_REGISTRY, ServiceRegistry
from edgescope.lang.unparse import is_json_site_name, quote_site, unparse_expr

_NAME_CHAR = re.compile(r"[A-Za-z0-9._-]")
_NAME = re.compile(r"[A-Za-z0-9._-]+")
_JSON_START = re.compile(r'[ \t]*\{[ \t]*"')
_DISPLAY = {
    "LBRACE": "'{'",
    "RBRACE": "'}'",
    "LPAR": "'('",
    "RPAR": "')'",
    "COLON": "':'",
    "COMMA": "','",
    "_AND": "'&'",
    "_OR": "'|'",
    "NAME": "a name",
    "QUOTED": "a quoted site name",
    "RADIUS": "a radius such as 25ms",
    "$END": "the end of the text",
}


def parse_scope(
    text: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    registry: ServiceRegistry = DEFAULT_REGISTRY,
) -> Scope:
    """Parse a scope in text form (``{nova: Paris}``) or JSON form (``{"compute": "Paris"}``).

    Raises :class:`~edgescope.errors.ScopeError` (syntax, limit or check subclass), with
    the position of the offending character, and nothing else, whatever the input.
    Not cached here: a proxy keeps its own bounded cache of parses (``SiteProxy``), which
    ``/metrics`` reports.
    """
    prescan(text, limits)
    if _JSON_START.match(text):
        return _parse_json_form(text, limits, registry)
    tree = _lalr_parse(text, "scope", text, 0)
    pairs = cast(list[tuple[Token, Expr]], _ScopeBuilder(0).transform(tree))
    return _finish(pairs, text, limits, registry)


def _finish(
    pairs: list[tuple[Token, Expr]], source: str, limits: Limits, registry: ServiceRegistry
) -> Scope:
    """Resolve service names, then reject repeated services, repeated sites and too many sites."""
    all_sites = [site for _, expr in pairs for site in iter_sites(expr)]
    if len(all_sites) > limits.max_sites:
        _raise_at(
            ScopeLimitError,
            msg.MSG_TOO_MANY_SITES,
            source,
            all_sites[limits.max_sites].span,
            count=len(all_sites),
            limit=limits.max_sites,
        )
    for site in all_sites:
        if not site.name:
            _raise_at(ScopeSyntaxError, msg.MSG_EMPTY_SITE, source, site.span)
    for _, expr in pairs:
        _check_network_forms(expr, source)
    entries: list[ServiceScope] = []
    seen: dict[str, str] = {}
    for name, expr in pairs:
        span = Span(name.start_pos or 0, name.end_pos or 0)
        service = registry.canonical(name)
        if service is None:
            close = difflib.get_close_matches(name.lower(), registry.names, n=1)
            hint = f"; did you mean {close[0]}?" if close else ""
            message = msg.MSG_UNKNOWN_SERVICE.format(name=str(name), hint=hint)
            raise ScopeCheckError(message, source, span.start, span.end)
        if service in seen:
            message = msg.MSG_SERVICE_TWICE.format(
                service=service, first=seen[service], name=str(name)
            )
            raise ScopeCheckError(message, source, span.start, span.end)
        seen[service] = str(name)
        repeated = find_repeated_site(expr)
        if repeated is not None:
            _raise_at(
                ScopeCheckError,
                msg.MSG_SITE_TWICE,
                source,
                repeated.span,
                site=repeated.name,
                service=service,
            )
        entries.append(ServiceScope(service, expr, span, str(name)))
    return Scope(tuple(entries), source)


def _check_network_forms(expr: Expr, source: str) -> None:
    """The bounds of ``around`` (radius) and ``nearest`` (number of sites)."""
    stack: list[Expr] = [expr]
    while stack:
        node = stack.pop()
        if isinstance(node, Around) and not 0 < node.radius_ms <= MAX_RADIUS_MS:
            radius = format(node.radius_ms.normalize(), "f")
            _raise_at(
                ScopeCheckError, msg.MSG_RADIUS, source, node.span, radius=radius, max=MAX_RADIUS_MS
            )
        if isinstance(node, Nearest) and not 2 <= len(node.operands) <= MAX_NEAREST:
            _raise_at(
                ScopeCheckError,
                msg.MSG_NEAREST_COUNT,
                source,
                node.span,
                count=len(node.operands),
                max=MAX_NEAREST,
            )
        if not isinstance(node, SiteRef):
            stack.extend(node.operands)


def find_repeated_site(expr: Expr) -> SiteRef | None:
    """The second reference to a site already named earlier in ``expr``, if any."""
    seen: set[str] = set()
    for site in iter_sites(expr):
        if site.name in seen:
            return site
        seen.add(site.name)
    return None


def _raise_at(
    kind: type[ScopeError], template: str, source: str, span: Span | None, **fields: Any
) -> None:
    start, end = (span.start, span.end) if span else (0, None)
    raise kind(template.format(**fields), source, start, end)


# --- the JSON form ---------------------------------------------------------------------


def _parse_json_form(text: str, limits: Limits, registry: ServiceRegistry) -> Scope:
    """``{"compute": "Paris & Corte"}`` or ``{"compute": {"and": ["Paris", "Corte"]}}``.

    The JSON is rewritten as text (``{compute: Paris & Corte}``) which becomes the
    scope's source, so spans and carets point into it; each value is parsed on its own,
    so a value can never inject another entry.
    """
    try:
        document = json.loads(text, object_pairs_hook=list)
    except json.JSONDecodeError as exc:
        raise ScopeSyntaxError(msg.MSG_BAD_JSON.format(detail=exc.msg), text, exc.pos) from None
    if not isinstance(document, list):
        raise ScopeSyntaxError(msg.MSG_BAD_JSON.format(detail="not an object"), text, 0)
    source = "{"
    placed: list[tuple[Token, str, int]] = []
    for key, value in document:
        if len(source) > 1:
            source += ", "
        key_token = Token("NAME", key, start_pos=len(source), end_pos=len(source) + len(key))
        source += key + ": "
        value_text = _json_value_text(key, value, text)
        placed.append((key_token, value_text, len(source)))
        source += value_text
    source += "}"
    prescan(source, limits)
    for key_token, _, _ in placed:
        if not _NAME.fullmatch(key_token):
            start = key_token.start_pos or 0
            raise ScopeSyntaxError(msg.MSG_BAD_NAME_CHAR, source, start, key_token.end_pos)
    pairs = [
        (key_token, _ExprBuilder(offset).transform(_lalr_parse(value_text, "expr", source, offset)))
        for key_token, value_text, offset in placed
    ]
    return _finish(pairs, source, limits, registry)


def _json_value_text(key: str, value: object, text: str) -> str:
    """A service's JSON value as expression text: a string is either one site name
    (``"New York"``, see :func:`is_json_site_name`) or already expression text."""
    if isinstance(value, str):
        name = value.strip(" \t")
        return quote_site(name) if is_json_site_name(name) else value
    return unparse_expr(_json_to_expr(key, value, text))


def _json_to_expr(key: str, value: object, text: str) -> Expr:
    """Build an Expr from the canonical JSON AST (depth already bounded by the pre-scan)."""
    if isinstance(value, str):
        return SiteRef(value)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], tuple):
        ((operator, operands),) = value
        if _is_json_form(operator, operands):
            sites = tuple(SiteRef(name) for name in operands)
            if operator == "nearest":
                return Nearest(sites)
            return Around(sites[0], _json_radius(operands[1], text))
        if operator in ("and", "or") and isinstance(operands, list) and operands:
            children = tuple(_json_to_expr(key, item, text) for item in operands)
            if len(children) == 1:
                return children[0]
            return And(children) if operator == "and" else Or(children)
    raise ScopeSyntaxError(msg.MSG_JSON_BAD_VALUE.format(key=key), text, 0)


def _is_json_form(operator: object, operands: object) -> bool:
    """``{"around": ["Paris", "25ms"]}`` or ``{"nearest": ["Corte", "Marseille"]}``."""
    if not isinstance(operands, list) or not all(isinstance(o, str) for o in operands):
        return False
    return (operator == "around" and len(operands) == 2) or (
        operator == "nearest" and len(operands) >= 1
    )


def _json_radius(value: str, text: str) -> Decimal:
    match = re.fullmatch(r"([0-9]+(?:\.[0-9]+)?)[ \t]*ms", value)
    if match is None:
        raise ScopeSyntaxError(msg.MSG_JSON_RADIUS.format(value=value), text, 0)
    return Decimal(match.group(1))


# --- the lark boundary -----------------------------------------------------------------


@cache
def _parser() -> Lark:
    grammar = files("edgescope.lang").joinpath("grammar.lark").read_text(encoding="utf-8")
    return Lark(
        grammar,
        parser="lalr",
        lexer="contextual",
        start=["scope", "expr"],
        propagate_positions=True,
        maybe_placeholders=True,
    )


def _lalr_parse(text: str, start: str, source: str, offset: int) -> lark.Tree[Token]:
    """Parse with lark; map any lark error to a positioned ScopeSyntaxError over ``source``."""
    try:
        return _parser().parse(text, start=start)
    except lark.exceptions.UnexpectedInput as exc:
        pos, end, message = _describe(exc, text, start)
        raise ScopeSyntaxError(message, source, offset + pos, offset + end) from None
    except lark.exceptions.LarkError as exc:  # not expected, but never let lark's type out
        raise ScopeSyntaxError(f"cannot parse the scope: {exc}", source, offset) from None


def _describe(exc: lark.exceptions.UnexpectedInput, text: str, start: str) -> tuple[int, int, str]:
    """Position, end and friendly message of a lark error."""
    key, pos, end = _error_key(exc, text)
    # The table's examples are whole scopes; a JSON value (start "expr") only shares
    # the keys that do not depend on the parser state.
    message = _message_index().get(key) if start == "scope" or isinstance(key, str) else None
    if message is None:
        accepts = key[1] if isinstance(key, tuple) else frozenset()
        message = "expected " + _join(sorted(_DISPLAY.get(t, t) for t in accepts))
    return pos, end, message


ErrorKey = str | tuple[str, frozenset[str]]


def _error_key(exc: lark.exceptions.UnexpectedInput, text: str) -> tuple[ErrorKey, int, int]:
    accepts = _accepts(exc)
    if isinstance(exc, lark.exceptions.UnexpectedCharacters):
        pos = exc.pos_in_stream or 0
        char = text[pos]
        if char == '"' and "QUOTED" in accepts:
            return "unterminated", pos, len(text)
        if "NAME" in accepts or (pos > 0 and _NAME_CHAR.match(text[pos - 1])):
            return "bad-name-char", pos, pos + 1
        return ("token", accepts), pos, pos + 1
    if isinstance(exc, lark.exceptions.UnexpectedToken) and exc.token.type != "$END":
        token = exc.token
        pos = token.start_pos or 0
        end = token.end_pos or pos + 1
        before = text[:pos].rstrip(" \t")
        if token.type == "NAME" and "_AND" in accepts and before and _NAME_CHAR.match(before[-1]):
            return "unquoted-space", pos, end
        return ("token", accepts), pos, end
    return ("token", accepts), len(text), len(text) + 1


def _accepts(exc: lark.exceptions.UnexpectedInput) -> frozenset[str]:
    interactive = getattr(exc, "interactive_parser", None)
    accepts = interactive.accepts() if interactive is not None else None
    return frozenset(
        accepts or getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ()
    )


@cache
def _message_index() -> dict[ErrorKey, str]:
    """Map each error key to its row's message, by parsing every bad input of the table once."""
    index: dict[ErrorKey, str] = {}
    for row in msg.SYNTAX_MESSAGES:
        for bad in row.inputs:
            try:
                _parser().parse(bad, start="scope")
            except lark.exceptions.UnexpectedInput as exc:
                key = _error_key(exc, bad)[0]
                if index.setdefault(key, row.message) != row.message:
                    raise AssertionError(f"{bad!r}: {index[key]!r} vs {row.message!r}") from None
            else:
                raise AssertionError(f"example {bad!r} parses")
    return index


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# --- tree -> AST -----------------------------------------------------------------------


class _ExprBuilder(Transformer[Token, Expr]):
    """Build flat And/Or/SiteRef nodes with spans shifted by ``offset``."""

    def __init__(self, offset: int) -> None:
        super().__init__()
        self.offset = offset

    def _span(self, start: int | None, end: int | None) -> Span:
        return Span(self.offset + (start or 0), self.offset + (end or 0))

    def site(self, children: list[Token]) -> SiteRef:
        (token,) = children
        return SiteRef(str(token), self._span(token.start_pos, token.end_pos))

    def quoted_site(self, children: list[Token]) -> SiteRef:
        (token,) = children
        name = re.sub(r"\\(.)", r"\1", token[1:-1])
        return SiteRef(name, self._span(token.start_pos, token.end_pos))

    @v_args(meta=True)
    def and_expr(self, meta: Meta, children: list[Expr]) -> And:
        flat = [
            op
            for child in children
            for op in (child.operands if isinstance(child, And) else (child,))
        ]
        return And(tuple(flat), self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def or_expr(self, meta: Meta, children: list[Expr]) -> Or:
        flat = [
            op
            for child in children
            for op in (child.operands if isinstance(child, Or) else (child,))
        ]
        return Or(tuple(flat), self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def around(self, meta: Meta, children: list[Any]) -> Around:
        center, radius = children
        number = str(radius).removesuffix("ms").strip(" \t")
        return Around(center, Decimal(number), self._span(meta.start_pos, meta.end_pos))

    @v_args(meta=True)
    def nearest(self, meta: Meta, children: list[SiteRef]) -> Nearest:
        return Nearest(tuple(children), self._span(meta.start_pos, meta.end_pos))


class _ScopeBuilder(_ExprBuilder):
    def entry(self, children: list[Any]) -> tuple[Token, Expr]:
        name, expr = children
        return name, expr

    def scope(self, children: list[Any]) -> list[tuple[Token, Expr]]:
        return [child for child in children if child is not None]
