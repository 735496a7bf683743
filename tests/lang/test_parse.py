"""Parsing: the examples of the issue, operators, names, the JSON form, positions."""

from __future__ import annotations

import json

import pytest

from edgescope.errors import ScopeCheckError, ScopeError, ScopeSyntaxError
from edgescope.lang import (
    DEFAULT_REGISTRY,
    And,
    Or,
    Scope,
    ServiceScope,
    SiteRef,
    Span,
    parse_scope,
    unparse,
)


def S(name: str) -> SiteRef:
    return SiteRef(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{nova: Paris, glance: Corte}", {"compute": S("Paris"), "image": S("Corte")}),
        ("{keystone: Paris & Corte}", {"identity": And((S("Paris"), S("Corte")))}),
        (
            "{nova: Paris, glance: Corte | Marseille}",
            {"compute": S("Paris"), "image": Or((S("Corte"), S("Marseille")))},
        ),
        (
            "{nova: Paris & Corte, glance: (Corte | Marseille) & Paris}",
            {
                "compute": And((S("Paris"), S("Corte"))),
                "image": And((Or((S("Corte"), S("Marseille"))), S("Paris"))),
            },
        ),
        ("{nova:Paris&Corte}", {"compute": And((S("Paris"), S("Corte")))}),
        ("{ glance : Corte||Marseille }", {"image": Or((S("Corte"), S("Marseille")))}),
        ("{}", {}),
    ],
)
def test_issue_examples(text: str, expected: dict[str, object]) -> None:
    scope = parse_scope(text)
    assert {e.service: e.expr for e in scope.entries} == expected


def test_and_binds_tighter_than_or() -> None:
    assert parse_scope("{nova: Paris & Corte | Marseille}") == parse_scope(
        "{nova: (Paris & Corte) | Marseille}"
    )
    assert parse_scope("{nova: a | b & c}").entries[0].expr == Or((S("a"), And((S("b"), S("c")))))


@pytest.mark.parametrize(
    ("text", "operands"),
    [
        ("{nova: a & b & c}", ("a", "b", "c")),
        ("{nova: a & (b & c)}", ("a", "b", "c")),
        ("{nova: (a & b) & c}", ("a", "b", "c")),
        ("{nova: ((a) & ((b & c)))}", ("a", "b", "c")),
    ],
)
def test_flattened_n_ary(text: str, operands: tuple[str, ...]) -> None:
    assert parse_scope(text).entries[0].expr == And(tuple(S(n) for n in operands))


def test_or_synonyms_and_flattening() -> None:
    assert parse_scope("{nova: a || b | (c || d)}").entries[0].expr == Or(
        (S("a"), S("b"), S("c"), S("d"))
    )


@pytest.mark.parametrize("alias", ["nova", "compute", "NOVA", "Compute"])
def test_service_aliases_are_case_insensitive(alias: str) -> None:
    entry = parse_scope(f"{{{alias}: Paris}}").entries[0]
    assert entry.service == "compute"
    assert entry.written_as == alias


def test_every_openstack_alias() -> None:
    text = "{nova: a, glance: a, keystone: a, neutron: a, placement: a, cinder: a, swift: a}"
    assert parse_scope(text).services == (
        "compute",
        "image",
        "identity",
        "network",
        "placement",
        "block-storage",
        "object-store",
    )


@pytest.mark.parametrize("name", ["paris-1", "edge.nantes", "site_2", "42", "A.b-c_d"])
def test_site_identifiers(name: str) -> None:
    assert parse_scope(f"{{nova: {name}}}").entries[0].expr == S(name)


@pytest.mark.parametrize(
    ("written", "name"),
    [('"New York"', "New York"), ('"São Paulo"', "São Paulo"), (r'"a\"b\\c"', 'a"b\\c')],
)
def test_quoted_sites(written: str, name: str) -> None:
    scope = parse_scope(f"{{nova: {written} & Paris}}")
    assert scope.entries[0].expr == And((S(name), S("Paris")))
    assert parse_scope(unparse(scope)) == scope


def test_tabs_are_whitespace() -> None:
    assert parse_scope("{nova:\tParis}") == parse_scope("{nova: Paris}")


def test_user_registered_service() -> None:
    registry = DEFAULT_REGISTRY.with_service("echo", ["echo-app"])
    scope = parse_scope("{echo-app: Paris, nova: Corte}", registry=registry)
    assert scope.services == ("echo", "compute")
    with pytest.raises(ScopeCheckError, match="unknown service 'echo-app'"):
        parse_scope("{echo-app: Paris}")


