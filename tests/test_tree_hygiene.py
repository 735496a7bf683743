"""The test tree stays collectable: pytest's default import mode needs unique basenames."""

from __future__ import annotations

from collections import Counter
from pathlib import Path


def test_test_modules_have_unique_basenames() -> None:
    root = Path(__file__).parent
    names = Counter(p.name for p in root.rglob("test_*.py"))
    assert [name for name, count in names.items() if count > 1] == []
