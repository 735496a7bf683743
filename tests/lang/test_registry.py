"""The service registry: canonical types, aliases, user extensions."""

from __future__ import annotations

import pytest

from edgescope.lang import DEFAULT_REGISTRY, ServiceRegistry


@pytest.mark.parametrize(
    ("alias", "service"),
    [
        ("nova", "compute"),
        ("glance", "image"),
        ("keystone", "identity"),
        ("neutron", "network"),
        ("placement", "placement"),
        ("cinder", "block-storage"),
        ("swift", "object-store"),
        ("block-storage", "block-storage"),
    ],
)
def test_openstack_aliases(alias: str, service: str) -> None:
    assert DEFAULT_REGISTRY.canonical(alias) == service


def test_unknown() -> None:
    assert DEFAULT_REGISTRY.canonical("heat") is None


def test_with_service_is_a_new_registry() -> None:
    extended = DEFAULT_REGISTRY.with_service("orchestration", ["heat"])
    assert extended.canonical("heat") == "orchestration"
    assert DEFAULT_REGISTRY.canonical("heat") is None
    assert extended.services[-1] == "orchestration"
    assert extended != DEFAULT_REGISTRY


def test_more_aliases_for_an_existing_service() -> None:
    extended = DEFAULT_REGISTRY.with_service("compute", ["vm"])
    assert extended.canonical("vm") == "compute"
    assert extended.canonical("nova") == "compute"


def test_alias_clash_is_rejected() -> None:
    with pytest.raises(ValueError, match="already means 'compute'"):
        DEFAULT_REGISTRY.with_service("other", ["nova"])


@pytest.mark.parametrize("bad", ["", "has space", "-lead", "a/b"])
def test_bad_names(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid service name"):
        ServiceRegistry({bad: ()})
