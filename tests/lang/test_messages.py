"""The friendly-message table: every row's bad inputs give exactly that row's message."""

from __future__ import annotations

import re

import pytest

from edgescope.errors import ScopeError
from edgescope.lang import DEFAULT_LIMITS, OTHER_MESSAGES, SYNTAX_MESSAGES, MessageRow, parse_scope

ROWS = [(row, bad) for row in SYNTAX_MESSAGES + OTHER_MESSAGES for bad in row.inputs]


def template_regex(template: str) -> re.Pattern[str]:
    """``unknown service {name!r}{hint}`` -> a regex where each field matches anything."""
    parts = re.split(r"\{\w+(?:![rs])?\}", template.replace("{{", "\x01").replace("}}", "\x02"))
    pattern = ".*".join(re.escape(p).replace("\x01", r"\{").replace("\x02", r"\}") for p in parts)
    return re.compile(pattern, re.DOTALL)


@pytest.mark.parametrize(("row", "bad"), ROWS, ids=[repr(bad)[:40] for _, bad in ROWS])
def test_row(row: MessageRow, bad: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(bad, limits=row.limits or DEFAULT_LIMITS)
    assert template_regex(row.message).fullmatch(info.value.message), info.value.message


def test_messages_are_distinct() -> None:
    messages = [row.message for row in SYNTAX_MESSAGES + OTHER_MESSAGES]
    assert len(set(messages)) == len(messages) - 1  # the bad-name message is in both tables


@pytest.mark.parametrize(
    ("text", "column", "caret"),
    [
        ("{nova: Paris Corte}", 14, "             ^^^^^"),
        ("{nova: Paris & }", 16, "               ^"),
        ("{nova: Paris", 13, "            ^"),
    ],
)
def test_column_and_caret(text: str, column: int, caret: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(text)
    assert info.value.column == column
    assert f"column {column}" in str(info.value)
    assert info.value.context() == f"{text}\n{caret}"
