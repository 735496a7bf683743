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
from wan_testbed import SITES as WAN_SITES
from wan_testbed import WanTestbed, wan_missing

import early_testbed
from edgescope.openstack.scenarios import Context
from edgescope.openstack.testbed_handle import TestbedHandle, handle_for
from shared_beds import on_last_test

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
    early = early_testbed.wait()  # this session's early start (it found no running testbed)
    existing = early.existing if early is not None else (state / "testbed.json").exists()
    found = (state / "testbed.json").exists()
    tb = Testbed.from_state(state) if found else Testbed.create(state, SITES)
    if [plan.name for plan in tb.plans][: len(SITES)] != SITES:
        pytest.skip(f"{state} holds another testbed ({', '.join(tb.sites)})")
    tb.up()
    stop = on_last_test("testbed", tb.down if not existing else lambda: None)
    yield handle_for(tb)
    stop()


@pytest.fixture(scope="session")
def ctx(testbed: TestbedHandle) -> Iterator[Context]:
    """Shared by the scenarios: the CLI, unique names for this run, the servers booted so far.

    What the scenarios created is deleted at the end (servers count against quotas).
    """
    context = Context.create(testbed)
    cleanup = on_last_test("testbed", context.cleanup)  # before the testbed stops
    yield context
    cleanup()


@pytest.fixture(scope="session")
def wtb() -> Iterator[WanTestbed]:
    if (reason := wan_missing()) is not None:
        pytest.skip(reason)
    from edgescope.demo.run import DemoOptions, open_network, open_testbed

    state = Path(os.environ.get("EDGESCOPE_WAN_TESTBED_DIR", REPO / "state-wan"))
    shared = REPO / "state"
    if "EDGESCOPE_WAN_TESTBED_DIR" not in os.environ and (shared / "testbed.json").exists():
        from edgescope.testbed import Testbed as _Testbed

        if _Testbed.from_state(shared).wan_state is not None:
            state = shared  # one WAN testbed at a time: the namespaces and ports are shared
    options = DemoOptions(WAN_SITES, wan=True, state_dir=state)
    network = open_network(options)
    assert network.wan is not None
    # A testbed this session creates from nothing (CI) is stopped at the end; one found in the
    # folder (a demo's, maybe in use) is left running, whatever its state was.
    created_here = not (state / "testbed.json").exists()
    testbed, _ = open_testbed(options, network, lambda _site, _message: None)
    wan = network.wan

    def stop() -> None:
        wan.heal()
        if created_here:
            testbed.down()
            if network.started:
                wan.down()

    stop_once = on_last_test("wtb", stop)
    yield WanTestbed(testbed, wan)
    stop_once()
