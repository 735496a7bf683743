"""Canonical text and canonical JSON."""

from __future__ import annotations

import json

import pytest

from edgescope.lang import (
    And,
    Or,
    Scope,
    ServiceScope,
    SiteRef,
    parse_scope,
    scope_to_json,
    unparse,
)


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        (
            "{nova:Paris&Corte,glance:Corte||Marseille}",
            "{compute: Paris & Corte, image: Corte | Marseille}",
        ),
        ("{glance: (Corte | Marseille) & Paris}", "{image: (Corte | Marseille) & Paris}"),
        ("{nova: ((a & b) | c)}", "{compute: a & b | c}"),
        ("{nova: (a | b) | (c & d)}", "{compute: a | b | c & d}"),
        ('{nova: "New York" & a}', '{compute: "New York" & a}'),
        ("{keystone: a, nova: b}", "{identity: a, compute: b}"),
        ("{}", "{}"),
    ],
)
def test_canonical_text(text: str, canonical: str) -> None:
    assert unparse(parse_scope(text)) == canonical


def test_canonical_json_from_the_issue() -> None:
    scope = parse_scope("{nova: Paris & Corte, glance: Corte | Marseille}")
    assert json.dumps(scope_to_json(scope)) == (
        '{"compute": {"and": ["Paris", "Corte"]}, "image": {"or": ["Corte", "Marseille"]}}'
    )


@pytest.mark.parametrize(
    ("text", "as_json"),
    [
        ('{nova: "New York"}', {"compute": "New York"}),
        ('{nova: "São Paulo" & Paris}', {"compute": {"and": ["São Paulo", "Paris"]}}),
        ('{nova: "a|b"}', {"compute": '"a|b"'}),
        ('{nova: " Paris"}', {"compute": '" Paris"'}),
    ],
)
def test_canonical_json_sites_are_names(text: str, as_json: object) -> None:
    """A site is its name; a lone name that would read as expression text stays quoted."""
    assert scope_to_json(parse_scope(text)) == as_json


@pytest.mark.parametrize(
    "text",
    [
        '{nova: "New York"}',
        "{nova: a & (b | c & d) | e}",
        '{nova: "x\\"y" | z}',
        "{nova: p}",
        '{nova: "a|b"}',
        '{nova: "x\\"y"}',
        '{nova: " Paris "}',
    ],
)
def test_json_round_trip(text: str) -> None:
    scope = parse_scope(text)
    assert parse_scope(json.dumps(scope_to_json(scope))) == scope


def test_hand_built_nesting_unparses_with_needed_parentheses() -> None:
    scope = Scope((ServiceScope("compute", And((Or((SiteRef("a"), SiteRef("b"))), SiteRef("c")))),))
    assert unparse(scope) == "{compute: (a | b) & c}"
