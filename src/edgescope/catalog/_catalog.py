"""The catalog: which sites exist and which services each one runs.

Built from a list of names (every site runs every known service) or from a TOML file::

    [services]                 # optional: more service types, with their aliases
    echo = ["echo-app"]

    [[sites]]
    name = "Paris"             # runs every known service
    [[sites]]
    name = "Marseille"
    services = ["glance", "keystone"]

:func:`edgescope.lang.check_scope` checks scopes against it.

    >>> Catalog.from_sites(["Paris", "Corte"]).services_of("Corte") >= {"compute", "image"}
    True
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgescope.errors import ConfigError
from edgescope.lang.registry import DEFAULT_REGISTRY, ServiceRegistry
from edgescope.lang.rules import Rule, parse_rules


@dataclass(frozen=True, slots=True)
class Site:
    """One site and the canonical service types it runs."""

    name: str
    services: frozenset[str]


@dataclass(frozen=True, slots=True)
class Catalog:
    """Sites by name, in the order given, and the registry that names their services."""

    sites: tuple[Site, ...]
    registry: ServiceRegistry = DEFAULT_REGISTRY
    _by_name: Mapping[str, Site] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_name: dict[str, Site] = {}
        for site in self.sites:
            if not site.name:
                raise ConfigError("a site name cannot be empty")
            if site.name in by_name:
                raise ConfigError(f"site {site.name!r} is listed twice")
            by_name[site.name] = site
        object.__setattr__(self, "_by_name", MappingProxyType(by_name))

    @property
    def site_names(self) -> tuple[str, ...]:
        return tuple(site.name for site in self.sites)

    def services_of(self, site: str) -> frozenset[str]:
        """The service types ``site`` runs (empty for an unknown site)."""
        found = self._by_name.get(site)
        return found.services if found else frozenset()

    def runs(self, site: str, service: str) -> bool:
        return service in self.services_of(site)

    @classmethod
    def from_sites(
        cls, names: Iterable[str], registry: ServiceRegistry = DEFAULT_REGISTRY
    ) -> Catalog:
        """Every site runs every service of ``registry``."""
        every = frozenset(registry.services)
        return cls(tuple(Site(name, every) for name in names), registry)

    @classmethod
    def from_toml(cls, path: str | Path, registry: ServiceRegistry = DEFAULT_REGISTRY) -> Catalog:
        """Load a catalog file; ConfigError names the file and the bad key."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read catalog {path}: {exc.strerror}") from None
        return cls.from_toml_text(text, origin=str(path), registry=registry)

    @classmethod
    def from_toml_text(
        cls, text: str, *, origin: str = "<catalog>", registry: ServiceRegistry = DEFAULT_REGISTRY
    ) -> Catalog:
        try:
            document = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{origin}: {exc}") from None
        unknown = set(document) - {"services", "sites"}
        if unknown:
            raise ConfigError(f"{origin}: unknown key {sorted(unknown)[0]!r} (use services, sites)")
        registry = _extend(registry, document.get("services", {}), origin)
        entries = document.get("sites", [])
        if not isinstance(entries, list):
            raise ConfigError(f"{origin}: 'sites' must be an array of tables ([[sites]])")
        sites = tuple(_site(e, f"{origin}: sites[{i}]", registry) for i, e in enumerate(entries))
        return cls(sites, registry)


def _extend(registry: ServiceRegistry, services: Any, origin: str) -> ServiceRegistry:
    if not isinstance(services, dict):
        raise ConfigError(f"{origin}: 'services' must be a table of type = [aliases]")
    for service_type, aliases in services.items():
        if not (isinstance(aliases, list) and all(isinstance(a, str) for a in aliases)):
            raise ConfigError(f"{origin}: services.{service_type} must be a list of aliases")
        try:
            registry = registry.with_service(service_type, aliases)
        except ValueError as exc:
            raise ConfigError(f"{origin}: services.{service_type}: {exc}") from None
    return registry


def _site(entry: Any, where: str, registry: ServiceRegistry) -> Site:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: must be a table")
    unknown = set(entry) - {"name", "services"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r} (use name, services)")
    name = entry.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name: must be a non-empty string")
    if "services" not in entry:
        return Site(name, frozenset(registry.services))
    services = entry["services"]
    if not isinstance(services, list):
        raise ConfigError(f"{where}.services: must be a list of service names")
    canonical = set()
    for service in services:
        found = registry.canonical(str(service))
        if found is None:
            known = ", ".join(registry.services)
            raise ConfigError(f"{where}.services: unknown service {service!r} (known: {known})")
        canonical.add(found)
    return Site(name, frozenset(canonical))


def load_rules(path: str | Path, registry: ServiceRegistry = DEFAULT_REGISTRY) -> tuple[Rule, ...]:
    """Bad-collaboration rules from a TOML file shaped like edgescope/lang/rules.toml.

    Add them to the defaults: ``check_scope(scope, catalog, DEFAULT_RULES + load_rules(p))``.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read rules {path}: {exc.strerror}") from None
    return parse_rules(text, origin=str(path), registry=registry)
