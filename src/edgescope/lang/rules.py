"""Bad-collaboration rules: data (TOML), not code, with OpenStack defaults in rules.toml.

A :class:`Rule` names two services and a kind. The only kind today is ``colocated``: the
second service must be served at the site of each call of the first. It *fires* when both
services are named in the scope and they are not both the same single site. A missing
service is local to its caller, so leaving one out never conflicts; and since a call routed
to ``s`` only pins its own service to ``s`` (docs/semantics.md, propagation), any other
expression for the second service (``Paris & Corte``, ``Paris | Corte``) would be evaluated
as written from every site of the first.
:func:`edgescope.lang.check.check_scope` applies the rules; the catalog package loads
extra rule files (:func:`edgescope.catalog.load_rules`).

    >>> [rule.name for rule in DEFAULT_RULES]  # doctest: +NORMALIZE_WHITESPACE
    ['compute-network-colocated', 'compute-placement-colocated', 'compute-block-storage-colocated',
     'swift-container-account-colocated', 'swift-object-container-colocated']
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.resources import files
from typing import Any

from edgescope.errors import ConfigError
from edgescope.lang.ast import Expr, SiteRef
from edgescope.lang.registry import DEFAULT_REGISTRY, ServiceRegistry

RULE_KINDS = ("colocated",)


@dataclass(frozen=True, slots=True)
class Rule:
    """``second`` must be served where each call of ``first`` runs (canonical service types)."""

    name: str
    first: str
    second: str
    explanation: str
    kind: str = "colocated"

    def violated_by(self, first: Expr | None, second: Expr | None) -> bool:
        """True when both expressions are given and they are not the same single site."""
        if first is None or second is None:
            return False
        return not (isinstance(first, SiteRef) and first == second)


def parse_rules(
    text: str, *, origin: str = "<rules>", registry: ServiceRegistry = DEFAULT_REGISTRY
) -> tuple[Rule, ...]:
    """Rules from TOML text (see rules.toml); raises ConfigError naming the bad key."""
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    entries = document.get("rules", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{origin}: 'rules' must be an array of tables ([[rules]])")
    return tuple(_rule(entry, f"{origin}: rules[{i}]", registry) for i, entry in enumerate(entries))


def _rule(entry: Any, where: str, registry: ServiceRegistry) -> Rule:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(entry) - {"name", "kind", "services", "explanation"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    kind = entry.get("kind", "colocated")
    if kind not in RULE_KINDS:
        raise ConfigError(f"{where}.kind: {kind!r} is not one of {', '.join(RULE_KINDS)}")
    services = entry.get("services")
    if not (isinstance(services, list) and len(services) == 2):
        raise ConfigError(f"{where}.services: must list exactly two services")
    canonical = []
    for service in services:
        found = registry.canonical(str(service))
        if found is None:
            known = ", ".join(registry.services)
            raise ConfigError(f"{where}.services: unknown service {service!r} (known: {known})")
        canonical.append(found)
    for key in ("name", "explanation"):
        if not isinstance(entry.get(key), str) or not entry[key].strip():
            raise ConfigError(f"{where}.{key}: must be a non-empty string")
    return Rule(entry["name"], canonical[0], canonical[1], entry["explanation"].strip(), kind)


DEFAULT_RULES: tuple[Rule, ...] = parse_rules(
    files("edgescope.lang").joinpath("rules.toml").read_text(encoding="utf-8"),
    origin="edgescope/lang/rules.toml",
)
"""The defaults: network, placement and block storage colocated with compute (OpenStack);
Swift's account with its containers, and its containers with its objects."""
