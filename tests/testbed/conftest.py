"""The 3-site testbed for tests marked ``testbed``: brought up once per session, by the tests.

``EDGESCOPE_STATE_DIR`` picks the state folder (default ``<repo>/state``, the one
``edgescope testbed up`` uses). A healthy running testbed is reused and left running; one
this session started is stopped at the end, its state kept so the next run starts warm.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

import early_testbed
from shared_beds import on_last_test

SITES = ["Paris", "Corte", "Marseille"]
REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    from edgescope.testbed.rabbit import rabbit_installed

    if importlib.util.find_spec("nova") is None or importlib.util.find_spec("neutron") is None:
        return "OpenStack packages are not installed (make openstack)"
    if not rabbit_installed():
        return "rabbitmq-server is not installed (Debian package; make system-deps as root)"
    return None


@pytest.fixture(scope="session")
def testbed() -> Iterator[object]:
    if (reason := _missing()) is not None:
        pytest.skip(reason)
    from edgescope.testbed import Testbed

    state = Path(os.environ.get("EDGESCOPE_STATE_DIR", REPO / "state"))
    early = early_testbed.wait()  # this session's early start (it found no running testbed)
    existing = (state / "testbed.json").exists()
    tb = Testbed.from_state(state) if existing else Testbed.create(state, SITES)
    if list(tb.sites) != SITES:
        pytest.skip(f"{state} holds another testbed ({', '.join(tb.sites)})")
    was_running = existing and early is None and tb.healthy()
    tb.up()
    stop = on_last_test("testbed", tb.down if not was_running else lambda: None)
    yield tb
    stop()
