"""What --os-scope resolves to: parse, check against known sites, identity made explicit."""

from __future__ import annotations

import pytest

from edgescope.errors import ScopeCheckError, ScopeError
from edgescope.lang import unparse
from edgescope.openstack.options import known_sites_from_clouds, parse_site_list, resolve_scope

SITES = {"Paris", "Corte", "Marseille"}


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("{nova: Paris}", "{compute: Paris, identity: Paris}"),
        ("{glance: Corte | Marseille}", "{image: Corte | Marseille, identity: Paris}"),
        ("{keystone: Corte}", "{identity: Corte}"),
    ],
)
def test_identity_defaults_to_the_own_site(text: str, canonical: str) -> None:
    assert unparse(resolve_scope(text, known_sites=SITES, own_site="Paris")) == canonical


@pytest.mark.parametrize(
    "text", ["{nova: Paris &}", "{nova: Lyon}", "{nova: Paris, neutron: Corte}"]
)
def test_bad_scopes_raise_scope_errors_with_positions(text: str) -> None:
    with pytest.raises(ScopeError) as info:
        resolve_scope(text, known_sites=SITES, own_site="Paris")
    assert "^" in info.value.render()


def test_no_known_site_is_a_clear_error() -> None:
    with pytest.raises(ScopeCheckError, match="--os-scope-sites"):
        resolve_scope("{nova: Paris}", known_sites=(), own_site=None)


def test_known_sites_from_clouds_yaml() -> None:
    clouds = {
        "Paris": {"region_name": "Paris"},
        "Paris-demo": {"region_name": "Paris"},
        "admin-corte": {"region_name": "Corte"},
        "multi": {"regions": ["Marseille", {"name": "Nice"}]},
        "Lyon": {"auth": {}},
    }
    assert known_sites_from_clouds(clouds) == {"Paris", "Corte", "Marseille", "Nice", "Lyon"}
    assert parse_site_list(" Paris, Corte ,") == {"Paris", "Corte"}
    assert parse_site_list(None) == frozenset()
