"""Hostile input: clean, positioned ScopeErrors, quickly; never RecursionError or a hang."""

from __future__ import annotations

import re

import pytest

from edgescope.errors import ScopeError, ScopeLimitError, ScopeSyntaxError
from edgescope.lang import DEFAULT_LIMITS, Limits, parse_scope


def test_documented_defaults() -> None:
    assert Limits(max_length=16384, max_depth=32, max_sites=1024) == DEFAULT_LIMITS


@pytest.mark.parametrize(
    "text",
    [
        "(" * 100_000,
        "{nova: " + "(" * 100_000 + "Paris" + ")" * 100_000 + "}",
        '{"compute": ' + '{"and": [' * 50_000 + "}",
    ],
)
def test_100000_nested_parentheses(text: str) -> None:
    with pytest.raises(ScopeLimitError) as info:
        parse_scope(text)
    assert info.value.pos == DEFAULT_LIMITS.max_length


def test_nesting_under_the_length_limit_is_cut_at_max_depth() -> None:
    text = "{nova: " + "(" * 5000 + "Paris" + ")" * 5000 + "}"
    with pytest.raises(ScopeLimitError, match="deeper than 32") as info:
        parse_scope(text)
    assert info.value.pos == text.index("(") + 31  # the braces count as the first level


def test_json_nesting_is_bounded_before_json_loads() -> None:
    text = '{"compute": ' + '{"and": [' * 1000 + '"a"' + "]}" * 1000 + "}"
    with pytest.raises(ScopeLimitError, match="deeper than"):
        parse_scope(text)


def test_max_depth_is_allowed() -> None:
    depth = DEFAULT_LIMITS.max_depth - 1  # the scope's braces are one level
    text = "{nova: " + "(" * depth + "Paris" + ")" * depth + "}"
    assert parse_scope(text).entries[0].expr.name == "Paris"  # type: ignore[union-attr]


def test_brackets_inside_quotes_do_not_count() -> None:
    name = "(" * 100
    assert parse_scope(f'{{nova: "{name}"}}').entries[0].expr.name == name  # type: ignore[union-attr]


def test_one_megabyte() -> None:
    with pytest.raises(ScopeLimitError, match="1048576 characters long"):
        parse_scope("a" * (1 << 20))


@pytest.mark.parametrize(
    ("text", "pos", "code"),
    [
        ("{nova: Paris}\r\nX-Roles: admin", 13, "U+000D"),
        ("{nova: Paris\n}", 12, "U+000A"),
        ("{nova: Pa\x00ris}", 9, "U+0000"),
        ('{nova: "Pa\x1bris"}', 10, "U+001B"),
        ("{nova: Paris\x7f}", 12, "U+007F"),
        ("{nova: Paris\x85}", 12, "U+0085"),
        ("{nova: Paris\u2028}", 12, "U+2028"),
        ('{"compute": "a\\r\\nb"}', 12, "U+000D"),  # in the rewritten {compute: "a\r\nb"}
    ],
)
def test_control_characters(text: str, pos: int, code: str) -> None:
    with pytest.raises(ScopeSyntaxError, match=re.escape(code)) as info:
        parse_scope(text)
    assert info.value.pos == pos
    assert "\n" not in info.value.context().splitlines()[0]


def test_fan_out_to_1000_sites_fits_the_defaults() -> None:
    text = "{nova: " + " & ".join(f"site-{i}" for i in range(1000)) + "}"
    assert len(parse_scope(text).entries[0].expr.operands) == 1000  # type: ignore[union-attr]


def test_too_many_sites_points_at_the_first_one_over() -> None:
    text = "{nova: a & b, glance: c | d}"
    with pytest.raises(ScopeLimitError, match="names 4 sites; the limit is 3") as info:
        parse_scope(text, limits=Limits(max_sites=3))
    assert text[info.value.pos] == "d"


@pytest.mark.parametrize("field", ["max_length", "max_depth", "max_sites"])
def test_limits_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=field):
        Limits(**{field: 0})


def test_errors_render_on_one_caret_line() -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope("x" * 100_000)
    lines = info.value.render().splitlines()
    assert len(lines) == 3 and lines[2].strip() == "^"
