"""The loopback testbed starts coming up while the tests before it run (a pytest plugin).

The session runs the fast tests first, then the loopback testbed's modules (shared_beds.py).
When a session will need that testbed and its first test does not, ``edgescope testbed up``
starts at once as a process of its own (its output in ``artifacts/testbed-up-early.log``), and
the ``testbed`` fixtures wait for it (:func:`wait`), then run their usual ``up``, which finds
the sites running. On CI's 2 cores the fast tier keeps about one core busy; the bring-up (about
6 min there) overlaps it instead of following it. ``EDGESCOPE_EARLY_TESTBED=0`` turns this off.

The process runs apart from the tests: it gets the environment of the session's start, not one
a test patched. A bring-up that failed is only logged: the fixture's own ``up`` then runs (and
fails, if it must, with its own error). A session that ends without the fixture (``-x``, an
interrupt) stops what the early start made (a testbed already running is never started early).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SITES = ("Paris", "Corte", "Marseille")
LOG = REPO / "artifacts" / "testbed-up-early.log"


def state_dir() -> Path:
    """The loopback testbed's folder, as the ``testbed`` fixtures pick it."""
    return Path(os.environ.get("EDGESCOPE_STATE_DIR", REPO / "state"))


@dataclass
class Early:
    process: subprocess.Popen[bytes]
    existing: bool
    """The folder held a testbed (stopped: a running one is not started early)."""
    used: bool = False


_early: Early | None = None


def _can_start() -> bool:
    if os.environ.get("EDGESCOPE_EARLY_TESTBED", "1") == "0":
        return False
    from edgescope.testbed.rabbit import rabbit_installed

    needed = ("nova", "neutron", "keystone")
    return all(importlib.util.find_spec(m) is not None for m in needed) and rabbit_installed()


def _needs_testbed(item: pytest.Item) -> bool:
    marked = item.get_closest_marker("testbed") is not None
    return marked and "testbed" in getattr(item, "fixturenames", ())


def wanted(items: list[pytest.Item]) -> bool:
    """The session (in its run order) needs the loopback testbed, and not from its first test
    (then there is nothing to overlap: the fixture brings it up at once)."""
    if not items or _needs_testbed(items[0]):
        return False
    return any(_needs_testbed(item) and not item.get_closest_marker("wan") for item in items)


def pytest_collection_finish(session: pytest.Session) -> None:
    global _early
    if _early is not None or not wanted(session.items) or not _can_start():
        return
    from edgescope.testbed import Testbed

    state = state_dir()
    existing = (state / "testbed.json").exists()
    if existing:
        tb = Testbed.from_state(state)
        if list(tb.sites) != list(SITES) or tb.wan_state is not None or tb.healthy():
            return  # another testbed (the fixture skips), or already up
    LOG.parent.mkdir(parents=True, exist_ok=True)
    with LOG.open("wb") as log:
        command = [sys.executable, "-c", "from edgescope.cli import main; main()", "testbed", "up"]
        command += ["--state-dir", str(state)]
        command += ["--sites", ",".join(SITES)]
        log.write(f"$ {' '.join(command)}\n".encode())
        log.flush()
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO
        )
    _early = Early(process, existing)


def wait() -> Early | None:
    """The early start of this session, finished (None: there was none)."""
    if _early is None or _early.used:
        return None
    _early.used = True
    status = _early.process.wait()
    if status != 0:
        print(f"early `edgescope testbed up` exited {status} (see {LOG}); the fixture retries")
    return _early


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Without the fixture, stop what the early start made (it may still be coming up)."""
    if _early is None or _early.used:
        return
    _early.used = True
    _early.process.terminate()
    _early.process.wait()
    from edgescope.testbed import Testbed

    if (state_dir() / "testbed.json").exists():
        Testbed.from_state(state_dir()).down()
