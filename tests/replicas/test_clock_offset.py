"""The test-only clock offset (``EDGESCOPE_CLOCK_OFFSET_SECONDS``): off by default, bounded."""

from __future__ import annotations

import time

import pytest

from edgescope.errors import ConfigError
from edgescope.replicas.clock import MAX_LEAD_SECONDS, OFFSET_ENV, Clock


def test_no_offset_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OFFSET_ENV, raising=False)
    clock = Clock("Paris")
    assert clock.offset_ns == 0
    assert abs(clock.now().wall_ms - time.time() * 1000) < 5_000


@pytest.mark.parametrize("offset", [-120.0, 90.5])
def test_the_offset_moves_the_stamps(monkeypatch: pytest.MonkeyPatch, offset: float) -> None:
    monkeypatch.setenv(OFFSET_ENV, str(offset))
    stamp = Clock("Paris").now()
    assert abs(stamp.wall_ms - (time.time() + offset) * 1000) < 5_000


@pytest.mark.parametrize("text", ["soon", "nan", "inf", str(MAX_LEAD_SECONDS + 1), "-1e9"])
def test_a_bad_offset_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(OFFSET_ENV, text)
    with pytest.raises(ConfigError, match=OFFSET_ENV):
        Clock("Paris")


def test_a_stepped_back_clock_still_orders_its_own_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A stamp from a peer ahead by the step is observed, and later local stamps follow it."""
    ahead = Clock("Corte", offset=60.0).now()
    behind = Clock("Paris", offset=-60.0)
    behind.observe(ahead)
    assert behind.now() > ahead
