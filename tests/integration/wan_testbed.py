"""The emulated-WAN 3-site testbed shared by the WAN tests, and how they drive traffic in it.

Traffic comes from ``faults_driver.py`` run inside the sites' namespaces (the root namespace
cannot reach them). The ``wtb`` fixture (``conftest.py``) brings the testbed up once per session.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from edgescope.testbed.wan import Wan

DRIVER = Path(__file__).with_name("faults_driver.py")
SITES = ("Paris", "Corte", "Marseille")


def wan_missing() -> str | None:
    if os.geteuid() != 0:
        return "needs root (network namespaces and iptables for the emulated WAN)"
    if not Path("/proc/self/ns/net").exists():
        return "no network namespaces on this kernel"
    if subprocess.run(["ip", "netns", "list"], capture_output=True).returncode != 0:
        return "`ip netns` does not work here"
    import importlib.util

    if importlib.util.find_spec("nova") is None or importlib.util.find_spec("keystone") is None:
        return "OpenStack packages are not installed (make openstack)"
    if not Path("/usr/sbin/rabbitmq-server").exists():
        return "rabbitmq-server is not installed (make system-deps as root)"
    return None


@dataclass
class WanTestbed:
    testbed: Any
    wan: Wan

    def prefix(self, site: str) -> list[str]:
        return list(self.testbed.sites[site].exec_prefix)

    def proxy_config(self, site: str) -> dict[str, Any]:
        path = self.testbed.sites[site].root / "etc" / "proxy.toml"
        return tomllib.loads(path.read_text())

    def peer_timeouts(self, site: str, peer: str) -> float:
        """connect_timeout + read_timeout of ``site``'s proxy towards ``peer``."""
        entry = next(p for p in self.proxy_config(site)["peers"] if p["name"] == peer)
        return float(entry["connect_timeout"]) + float(entry["read_timeout"])

    def start_traffic(self, site: str, **plan: Any) -> subprocess.Popen[str]:
        """A driver process in ``site``'s namespace (as ``site``'s admin)."""
        full = {"clouds_yaml": str(self.testbed.clouds_yaml), "cloud": site, **plan}
        argv = [*self.prefix(site), sys.executable, str(DRIVER), json.dumps(full)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def traffic(self, site: str, **plan: Any) -> list[dict[str, Any]]:
        return collect(self.start_traffic(site, **plan), timeout=300)

    def breaker_state(self, site: str, peer: str, tries: int = 1) -> float | None:
        """``edgescope_breaker_state{peer=...}`` of ``site``'s proxy, read from inside its
        netns; None when ``/metrics`` did not answer within 3 s ``tries`` times in a row (a
        busy machine) or has no such line."""
        url = f"{self.testbed.sites[site].proxy_url}/metrics"
        for _ in range(max(1, tries)):
            proc = subprocess.run(
                [*self.prefix(site), "curl", "-s", "--max-time", "3", url],
                capture_output=True,
                text=True,
                timeout=10,
            )
            for line in proc.stdout.splitlines():
                if line.startswith("edgescope_breaker_state") and f'peer="{peer}"' in line:
                    return float(line.rsplit(" ", 1)[1])
        return None


def collect(proc: subprocess.Popen[str], timeout: float) -> list[dict[str, Any]]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"a traffic driver ran past {timeout:.0f} s: {err[-500:]}")
    assert proc.returncode == 0, f"traffic driver failed: {err[-800:]}"
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]
