"""Three sites of Swift (Debian's packages) behind their proxies on loopback, and its CLI.

One bed per session: ``EDGESCOPE_SWIFT_PORT_BASE`` (default 16000, away from the
10000 the docs suggest for a second OpenStack testbed) picks its ports, 20 per
site; its state (configs, rings, devices, logs) lives in pytest's temporary folder.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from swift_support import SwiftCli

from edgescope.testbed.process import port_in_use
from edgescope.testbed.swift import STRIDE, SwiftTestbed, missing_binaries

SITES = ["Paris", "Corte", "Marseille"]


@pytest.fixture(scope="session")
def swift_bed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftTestbed]:
    if missing := missing_binaries():
        pytest.skip(f"not installed: {', '.join(missing)} (make system-deps as root)")
    base = int(os.environ.get("EDGESCOPE_SWIFT_PORT_BASE", "16000"))
    busy = [p for p in range(base, base + STRIDE * len(SITES)) if port_in_use("127.0.0.1", p)]
    if busy:
        pytest.fail(f"ports {busy} are taken: set EDGESCOPE_SWIFT_PORT_BASE to a free range")
    bed = SwiftTestbed.create(tmp_path_factory.mktemp("swift"), SITES, port_base=base)
    try:
        bed.up()
        yield bed
    finally:
        bed.down()


@pytest.fixture(scope="session")
def swift_cli(swift_bed: SwiftTestbed) -> dict[str, SwiftCli]:
    return {name: SwiftCli(site) for name, site in swift_bed.sites.items()}
