"""Fixtures for the WAN tests: skip cleanly without root/netns, and one shared 3-site WAN.

Test WANs use their own namespace prefixes (``es-t<N>``), so they never touch a WAN the
testbed (prefix ``es``) may have up on the same machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wan_support import unique_prefix

from edgescope.testbed.wan import Topology, Wan, load_topology


def _netns_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    for tool in ("ip", "iptables", "iptables-restore", "ping"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (run `make system-deps`)"
    probe = f"es-probe-{os.getpid()}"
    done = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`ip netns add` fails here: {done.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


@pytest.fixture(scope="session")
def netns_ok() -> None:
    reason = _netns_unavailable()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def make_wan(netns_ok: None, tmp_path: Path) -> Iterator[Callable[..., Wan]]:
    """A factory of fresh WANs (own prefix and state dir), all torn down afterwards."""
    made: list[Wan] = []

    def make(topology: Topology | None = None) -> Wan:
        wan = Wan.up(
            topology or load_topology(), tmp_path / f"wan{len(made)}", prefix=unique_prefix()
        )
        made.append(wan)
        return wan

    yield make
    for wan in made:
        wan.down()


@pytest.fixture(scope="module")
def wan(netns_ok: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wan]:
    """The default Renater WAN (Paris, Corte, Marseille), shared by the tests of a module."""
    running = Wan.up(load_topology(), tmp_path_factory.mktemp("wan"), prefix=unique_prefix())
    yield running
    running.down()
