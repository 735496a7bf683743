"""Static checks: one test per check, each on the offending node's span."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edgescope.catalog import DEFAULT_RULES, Catalog, check_scope, load_rules
from edgescope.errors import ConfigError, ScopeCheckError
from edgescope.lang import (
    CHECK_MESSAGES,
    And,
    Scope,
    ServiceScope,
    SiteRef,
    Span,
    parse_rules,
    parse_scope,
)
from edgescope.lang.check import EXAMPLE_CATALOG_TOML

CATALOG = Catalog.from_toml_text(EXAMPLE_CATALOG_TOML)


def check(text: str, catalog: Catalog = CATALOG) -> None:
    check_scope(parse_scope(text), catalog)


def failing_part(text: str) -> tuple[str, str]:
    """(message, the source text under the error's span)."""
    with pytest.raises(ScopeCheckError) as info:
        check(text)
    err = info.value
    return err.message, err.source[err.pos : err.end]


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        "{nova: Paris & Corte, glance: Corte | Marseille}",
        "{nova: Paris, neutron: Paris, placement: Paris}",
        "{nova: Paris & Corte}",  # network and placement local to each compute site
        "{nova: Paris, neutron: Paris}",
        "{keystone: Marseille}",
        "{nova: Corte}",  # network and placement missing: local to nova's site
    ],
)
def test_valid(text: str) -> None:
    check(text)


def test_unknown_site_suggests_the_nearest() -> None:
    message, part = failing_part("{glance: Paris | Cort}")
    assert message == "unknown site 'Cort'; did you mean Corte?"
    assert part == "Cort"


def test_unknown_site_case() -> None:
    assert failing_part("{nova: paris}")[0] == "unknown site 'paris'; did you mean Paris?"


def test_unknown_site_without_a_near_name_lists_the_sites() -> None:
    assert failing_part("{nova: Lyon}")[0] == (
        "unknown site 'Lyon' (known sites: Paris, Corte, Marseille)"
    )


def test_unknown_site_list_is_cut() -> None:
    catalog = Catalog.from_sites(f"s{i:02}" for i in range(30))
    with pytest.raises(ScopeCheckError, match=r"s09 and 20 more\)"):
        check("{nova: Zzz}", catalog)


def test_site_that_does_not_run_the_service() -> None:
    message, part = failing_part("{nova: Paris & Marseille}")
    assert message == "site 'Marseille' does not run compute (it runs identity, image)"
    assert part == "Marseille"


def test_unknown_service_for_the_catalog() -> None:
    # parsed with a wider registry than the catalog's: check_scope still catches it
    scope = Scope((ServiceScope("orchestration", SiteRef("Paris"), Span(1, 5)),), "{heat: Paris}")
    with pytest.raises(ScopeCheckError, match="unknown service 'orchestration'") as info:
        check_scope(scope, CATALOG)
    assert info.value.column == 2


def test_service_given_twice_is_caught_by_the_parser_and_by_check() -> None:
    with pytest.raises(ScopeCheckError, match="given twice") as info:
        parse_scope("{nova: Paris, glance: Corte, compute: Paris}")
    assert info.value.column == 30
    twice = Scope((ServiceScope("compute", SiteRef("Paris")),) * 2)
    with pytest.raises(ScopeCheckError, match="service 'compute' is given twice"):
        check_scope(twice, CATALOG)


def test_repeated_site_is_caught_by_the_parser_and_by_check() -> None:
    text = "{nova: (Paris | Corte) & (Marseille | Paris)}"
    with pytest.raises(ScopeCheckError, match="'Paris' appears twice") as info:
        parse_scope(text)
    assert info.value.pos == text.rindex("Paris")
    repeated = Scope((ServiceScope("compute", And((SiteRef("Paris"), SiteRef("Paris")))),))
    with pytest.raises(ScopeCheckError, match="site 'Paris' appears twice in the expression"):
        check_scope(repeated, CATALOG)


def test_same_site_in_two_services_is_fine() -> None:
    check("{nova: Paris, glance: Paris | Corte}")


def test_bad_collaboration_compute_network() -> None:
    message, part = failing_part("{nova: Paris, neutron: Corte}")
    assert message.startswith(
        "compute and network must run at the same site (compute: Paris; network: Corte): give"
        " both the same single site, or leave network out so that each compute site uses its"
        " own. nova plugs"
    )
    assert DEFAULT_RULES[0].explanation in message
    assert part == "neutron"


