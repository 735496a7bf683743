"""Laws of the parser and printer, by hypothesis."""

from __future__ import annotations

import contextlib
import json

from hypothesis import given
from hypothesis import strategies as st
from scope_strategies import scopes

from edgescope.errors import ScopeError
from edgescope.lang import Scope, parse_scope, scope_to_json, unparse

SCOPE_ALPHABET = st.sampled_from([*'{}()&|:, \t"\\abcPZ09._-', "nova", "||", "é", "\n", "\x00"])


@given(scopes())
def test_parse_unparse_round_trip(scope: Scope) -> None:
    assert parse_scope(unparse(scope)) == scope


@given(scopes())
def test_unparse_is_canonical(scope: Scope) -> None:
    text = unparse(scope)
    assert unparse(parse_scope(text)) == text


@given(scopes())
def test_json_round_trip(scope: Scope) -> None:
    assert parse_scope(json.dumps(scope_to_json(scope))) == scope


@given(st.text())
def test_parse_raises_only_scope_errors_on_any_text(text: str) -> None:
    try:
        parse_scope(text)
    except ScopeError as err:
        assert 0 <= err.pos <= len(err.source)
        err.render()


@given(st.lists(SCOPE_ALPHABET, max_size=40).map("".join))
def test_parse_raises_only_scope_errors_on_scope_like_text(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError as err:
        assert "^" in err.context()
    else:
        assert parse_scope(unparse(scope)) == scope


@given(
    st.lists(
        st.sampled_from(['{"', '"', "{", "}", "[", "]", ":", ",", "and", "or", "a"]), max_size=30
    ).map("".join)
)
def test_json_like_text_raises_only_scope_errors(text: str) -> None:
    with contextlib.suppress(ScopeError):
        parse_scope(text)
