"""The usage examples in the module docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "edgescope.lang",
    "edgescope.lang.check",
    "edgescope.lang.evaluate",
    "edgescope.lang.limits",
    "edgescope.lang.messages",
    "edgescope.lang.network",
    "edgescope.lang.parse",
    "edgescope.lang.registry",
    "edgescope.lang.rules",
    "edgescope.lang.unparse",
    "edgescope.catalog",
    "edgescope.catalog._catalog",
    "edgescope.proxy.outcome",
    "edgescope.proxy.partial",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
