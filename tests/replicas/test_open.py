"""Replicas are on only when a state dir is given (argument or EDGESCOPE_REPLICAS_DIR)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.hooks import STATE_DIR_ENV
from edgescope.replicas.registry import FILENAME

RAW = {
    "site": "Paris",
    "listen": "127.0.0.1:0",
    "secret": "s" * 20,
    "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
}


def test_off_without_a_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(STATE_DIR_ENV, raising=False)
    assert SiteProxy(parse_config(RAW)).replicas is None


def test_environment_gives_each_site_its_own_registry(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(STATE_DIR_ENV, str(tmp_path))
    proxy = SiteProxy(parse_config(RAW))
    assert proxy.replicas is not None
    assert proxy.replicas.registry.path == tmp_path / "Paris" / FILENAME
    proxy.replicas.registry.close()
