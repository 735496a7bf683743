"""scope-lang: parse, check, print and evaluate scopes. Pure: no I/O anywhere in this package.

>>> from edgescope.lang import parse_scope, unparse
>>> unparse(parse_scope("{nova: Paris&Corte, glance: Corte||Marseille}"))
'{compute: Paris & Corte, image: Corte | Marseille}'
"""

from edgescope.lang.ast import And, Expr, Or, Scope, ServiceScope, SiteRef, Span, iter_sites
from edgescope.lang.check import CHECK_MESSAGES, CheckRow, SiteCatalog, check_scope
from edgescope.lang.evaluate import Attempt, HttpFailurePolicy, Outcome, evaluate
from edgescope.lang.limits import DEFAULT_LIMITS, Limits
from edgescope.lang.messages import OTHER_MESSAGES, SYNTAX_MESSAGES, MessageRow
from edgescope.lang.parse import find_repeated_site, parse_scope
from edgescope.lang.registry import DEFAULT_REGISTRY, OPENSTACK_SERVICES, ServiceRegistry
from edgescope.lang.rules import DEFAULT_RULES, Rule, parse_rules
from edgescope.lang.unparse import expr_to_json, quote_site, scope_to_json, unparse, unparse_expr

__all__ = [
    "CHECK_MESSAGES",
    "DEFAULT_LIMITS",
    "DEFAULT_REGISTRY",
    "DEFAULT_RULES",
    "OPENSTACK_SERVICES",
    "OTHER_MESSAGES",
    "SYNTAX_MESSAGES",
    "And",
    "Attempt",
    "CheckRow",
    "Expr",
    "HttpFailurePolicy",
    "Limits",
    "MessageRow",
    "Or",
    "Outcome",
    "Rule",
    "Scope",
    "ServiceRegistry",
    "ServiceScope",
    "SiteCatalog",
    "SiteRef",
    "Span",
    "check_scope",
    "evaluate",
    "expr_to_json",
    "find_repeated_site",
    "iter_sites",
    "parse_rules",
    "parse_scope",
    "quote_site",
    "scope_to_json",
    "unparse",
    "unparse_expr",
]
