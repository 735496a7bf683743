"""Print scopes back: canonical text (:func:`unparse`) and canonical JSON (:func:`scope_to_json`).

Canonical text uses service types, keeps the entries' order, puts single spaces around
operators and only the parentheses needed (an ``|`` inside an ``&``). The parser
(:mod:`edgescope.lang.parse`) reads both forms back to an equal AST.

    >>> from edgescope.lang.parse import parse_scope
    >>> unparse(parse_scope("{nova:Paris&Corte,glance:(Corte||Marseille)}"))
    '{compute: Paris & Corte, image: Corte | Marseille}'
"""

from __future__ import annotations

import re
from typing import Any

from edgescope.lang.ast import And, Around, Expr, Nearest, Or, Scope, SiteRef

_PLAIN_NAME = re.compile(r"[A-Za-z0-9._-]+")
_TEXT_SYNTAX = re.compile(r'[&|(){}:,"]')

JsonExpr = str | dict[str, list[Any]]


def unparse(scope: Scope) -> str:
    """The canonical text of ``scope``, e.g. ``{compute: Paris & Corte, image: Corte}``."""
    body = ", ".join(f"{entry.service}: {unparse_expr(entry.expr)}" for entry in scope.entries)
    return "{" + body + "}"


def unparse_expr(expr: Expr) -> str:
    """The canonical text of one location expression, e.g. ``(Corte | Marseille) & Paris``."""
    if isinstance(expr, SiteRef):
        return quote_site(expr.name)
    if isinstance(expr, Around):
        radius = format(expr.radius_ms.normalize(), "f")
        return f"around({quote_site(expr.center.name)}, {radius}ms)"
    if isinstance(expr, Nearest):
        return f"nearest({', '.join(quote_site(s.name) for s in expr.operands)})"
    if isinstance(expr, And):
        parts = [
            f"({unparse_expr(op)})" if isinstance(op, Or) else unparse_expr(op)
            for op in expr.operands
        ]
        return " & ".join(parts)
    return " | ".join(unparse_expr(op) for op in expr.operands)


def quote_site(name: str) -> str:
    """``Paris`` stays as is; other names are quoted: ``"New York"``, ``"a\\"b"``."""
    if _PLAIN_NAME.fullmatch(name):
        return name
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def is_json_site_name(value: str) -> bool:
    """Whether a service's JSON string value is one site name, taken as it is.

    It is when it has none of the text syntax's characters ``& | ( ) { } : , "`` and no
    blank at either end: ``"New York"``, ``"São Paulo"``. Any other string is read as
    expression text (``"Corte | Marseille"``).
    """
    return bool(value) and value == value.strip(" \t") and not _TEXT_SYNTAX.search(value)


def scope_to_json(scope: Scope) -> dict[str, JsonExpr]:
    """The canonical JSON AST: ``{"compute": {"and": ["Paris", "Corte"]}, "image": "Corte"}``.

    A site is its name: ``{"compute": "New York"}``. Only a lone site whose name would read
    as expression text (see :func:`is_json_site_name`, e.g. ``a|b``) is written quoted, in
    the text syntax; strings inside ``and``/``or`` are always names.
    """
    result: dict[str, JsonExpr] = {}
    for entry in scope.entries:
        expr = entry.expr
        if isinstance(expr, SiteRef):
            name = expr.name
            result[entry.service] = name if is_json_site_name(name) else quote_site(name)
        else:
            result[entry.service] = expr_to_json(expr)
    return result


def expr_to_json(expr: Expr) -> JsonExpr:
    """One expression as JSON: a site is its name, ``&``/``|`` are ``{"and"|"or": [...]}``."""
    if isinstance(expr, SiteRef):
        return expr.name
    if isinstance(expr, Around):
        radius = format(expr.radius_ms.normalize(), "f")
        return {"around": [expr.center.name, f"{radius}ms"]}
    if isinstance(expr, Nearest):
        return {"nearest": [site.name for site in expr.operands]}
    operator = "and" if isinstance(expr, And) else "or"
    return {operator: [expr_to_json(op) for op in expr.operands]}
