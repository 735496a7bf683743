"""``proxy run`` tunes the garbage collector once started (edgescope/aio.py): what it loaded
is frozen, young collections are rarer, and cycles are still collected."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from edgescope.aio import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_what_is_loaded_and_raises_the_young_threshold(restored_gc: None) -> None:
    assert gc.get_threshold()[0] < GC_YOUNG_THRESHOLD
    tune_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 20, 20)
    assert gc.get_freeze_count() > 1000  # the modules, classes and functions loaded


def test_cycles_are_still_collected_after_tune_gc(restored_gc: None) -> None:
    tune_gc()

    class Node:
        pass

    collected = []
    for _ in range(GC_YOUNG_THRESHOLD // 2):
        a, b = Node(), Node()
        a.other, b.other = b, a  # type: ignore[attr-defined]
        del a, b
    gc.callbacks.append(lambda phase, info: collected.append(info.get("collected", 0)))
    try:
        for _ in range(GC_YOUNG_THRESHOLD):
            a, b = Node(), Node()
            a.other, b.other = b, a  # type: ignore[attr-defined]
            del a, b
    finally:
        gc.callbacks.pop()
    assert sum(collected) > 0  # a young collection ran by itself and freed cycles
