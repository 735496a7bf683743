"""The usage examples in the replicas module docstrings run."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "edgescope.replicas.model",
    "edgescope.replicas.registry",
    "edgescope.replicas.translate",
    "edgescope.replicas.collapse",
    "edgescope.replicas.record",
    "edgescope.replicas.members",
    "edgescope.replicas.validate",
    "edgescope.replicas.checks",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name))
    assert result.failed == 0 and result.attempted > 0
