"""B6: every place that parses a peer's or client's JSON uses the one helper, which turns a
document nested too deep (RecursionError) into None like any other bad JSON."""

from __future__ import annotations

import doctest
from typing import Any

import pytest

import edgescope.jsondoc
from edgescope.proxy import merge
from edgescope.replicas import adoption, hooks, record, translate

DEEP = b"[" * 200_000 + b"]" * 200_000


@pytest.mark.parametrize("module", [hooks, record, translate, adoption, merge])
def test_each_parser_of_foreign_json_shares_the_helper(module: Any) -> None:
    assert module.json_or_none is edgescope.jsondoc.json_or_none


def test_a_document_nested_too_deep_is_not_json() -> None:
    assert hooks.json_or_none(DEEP) is None
    assert merge._json_object(DEEP) is None
    assert doctest.testmod(edgescope.jsondoc).failed == 0
