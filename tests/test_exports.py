"""``__all__`` of edgescope and edgescope.lang lists exactly the public names, all importable."""

from __future__ import annotations

import types

import pytest

import edgescope
import edgescope.lang


@pytest.mark.parametrize("module", [edgescope, edgescope.lang], ids=lambda m: m.__name__)
def test_all_is_sorted_unique_and_importable(module: types.ModuleType) -> None:
    names = module.__all__
    assert len(set(names)) == len(names)
    for name in names:
        assert hasattr(module, name), name


@pytest.mark.parametrize("module", [edgescope, edgescope.lang], ids=lambda m: m.__name__)
def test_every_public_name_is_exported(module: types.ModuleType) -> None:
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and name != "annotations"
    }
    assert public <= set(module.__all__) | {"__version__"}


def test_exported_classes_say_where_they_live() -> None:
    for name in edgescope.lang.__all__:
        value = getattr(edgescope.lang, name)
        if isinstance(value, type):
            assert value.__module__.startswith("edgescope."), name