def test_spans_point_at_the_source() -> None:
    text = "{nova: Paris & Corte, glance: Marseille}"
    scope = parse_scope(text)
    compute, image = scope.entries
    assert compute.span == Span(1, 5)
    assert isinstance(compute.expr, And)
    paris, corte = compute.expr.operands
    assert isinstance(paris, SiteRef) and paris.span is not None
    assert text[paris.span.start : paris.span.end] == "Paris"
    assert isinstance(corte, SiteRef) and corte.span is not None
    assert text[corte.span.start : corte.span.end] == "Corte"
    assert compute.expr.span is not None
    assert text[compute.expr.span.start : compute.expr.span.end] == "Paris & Corte"
    assert image.expr.span is not None and text[image.expr.span.start :].startswith("Marseille")
    assert scope.source == text


def test_spans_do_not_take_part_in_equality() -> None:
    assert parse_scope("{nova:Paris}") == parse_scope("{nova:    Paris}")


# --- the JSON form ----------------------------------------------------------------------


def test_json_form_from_the_issue() -> None:
    scope = parse_scope('{"compute": "Paris", "image": "Corte | Marseille"}')
    assert scope == parse_scope("{nova: Paris, glance: Corte | Marseille}")


def test_json_form_accepts_aliases_and_the_json_ast() -> None:
    text = json.dumps(
        {"nova": {"and": ["Paris", "Corte"]}, "glance": {"or": ["Corte", {"and": ["a", "b"]}]}}
    )
    assert parse_scope(text) == parse_scope("{nova: Paris & Corte, glance: Corte | a & b}")


def test_json_ast_sites_are_names_not_text() -> None:
    scope = parse_scope('{"compute": {"or": ["New York", "a | b"]}}')
    assert scope.entries[0].expr == Or((S("New York"), S("a | b")))


@pytest.mark.parametrize(
    ("value", "expr"),
    [
        ("New York", S("New York")),
        (" São Paulo ", S("São Paulo")),
        ("Paris", S("Paris")),
        ('"New York" & Paris', And((S("New York"), S("Paris")))),
        ("Corte | Marseille", Or((S("Corte"), S("Marseille")))),
        ('"a|b"', S("a|b")),
    ],
)
def test_a_json_string_is_one_site_name_unless_it_has_syntax_characters(
    value: str, expr: object
) -> None:
    assert parse_scope(json.dumps({"compute": value})).entries[0].expr == expr


def test_json_value_cannot_inject_an_entry() -> None:
    with pytest.raises(ScopeSyntaxError) as info:
        parse_scope('{"compute": "Paris, image: Corte"}')
    assert info.value.source == "{compute: Paris, image: Corte}"
    assert info.value.column == 16


def test_json_errors_point_into_the_rewritten_source() -> None:
    with pytest.raises(ScopeCheckError) as info:
        parse_scope('{"compute": "Paris & Corte | Paris"}')
    err = info.value
    assert err.source[err.pos : err.end] == "Paris"
    assert err.pos > err.source.index("|")


def test_empty_scope_is_all_local() -> None:
    assert parse_scope("{}") == Scope()
    assert parse_scope("{}").expr_for("compute") is None


def test_with_site_gives_the_downstream_scope() -> None:
    scope = parse_scope("{nova: Paris & Corte, glance: Corte}")
    assert scope.with_site("compute", "Paris") == Scope(
        (ServiceScope("compute", S("Paris")), ServiceScope("image", S("Corte")))
    )


@pytest.mark.parametrize(
    "text",
    ["", "{", "}", "{nova: }", "{nova: Paris", '{"compute": 1}', "\x00", "{nova: a}{", "{{}}"],
)
def test_errors_are_scope_errors_with_positions(text: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(text)
    err = info.value
    assert 0 <= err.pos <= len(err.source)
    assert "^" in err.context()
    assert err.render().endswith(err.context()) and "(at column" in err.render()


def test_the_empty_text_error_has_a_caret() -> None:
    with pytest.raises(ScopeSyntaxError) as info:
        parse_scope("")
    assert info.value.render() == "expected '{' to open the scope (at column 1)\n\n^"
    assert str(info.value) == "expected '{' to open the scope at column 1"


def test_an_error_without_a_source_has_no_position() -> None:
    err = ScopeCheckError("the catalog has no sites")
    assert (err.render(), str(err)) == ("the catalog has no sites", "the catalog has no sites")


def test_parse_gives_equal_immutable_scopes_and_the_same_errors_every_time() -> None:
    # Not cached here (the proxy keeps its own bounded cache of parses, SiteProxy._parse).
    text = "{nova: Paris & Corte}"
    assert parse_scope(text) == parse_scope(text)
    for _ in range(2):
        with pytest.raises(ScopeSyntaxError):
            parse_scope("{nova: Paris &}")
    registry = DEFAULT_REGISTRY.with_service("echo")
    assert parse_scope("{echo: a}", registry=registry).services == ("echo",)
    with pytest.raises(ScopeCheckError):
        parse_scope("{echo: a}")  # the registry is part of the parse
