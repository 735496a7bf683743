"""docs/design.md's ``file.py:N`` references point at real lines, and at the named symbol.

A reference written `` `server.py:261` `_handle_main` `` must find ``_handle_main`` on line 261
of ``src/edgescope/proxy/server.py`` (paths are tried under ``src/edgescope``, then its
``proxy`` and ``replicas`` packages): moving code without updating the page fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "src" / "edgescope"
REFERENCE = re.compile(r"`([a-z_/]+\.py):(\d+)`(?:\s+`([A-Za-z_.]+)`)?")


def _resolve(path: str) -> Path | None:
    for root in (PACKAGE, PACKAGE / "proxy", PACKAGE / "replicas"):
        if (root / path).is_file():
            return root / path
    return None


def _references() -> list[tuple[str, int, str | None]]:
    text = (REPO / "docs" / "design.md").read_text()
    return [(m[1], int(m[2]), m[3]) for m in REFERENCE.finditer(text)]


def test_the_page_has_references() -> None:
    assert len(_references()) >= 20


@pytest.mark.parametrize(("path", "line", "symbol"), _references())
def test_each_reference_names_its_line(path: str, line: int, symbol: str | None) -> None:
    found = _resolve(path)
    assert found is not None, f"{path} is no file of the package"
    lines = found.read_text().splitlines()
    assert 1 <= line <= len(lines), f"{path}:{line} is past the end ({len(lines)} lines)"
    if symbol is not None:
        name = symbol.rsplit(".", 1)[-1]
        assert name in lines[line - 1], (
            f"{path}:{line} is {lines[line - 1].strip()!r}, not {symbol}"
        )
