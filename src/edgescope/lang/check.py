"""Static checks of a parsed scope against a catalog, before anything is sent anywhere.

:func:`check_scope` raises :class:`~edgescope.errors.ScopeCheckError`, positioned on the
offending node, for: an unknown service, a service given twice, a site repeated in one
expression, an unknown site (with "did you mean"), a site that does not run the service,
and a bad collaboration (:mod:`edgescope.lang.rules`). The catalog is anything shaped like
:class:`SiteCatalog`; :class:`edgescope.catalog.Catalog` is the real one.

    >>> from edgescope.catalog import Catalog
    >>> from edgescope.lang import parse_scope
    >>> check_scope(parse_scope("{nova: Pari}"), Catalog.from_sites(["Paris", "Corte"]))
    Traceback (most recent call last):
    ...
    edgescope.errors.ScopeCheckError: unknown site 'Pari'; did you mean Paris? at column 8
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import NamedTuple, Protocol

from edgescope.errors import ScopeCheckError
from edgescope.lang.ast import Scope, Span, iter_sites
from edgescope.lang.parse import find_repeated_site
from edgescope.lang.registry import ServiceRegistry
from edgescope.lang.rules import DEFAULT_RULES, Rule
from edgescope.lang.unparse import unparse_expr


class SiteCatalog(Protocol):
    """What the checks need to know about the deployment."""

    @property
    def registry(self) -> ServiceRegistry: ...

    @property
    def site_names(self) -> tuple[str, ...]: ...

    def services_of(self, site: str) -> frozenset[str]: ...


class CheckRow(NamedTuple):
    message: str
    inputs: tuple[str, ...]


MSG_UNKNOWN_SERVICE = "unknown service {service!r}: the catalog knows {known}"
MSG_SERVICE_TWICE = "service {service!r} is given twice"
MSG_SITE_TWICE = "site {site!r} appears twice in the expression for {service}"
MSG_UNKNOWN_SITE = "unknown site {site!r}{hint}"
MSG_NOT_RUN = "site {site!r} does not run {service} (it runs {runs})"
MSG_RULE = (
    "{first} and {second} must run at the same site ({detail}): give both the same single"
    " site, or leave {second} out so that each {first} site uses its own. {explanation}"
)

EXAMPLE_CATALOG_TOML = """\
[[sites]]
name = "Paris"

[[sites]]
name = "Corte"

[[sites]]
name = "Marseille"
services = ["glance", "keystone"]
"""
"""The catalog the examples of :data:`CHECK_MESSAGES` are checked against."""

CHECK_MESSAGES: tuple[CheckRow, ...] = (
    CheckRow(MSG_UNKNOWN_SITE, ("{nova: Pari}", "{glance: Corte | marseille}", "{nova: Lyon}")),
    CheckRow(MSG_NOT_RUN, ("{nova: Paris & Marseille}",)),
    CheckRow(
        MSG_RULE,
        (
            "{nova: Paris, neutron: Corte}",
            "{nova: Paris & Corte, placement: Paris}",
            "{nova: Paris | Corte, neutron: Paris | Corte}",
        ),
    ),
)
"""Check errors that a parsed scope can still have, with examples (see EXAMPLE_CATALOG_TOML).

The other messages here (unknown service, service or site given twice) are caught by the
parser already; check_scope repeats them for scopes built by code or another registry."""


def check_scope(scope: Scope, catalog: SiteCatalog, rules: Iterable[Rule] = DEFAULT_RULES) -> None:
    """Raise ScopeCheckError for the first problem of ``scope`` against ``catalog``."""
    seen: set[str] = set()
    for entry in scope.entries:
        if entry.service not in catalog.registry.services:
            known = ", ".join(catalog.registry.services)
            _fail(scope, entry.span, MSG_UNKNOWN_SERVICE, service=entry.service, known=known)
        if entry.service in seen:
            _fail(scope, entry.span, MSG_SERVICE_TWICE, service=entry.service)
        seen.add(entry.service)
        repeated = find_repeated_site(entry.expr)
        if repeated is not None:
            _fail(scope, repeated.span, MSG_SITE_TWICE, site=repeated.name, service=entry.service)
        for site in iter_sites(entry.expr):
            if site.name not in catalog.site_names:
                hint = _did_you_mean(site.name, catalog.site_names)
                _fail(scope, site.span, MSG_UNKNOWN_SITE, site=site.name, hint=hint)
            runs = catalog.services_of(site.name)
            if entry.service not in runs:
                listed = ", ".join(sorted(runs)) or "nothing"
                _fail(
                    scope,
                    site.span,
                    MSG_NOT_RUN,
                    site=site.name,
                    service=entry.service,
                    runs=listed,
                )
    _check_rules(scope, rules)


def _check_rules(scope: Scope, rules: Iterable[Rule]) -> None:
    for rule in rules:
        first, second = scope.expr_for(rule.first), scope.expr_for(rule.second)
        if first is None or second is None or not rule.violated_by(first, second):
            continue
        later = max(
            (e for e in scope.entries if e.service in (rule.first, rule.second)),
            key=lambda e: e.span.start if e.span else 0,
        )
        detail = f"{rule.first}: {unparse_expr(first)}; {rule.second}: {unparse_expr(second)}"
        _fail(
            scope,
            later.span,
            MSG_RULE,
            first=rule.first,
            second=rule.second,
            detail=detail,
            explanation=rule.explanation,
        )


def _did_you_mean(name: str, known: tuple[str, ...]) -> str:
    by_case = [site for site in known if site.lower() == name.lower()]
    close = by_case or difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]}?"
    listed = ", ".join(known[:10]) + (f" and {len(known) - 10} more" if len(known) > 10 else "")
    return f" (known sites: {listed})" if known else " (the catalog has no sites)"


def _fail(scope: Scope, span: Span | None, template: str, **fields: str) -> None:
    message = template.format(**fields)
    if span is None:
        raise ScopeCheckError(message)
    raise ScopeCheckError(message, scope.source, span.start, span.end)
