"""Helpers shared by the WAN tests: unique namespace prefixes and running probes in sites."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

from edgescope.testbed.wan import Wan

PROBE = Path(__file__).with_name("_probe.py")
_counter = itertools.count(1)


def unique_prefix() -> str:
    """A namespace prefix no other test (or the testbed's ``es``) uses."""
    return f"es-t{os.getpid() % 1000}x{next(_counter)}"


def in_site(
    wan: Wan, site: str, *args: str, timeout: float = 20
) -> subprocess.CompletedProcess[str]:
    """Run a command inside a site's namespace."""
    return subprocess.run(
        [*wan.exec_prefix(site), *args], capture_output=True, text=True, timeout=timeout
    )


def probe(wan: Wan, site: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run tests/testbed/wan/_probe.py inside a site's namespace."""
    return in_site(wan, site, sys.executable, str(PROBE), *args)


def ping(
    wan: Wan, src: str, dst: str, count: int = 5, interval: float = 0.05
) -> tuple[float, float, int]:
    """(min RTT ms, avg RTT ms, packets received) of pings from src to dst."""
    done = in_site(
        wan,
        src,
        "ping",
        "-n",
        "-q",
        "-c",
        str(count),
        "-i",
        str(interval),
        "-W",
        "1",
        wan.site_address(dst),
    )
    received = int(re.search(r"(\d+) received", done.stdout).group(1))  # type: ignore[union-attr]
    rtt = re.search(r"= ([\d.]+)/([\d.]+)/", done.stdout)
    if rtt is None:
        return float("inf"), float("inf"), received
    return float(rtt.group(1)), float(rtt.group(2)), received
