"""around()/nearest() through the real ``openstack`` CLI on the WAN testbed (issue 25).

The WAN's real delays (Paris–Marseille 10 ms, Paris–Corte 20 ms RTT) decide: at Paris,
``server list --os-scope '{nova: around(Paris, 15ms)}'`` answers from Paris and Marseille
(the ``Site`` column); once the Paris–Corte delay drops to 8 ms and Paris's proxy has
measured it (read from its ``/edgescope/status``, never a sleep), Corte joins; the delay is
put back after. ``{glance: nearest(Corte, Marseille)}`` picks Marseille from Paris. A site
with no server gets a small one for the test (deleted after).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from wan_testbed import WanTestbed

from edgescope.demo.probes import SERVER_PREFIX, Sites
from edgescope.demo.run import sites_of

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]
SITES = ("Paris", "Marseille", "Corte")
AROUND = "{nova: around(Paris, 15ms)}"


def paris_rtts(wtb: WanTestbed) -> dict[str, float | None]:
    """Peer -> the RTT Paris's proxy resolves around() with (its own status document)."""
    url = f"{wtb.testbed.sites['Paris'].proxy_url}/edgescope/status"
    proc = subprocess.run([*wtb.prefix("Paris"), "curl", "-s", "--max-time", "3", url],
                          capture_output=True, text=True, timeout=10)  # fmt: skip
    try:
        peers = json.loads(proc.stdout)["peers"]
    except (ValueError, KeyError):
        return {}
    return {p["name"]: p.get("path_rtt_ms") for p in peers}


def wait_rtt(wtb: WanTestbed, site: str, holds: Any, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not holds(paris_rtts(wtb).get(site)):
        assert time.monotonic() < deadline, f"Paris never measured {site} {what}"
        time.sleep(0.5)


def listed_sites(sites: Sites, scope: str) -> set[str]:
    rows = sites.json("Paris", "server", "list", "--all-projects", "-c", "ID", "-c", "Site",
                      cloud="Paris", scope=scope, timeout=120)  # fmt: skip
    return {part for row in rows for part in str(row.get("Site") or "?").split(" & ")}


@pytest.fixture(scope="module")
def servers(wtb: WanTestbed) -> Iterator[Sites]:
    """A server at each site (one booted where there is none; those are deleted after)."""
    sites = sites_of(wtb.testbed)
    name = f"{SERVER_PREFIX}around-{sites.run_id}"
    empty = [site for site in SITES if not sites.servers(site)]

    def boot(site: str) -> None:
        made = sites.run(site, "server", "create", name, "--image", "debian", "--flavor",
                         "m1.tiny", "--nic", "none", "--wait", cloud=f"{site}-demo",
                         timeout=300)  # fmt: skip
        assert made.ok, made.stderr

    with ThreadPoolExecutor(len(SITES)) as pool:
        list(pool.map(boot, empty))
    yield sites
    for site in empty:
        sites.run(site, "server", "delete", name, cloud=f"{site}-demo", timeout=120)


def test_around_follows_the_wan_delays_and_nearest_picks_the_nearer(
    wtb: WanTestbed, servers: Sites
) -> None:
    sites = servers
    listed_sites(sites, AROUND)  # puts the candidates in use: Paris's proxy probes them
    # A peer's first probe also opens its connection (two round trips: ~20 ms to Marseille);
    # the next ones reuse it, and the least of the last probes is the path's RTT. So wait for
    # Paris's own measurement to show the real delays, not merely a first sample.
    wait_rtt(wtb, "Marseille", lambda r: r is not None and r <= 15, "within 15 ms")
    wait_rtt(wtb, "Corte", lambda r: r is not None and r > 15, "beyond 15 ms")
    assert listed_sites(sites, AROUND) == {"Paris", "Marseille"}

    picked = sites.run("Paris", "image", "show", "debian", "-c", "id", "-f", "value",
                       cloud="Paris", scope="{glance: nearest(Corte, Marseille)}")  # fmt: skip
    assert picked.ok, picked.stderr
    assert picked.stdout.strip() == sites.image_id("Marseille")

    link = next(lk for lk in wtb.wan.status().links if set(lk["sites"]) == {"Paris", "Corte"})
    try:
        wtb.wan.set_link("Paris", "Corte", rtt_ms=8)
        wait_rtt(wtb, "Corte", lambda r: r is not None and r <= 15, "within 15 ms")
        assert listed_sites(sites, AROUND) == {"Paris", "Marseille", "Corte"}
    finally:
        wtb.wan.set_link("Paris", "Corte", rtt_ms=link["rtt_ms"])
    # the least of the last probes: the old delay is seen again within a few probes
    wait_rtt(wtb, "Corte", lambda r: r is not None and r > 15, "back above 15 ms")
    assert listed_sites(sites, AROUND) == {"Paris", "Marseille"}
