"""Swift's bad collaborations: rules in the same table (rules.toml) as OpenStack's, checked
before any request (``edgescope scope check``, as any client would)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from edgescope.catalog import DEFAULT_RULES, Catalog, check_scope
from edgescope.cli.scope import app
from edgescope.errors import ScopeCheckError
from edgescope.lang import parse_scope

CATALOG = Catalog.from_sites(["Paris", "Corte", "Marseille"])
OBJECT_CONTAINER = "swift-object and swift-container"


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("{swift-object: Corte, swift-container: Paris}", OBJECT_CONTAINER),
        ("{swift-object: Paris & Corte, swift-container: Paris}", OBJECT_CONTAINER),
        ("{swift-container: Corte | Marseille, swift-object: Corte}", OBJECT_CONTAINER),
        ("{swift-container: Corte, swift-account: Paris}", "swift-container and swift-account"),
    ],
)
def test_a_split_swift_is_refused_with_the_reason(text: str, pair: str) -> None:
    with pytest.raises(ScopeCheckError) as info:
        check_scope(parse_scope(text), CATALOG)
    assert f"{pair} must run at the same site" in info.value.message
    assert "with no request" in info.value.message  # the explanation says why


@pytest.mark.parametrize(
    "text",
    [
        "{swift-object: Corte}",  # the listing stays at the API's site (docs/genericity.md)
        "{swift-object: Paris & Corte}",
        "{swift-object: Corte | Marseille}",
        "{swift-object: Corte, swift-container: Corte, swift-account: Corte}",
        "{swift: Corte, swift-object: Paris}",
    ],
)
def test_scopes_swift_can_serve_pass(text: str) -> None:
    check_scope(parse_scope(text), CATALOG)


def test_swift_rules_sit_in_the_openstack_table() -> None:
    names = [rule.name for rule in DEFAULT_RULES]
    assert "compute-network-colocated" in names
    assert {"swift-object-container-colocated", "swift-container-account-colocated"} <= set(names)


def test_the_cli_refuses_it_before_any_request() -> None:
    result = CliRunner().invoke(
        app,
        ["check", "--sites", "Paris,Corte", "{swift-object: Corte, swift-container: Paris}"],
    )
    assert result.exit_code == 2
    assert "swift-object-updater" in result.stderr
