"""scope-lang: parse, check, print and evaluate scopes. Pure: no I/O anywhere in this package."""

from edgescope.lang.ast import And, Expr, Or, Scope, ServiceScope, SiteRef, Span, iter_sites

__all__ = ["And", "Expr", "Or", "Scope", "ServiceScope", "SiteRef", "Span", "iter_sites"]
