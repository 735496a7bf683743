"""The 3-site OpenStack testbed for the scenario tests: brought up once per session, by the tests.

``EDGESCOPE_STATE_DIR`` picks the state folder (default ``<repo>/state``). A testbed that
already existed is left running (another session, e.g. the demo, may be using it); one this
session created from nothing is stopped at the end (its state folder is kept).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgescope.openstack.scenarios import Context
from edgescope.openstack.testbed_handle import TestbedHandle, handle_for

SITES = ["Paris", "Corte", "Marseille"]
REPO = Path(__file__).resolve().parents[2]


def _missing() -> str | None:
    if importlib.util.find_spec("nova") is None or importlib.util.find_spec("keystone") is None:
        return "OpenStack packages are not installed (make openstack)"
    if shutil.which("rabbitmq-server") is None and not Path("/usr/sbin/rabbitmq-server").exists():
        return "rabbitmq-server is not installed (Debian package; make system-deps as root)"
    return None


@pytest.fixture(scope="session")
def testbed() -> Iterator[TestbedHandle]:
    if (reason := _missing()) is not None:
        pytest.skip(reason)
    from edgescope.testbed import Testbed

    state = Path(os.environ.get("EDGESCOPE_STATE_DIR", REPO / "state"))
    existing = (state / "testbed.json").exists()
    tb = Testbed.from_state(state) if existing else Testbed.create(state, SITES)
    if [plan.name for plan in tb.plans][: len(SITES)] != SITES:
        pytest.skip(f"{state} holds another testbed ({', '.join(tb.sites)})")
    tb.up()
    yield handle_for(tb)
    if not existing:
        tb.down()


@pytest.fixture(scope="session")
def ctx(testbed: TestbedHandle) -> Iterator[Context]:
    """Shared by the scenarios: the CLI, unique names for this run, the servers booted so far.

    What the scenarios created is deleted at the end (servers count against quotas).
    """
    context = Context.create(testbed)
    yield context
    context.cleanup()
