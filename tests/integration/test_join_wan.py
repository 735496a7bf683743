"""A site joins the running WAN testbed knowing one peer, and leaves (issue 14).

Vancouver (300 ms from Paris in the shipped topology) comes up as a full OpenStack site whose
proxy knows only Paris: no other site's config changes, yet within a few gossip rounds every
site's directory admits it and ``{glance: Vancouver}`` works from Paris, Corte and Marseille
through the real ``openstack`` CLI, and Vancouver reaches Corte, which it never named. When it
leaves, every site learns it and a scope naming it gets a clear error.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from wan_testbed import SITES, WanTestbed

from edgescope.demo.run import sites_of

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]
NEW = "Vancouver"
EDGESCOPE = [sys.executable, "-c", "from edgescope.cli import main; main()"]


def edgescope(*args: str, timeout: float = 900.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*EDGESCOPE, *args], capture_output=True, text=True, timeout=timeout)


def directory_states(wtb: WanTestbed, site: str) -> dict[str, str]:
    """``site``'s directory, read from its proxy inside its namespace: {site: state}."""
    info = wtb.testbed.sites[site]
    url = info.proxy_url + "/edgescope/directory"
    answer = subprocess.run([*info.exec_prefix, "curl", "-s", "--max-time", "5", url],
                            capture_output=True, text=True, timeout=15)  # fmt: skip
    entries = json.loads(answer.stdout or "{}").get("entries", [])
    return {e["site"]: e["state"] for e in entries}


def wait_for(check: object, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(2)
    return False


def test_a_site_joins_by_one_peer_and_leaves(wtb: WanTestbed) -> None:
    state_dir = str(wtb.testbed.state_dir)
    configs = {s: Path(wtb.testbed.sites[s].root, "etc", "proxy.toml") for s in SITES}
    before = {s: path.read_text() for s, path in configs.items()}
    joined = edgescope("testbed", "join", NEW, "--seed", "Paris", "--state-dir", state_dir)
    try:
        assert joined.returncode == 0, joined.stderr[-2000:]
        wtb.testbed = type(wtb.testbed).from_state(Path(state_dir))
        assert {s: path.read_text() for s, path in configs.items()} == before  # nobody edited
        new_config = Path(wtb.testbed.sites[NEW].root, "etc", "proxy.toml").read_text()
        assert "[[peers]]" not in new_config  # it knows one seed, no static peer
        for site in SITES:
            assert wait_for(lambda site=site: directory_states(wtb, site).get(NEW) == "up"), site
        sites = sites_of(wtb.testbed)
        vancouver_debian = sites.image_id(NEW)
        for site in SITES:
            listed = sites.json(site, "image", "list", "-c", "ID", cloud=site,
                                scope=f"{{glance: {NEW}}}")  # fmt: skip
            assert vancouver_debian in {row["ID"] for row in listed}, (site, listed)
        corte = sites.json(NEW, "image", "list", "-c", "ID", cloud=NEW, scope="{glance: Corte}")
        assert sites.image_id("Corte") in {row["ID"] for row in corte}
    finally:
        left = edgescope("testbed", "leave", NEW, "--state-dir", state_dir, timeout=300)
        wtb.testbed = type(wtb.testbed).from_state(Path(state_dir))
    assert left.returncode == 0, left.stderr[-2000:]
    for site in SITES:
        assert wait_for(lambda site=site: directory_states(wtb, site).get(NEW) == "left"), site
    refused = sites_of(wtb.testbed).run(
        "Paris", "image", "list", cloud="Paris", scope=f"{{glance: {NEW}}}"
    )
    assert not refused.ok and "Traceback" not in refused.stderr
    assert NEW in refused.stderr, refused.stderr[-500:]
