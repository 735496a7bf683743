"""*-DC as the seed writes it, through the real ``openstack`` CLI on the WAN testbed (issue 10).

A boot under ``{nova: Paris&Corte, glance: Corte}`` by names is one resource: shown, listed
once (Site ``Paris & Corte``) and deleted by name; a strict ``&`` boot that one site refuses
leaves nothing behind (all or nothing, through the real nova).
"""

from __future__ import annotations

import json
import time

import pytest
from wan_testbed import WanTestbed

from edgescope.demo.probes import SERVER_PREFIX, Sites
from edgescope.demo.run import sites_of

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]
STAR = "{nova: Paris&Corte, glance: Corte}"
BOOT = ("--flavor", "m1.tiny", "--nic", "none", "--wait", "-f", "json")


def gone(sites: Sites, site: str, server: str, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while server in sites.server_ids(site):
        if time.monotonic() > deadline:
            return False
        time.sleep(2)
    return True


def test_a_star_dc_boot_by_names_is_one_resource(wtb: WanTestbed) -> None:
    sites = sites_of(wtb.testbed)
    name = f"{SERVER_PREFIX}star-{sites.run_id}"
    made = sites.run("Paris", "server", "create", name, "--image", "debian", *BOOT,
                     cloud="Paris-demo", scope=STAR, timeout=200)  # fmt: skip
    assert made.ok, made.stderr
    server = json.loads(made.stdout)
    assert server["status"] == "ACTIVE"
    members = sites.members(server["id"])
    assert set(members) == {"Paris", "Corte"} and members["Paris"] == server["id"]
    corte_image = sites.image_id("Corte")
    for site, member in members.items():
        assert member is not None and sites.servers(site)[member] == "ACTIVE"
        assert sites.server_image(site, member) == corte_image  # both with Corte's debian

    shown = sites.json("Paris", "server", "show", name, cloud="Paris-demo", scope=STAR)
    assert shown["id"] == server["id"] and shown["status"] == "ACTIVE"
    rows = sites.json("Paris", "server", "list", "--name", f"^{name}$", "-c", "ID", "-c", "Site",
                      cloud="Paris-demo", scope=STAR)  # fmt: skip
    assert rows == [{"ID": server["id"], "Site": "Paris & Corte"}]

    deleted = sites.run("Paris", "server", "delete", name, "--wait", cloud="Paris-demo",
                        scope=STAR, timeout=200)  # fmt: skip
    assert deleted.ok, deleted.stderr
    for site, member in members.items():
        assert member is not None and gone(sites, site, member), f"still at {site}"
    assert sites.members(server["id"]) == {}  # the set is gone with its members


def test_a_strict_star_dc_boot_one_site_refuses_leaves_nothing(wtb: WanTestbed) -> None:
    sites = sites_of(wtb.testbed)
    flavor = f"es-paris-only-{sites.run_id}"  # exists at Paris only: Corte's nova says 400
    assert sites.run("Paris", "flavor", "create", flavor, "--ram", "512", "--disk", "1",
                     "--vcpus", "1", "--public", cloud="Paris").ok  # fmt: skip
    name = f"{SERVER_PREFIX}undo-{sites.run_id}"
    try:
        made = sites.run("Paris", "server", "create", name, "--image", "debian", "--flavor",
                         flavor, "--nic", "none", "--wait", cloud="Paris-demo", scope=STAR,
                         timeout=200)  # fmt: skip
        assert not made.ok
        assert "Corte: 400" in made.stderr and "undone: Paris: " in made.stderr, made.stderr
        assert "Traceback" not in made.stderr
        deadline = time.monotonic() + 90
        while sites.json("Paris", "server", "list", "--all-projects", "--name", f"^{name}$",
                         cloud="Paris"):  # fmt: skip
            assert time.monotonic() < deadline, "Paris kept the server nobody asked for"
            time.sleep(2)
    finally:
        sites.run("Paris", "flavor", "delete", flavor, cloud="Paris")
