"""The service registry: canonical service types and the aliases users may write instead.

The parser (:mod:`edgescope.lang.parse`) uses it to turn ``nova`` into ``compute``; the
catalog (:mod:`edgescope.catalog`) uses it to know every service a site can run. The canonical
name is the OpenStack *service type* (keystoneauth's word); the project name is an alias.

    >>> DEFAULT_REGISTRY.canonical("glance")
    'image'
    >>> DEFAULT_REGISTRY.with_service("echo", ["echo-app"]).canonical("echo-app")
    'echo'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")

IDENTITY = "identity"
"""Keystone's service type: the scope's ``identity`` entry says where tokens are validated."""

OPENSTACK_SERVICES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "compute": ("nova",),
        "image": ("glance",),
        IDENTITY: ("keystone",),
        "network": ("neutron",),
        "placement": (),
        "block-storage": ("cinder",),
        "object-store": ("swift",),
    }
)
"""Canonical service type -> project-name aliases, for OpenStack."""

SWIFT_BACKENDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"swift-account": (), "swift-container": (), "swift-object": ()}
)
"""Swift's backend servers, which its proxy-server (``object-store``) calls at the addresses
in its rings: a scope names them to put a call's accounts, containers or objects at a site."""


class ServiceRegistry:
    """Immutable map from every accepted service name (case-insensitive) to its service type."""

    __slots__ = ("_aliases", "_by_name", "_hash")

    def __init__(self, services: Mapping[str, Iterable[str]]) -> None:
        aliases: dict[str, tuple[str, ...]] = {}
        by_name: dict[str, str] = {}
        for service_type, names in services.items():
            for name in (service_type, *names):
                key = _checked_name(name)
                owner = by_name.get(key)
                if owner is not None and owner != service_type:
                    raise ValueError(f"service name {name!r} already means {owner!r}")
                by_name[key] = service_type
            aliases[service_type] = tuple(n.lower() for n in names)
        self._aliases = MappingProxyType(aliases)
        self._by_name = MappingProxyType(by_name)
        self._hash = hash(tuple(aliases.items()))

    def canonical(self, name: str) -> str | None:
        """The service type that ``name`` (a type or an alias) stands for, or None if unknown."""
        return self._by_name.get(name.lower())

    @property
    def services(self) -> tuple[str, ...]:
        """Every canonical service type, in registration order."""
        return tuple(self._aliases)

    @property
    def names(self) -> tuple[str, ...]:
        """Every accepted name: types and aliases (for "did you mean" suggestions)."""
        return tuple(self._by_name)

    def with_service(self, service_type: str, aliases: Iterable[str] = ()) -> ServiceRegistry:
        """A new registry that also knows ``service_type`` (or more aliases for an existing one)."""
        merged = {name: list(names) for name, names in self._aliases.items()}
        merged.setdefault(_checked_name(service_type), []).extend(aliases)
        return ServiceRegistry(merged)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ServiceRegistry) and self._aliases == other._aliases

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return f"ServiceRegistry({dict(self._aliases)!r})"


def _checked_name(name: str) -> str:
    lowered = name.lower()
    if not _NAME.fullmatch(lowered):
        raise ValueError(f"invalid service name {name!r}: use letters, digits, '-', '_' and '.'")
    return lowered


DEFAULT_REGISTRY = ServiceRegistry({**OPENSTACK_SERVICES, **SWIFT_BACKENDS})
"""The OpenStack services: compute, image, identity, network, placement, block-storage,
object-store, with their project names (nova, glance, keystone, neutron, cinder, swift), and
Swift's backends: swift-account, swift-container, swift-object."""