def test_bad_collaboration_compute_placement_points_at_the_later_entry() -> None:
    message, part = failing_part("{placement: Paris, glance: Corte, nova: Paris & Corte}")
    assert message.startswith("compute and placement must run at the same site")
    assert part == "nova"


def test_bad_collaboration_compute_block_storage_says_why() -> None:
    """nova attaches a volume to its own hypervisor: the volume must be at nova's site."""
    message, part = failing_part("{nova: Paris, cinder: Corte}")
    assert message.startswith(
        "compute and block-storage must run at the same site (compute: Paris; block-storage: Corte)"
    )
    rule = next(r for r in DEFAULT_RULES if r.name == "compute-block-storage-colocated")
    assert rule.explanation in message and "hypervisor" in message
    assert part == "cinder"
    failing_part("{cinder: Paris & Corte, nova: Paris}")  # either order
    failing_part("{nova: Paris & Corte, cinder: Paris & Corte}")


@pytest.mark.parametrize(
    "text",
    [
        "{cinder: Paris, glance: Corte}",  # cinder downloads the image like nova does
        "{cinder: Paris & Corte, glance: Corte | Marseille}",
        "{nova: Paris, cinder: Paris, glance: Corte}",  # boot from a volume of Corte's image
        "{nova: Paris & Corte, glance: Corte}",  # each nova with its own cinder
        "{cinder: Paris, neutron: Corte}",
    ],
)
def test_volumes_may_take_images_from_any_site(text: str) -> None:
    check(text)


@pytest.mark.parametrize(
    "text",
    [
        "{nova: Paris & Corte, neutron: Paris & Corte}",  # nova@Paris would use both neutrons
        "{nova: Paris | Corte, neutron: Paris | Corte}",  # nova@Corte would try Paris first
        "{nova: Paris, neutron: Paris | Corte}",
        "{nova: Paris & Corte, neutron: Corte & Paris}",
    ],
)
def test_colocated_needs_one_same_site_because_only_the_routed_service_is_pinned(
    text: str,
) -> None:
    message, _ = failing_part(text)
    assert message.startswith("compute and network must run at the same site")


def test_rules_can_be_replaced_or_extended(tmp_path: Path) -> None:
    scope = parse_scope("{nova: Paris, neutron: Corte, glance: Corte}")
    check_scope(scope, CATALOG, rules=())
    path = tmp_path / "rules.toml"
    path.write_text(
        '[[rules]]\nname = "image-near-compute"\nservices = ["glance", "nova"]\n'
        'explanation = "images are large"\n'
    )
    extra = load_rules(path)
    assert extra[0].first == "image" and extra[0].second == "compute"
    with pytest.raises(ScopeCheckError, match=r"image and compute .* images are large"):
        check_scope(scope, CATALOG, rules=extra)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[[rules]]\nname = "x"\nservices = ["nova"]\nexplanation = "y"\n', "exactly two"),
        ('[[rules]]\nname = "x"\nservices = ["nova", "heat"]\nexplanation = "y"\n', "'heat'"),
        ('[[rules]]\nname = "x"\nservices = ["nova", "glance"]\n', "explanation: must be"),
        (
            '[[rules]]\nname = "x"\nkind = "never"\nservices = ["a", "b"]\nexplanation = "y"\n',
            "'never' is not one of colocated",
        ),
        ("rules = 1\n", "array of tables"),
        ("[[rules]\n", "Expected"),
    ],
)
def test_rule_file_errors(text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(complaint)):
        parse_rules(text)


def test_missing_rule_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read rules"):
        load_rules(tmp_path / "none.toml")


ROWS = [(row.message, bad) for row in CHECK_MESSAGES for bad in row.inputs]


@pytest.mark.parametrize(("template", "bad"), ROWS)
def test_check_message_table(template: str, bad: str) -> None:
    prefix = template.split("{", 1)[0] if not template.startswith("{") else ""
    with pytest.raises(ScopeCheckError) as info:
        check(bad)
    assert info.value.message.startswith(prefix)
    literal = [part for part in re.split(r"\{\w+(?:![rs])?\}", template) if part]
    assert all(part in info.value.message for part in literal)
