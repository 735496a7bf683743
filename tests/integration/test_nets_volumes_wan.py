"""Networks and volumes at every site, under scopes, through the real ``openstack`` CLI (issue 15).

On the WAN testbed (each site in its namespace, its own OVN and Ceph): a project's network,
subnet and server at Paris, the port bound to Paris's chassis and ACTIVE once plugged; a
volume made at Paris from an image only Corte has, its bytes read back from Paris's Ceph;
boot from it; the bad collaboration refused before any request; ``&`` creates of networks
and volumes as one resource; a quota set at two sites.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wan_testbed import WanTestbed

from edgescope.demo.probes import Sites
from edgescope.demo.run import sites_of
from edgescope.testbed import ceph

pytestmark = [pytest.mark.testbed, pytest.mark.wan, pytest.mark.slow]
IMAGE_BYTES = 3 * 1024 * 1024 + 17  # not a multiple of anything cinder rounds to


@pytest.fixture(scope="module")
def sites(wtb: WanTestbed) -> Sites:
    return sites_of(wtb.testbed)


def wait_status(sites: Sites, at: str, kind: str, name: str, want: str, cloud: str,
                timeout: float = 180.0, scope: str | None = None) -> dict[str, object]:  # fmt: skip
    """``KIND show NAME`` until its status is ``want`` (fails at once on error)."""
    deadline = time.monotonic() + timeout
    while True:
        shown = sites.json(at, kind, "show", name, cloud=cloud, scope=scope)
        status = str(shown.get("status", "")).lower()
        if status == want.lower():
            return dict(shown)
        assert "error" not in status, f"{kind} {name} at {at}: {status}"
        assert time.monotonic() < deadline, f"{kind} {name} at {at} still {status}"
        time.sleep(2)


def volume_bytes(wtb: WanTestbed, site: str, volume_id: str, length: int) -> tuple[bytes, bool]:
    """The first ``length`` bytes of a volume, read from the site's Ceph (``rbd export``),
    and whether all the rest is zeros."""
    plan = wtb.testbed.site(site).plan
    argv = ceph.rbd_cli(plan, "export", f"{ceph.POOL}/volume-{volume_id}", "-")
    done = subprocess.run(argv, capture_output=True, timeout=120, check=True)
    return done.stdout[:length], done.stdout[length:].count(0) == len(done.stdout) - length


@pytest.fixture(scope="module")
def corte_image(sites: Sites, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A public image that only Corte has, of random bytes: its name."""
    path = tmp_path_factory.mktemp("image") / "random.raw"
    path.write_bytes(os.urandom(IMAGE_BYTES))
    name = f"es-corte-only-{sites.run_id}"
    sites.json("Corte", "image", "create", name, "--file", str(path), "--disk-format", "raw",
               "--container-format", "bare", "--public", cloud="Corte", timeout=120)  # fmt: skip
    yield name
    sites.run("Corte", "image", "delete", name, cloud="Corte")


def test_a_project_network_at_paris_and_a_server_on_it(wtb: WanTestbed, sites: Sites) -> None:
    net, sub = f"es-net-{sites.run_id}", f"es-sub-{sites.run_id}"
    server = f"es-demo-net-{sites.run_id}"
    made = sites.json("Paris", "network", "create", net, cloud="Paris-demo")
    try:
        subnet = sites.json("Paris", "subnet", "create", sub, "--network", net,
                            "--subnet-range", "10.15.1.0/24", cloud="Paris-demo")  # fmt: skip
        assert subnet["cidr"] == "10.15.1.0/24"
        rules = sites.json("Paris", "security", "group", "rule", "list", "default",
                           cloud="Paris-demo")  # fmt: skip
        assert {r["Direction"] for r in rules} == {"ingress", "egress"}  # default rules made
        booted = sites.json("Paris", "server", "create", server, "--image", "debian",
                            "--flavor", "m1.tiny", "--nic", f"net-id={made['id']}", "--wait",
                            cloud="Paris-demo", timeout=200)  # fmt: skip
        assert booted["status"] == "ACTIVE"
        [port] = sites.json("Paris", "port", "list", "--server", booted["id"], cloud="Paris")
        shown = sites.json("Paris", "port", "show", port["ID"], cloud="Paris")
        assert shown["binding_host_id"] == "Paris-compute1"
        assert shown["binding_vif_type"] == "ovs"  # bound by ML2/OVN to Paris's chassis
        assert shown["status"] == "DOWN"  # nova's fake driver plugs nothing
        wtb.testbed.site("Paris").backends.plug(port["ID"], shown["mac_address"], booted["id"])
        wait_status(sites, "Paris", "port", port["ID"], "ACTIVE", cloud="Paris", timeout=60)
    finally:
        sites.run("Paris", "server", "delete", server, "--wait", cloud="Paris-demo", timeout=120)
        sites.run("Paris", "subnet", "delete", sub, cloud="Paris-demo")
        sites.run("Paris", "network", "delete", net, cloud="Paris-demo")


def test_a_volume_at_paris_from_an_image_only_corte_has(
    wtb: WanTestbed, sites: Sites, corte_image: str
) -> None:
    checksum = str(sites.json("Corte", "image", "show", corte_image, cloud="Corte")["checksum"])
    name = f"es-vol-{sites.run_id}"
    local = sites.run("Paris", "volume", "create", "--image", corte_image, "--size", "1",
                      name + "-local", cloud="Paris-demo")  # fmt: skip
    assert not local.ok and "Traceback" not in local.stderr  # Paris has no such image
    made = sites.json("Paris", "volume", "create", "--image", corte_image, "--size", "1", name,
                      cloud="Paris-demo", scope="{cinder: Paris, glance: Corte}")  # fmt: skip
    try:
        volume = wait_status(sites, "Paris", "volume", made["id"], "available", "Paris-demo")
        assert volume["bootable"] in (True, "true")
        head, rest_zero = volume_bytes(wtb, "Paris", str(made["id"]), IMAGE_BYTES)
        assert hashlib.md5(head).hexdigest() == checksum  # Corte's bytes, in Paris's Ceph
        assert rest_zero
        corte = sites.json("Corte", "volume", "list", "--all-projects", cloud="Corte")
        assert made["id"] not in {v["ID"] for v in corte}
        # boot from it at the volume's site
        server = f"es-demo-bfv-{sites.run_id}"
        booted = sites.json("Paris", "server", "create", server, "--volume", name, "--flavor",
                            "m1.tiny", "--nic", "none", "--wait", cloud="Paris-demo",
                            scope="{nova: Paris, cinder: Paris}", timeout=200)  # fmt: skip
        assert booted["status"] == "ACTIVE"
        wait_status(sites, "Paris", "volume", name, "in-use", "Paris-demo", timeout=60)
        deleted = sites.run("Paris", "server", "delete", server, "--wait", cloud="Paris-demo",
                            timeout=120)  # fmt: skip
        assert deleted.ok, deleted.stderr
        wait_status(sites, "Paris", "volume", name, "available", "Paris-demo", timeout=120)
    finally:
        sites.run("Paris", "volume", "delete", str(made["id"]), cloud="Paris-demo")


def test_a_volume_at_another_site_than_compute_is_refused_before_any_request(
    wtb: WanTestbed, sites: Sites
) -> None:
    log = Path(wtb.testbed.sites["Paris"].logs["proxy"])
    before = log.stat().st_size
    refused = sites.run("Paris", "server", "create", "x", "--volume", "any", "--flavor",
                        "m1.tiny", "--nic", "none", cloud="Paris-demo",
                        scope="{nova: Paris, cinder: Corte}")  # fmt: skip
    assert not refused.ok and "Traceback" not in refused.stderr
    assert "compute and block-storage must run at the same site" in refused.stderr
    assert "hypervisor" in refused.stderr  # the reason
    assert log.stat().st_size == before  # nothing reached Paris's proxy


def members_of(sites: Sites, handle: str) -> dict[str, str]:
    found = {site: member for site, member in sites.members(handle).items() if member}
    assert set(found) == {"Paris", "Corte"}, found
    return found


def test_an_and_network_create_is_one_network(sites: Sites) -> None:
    scope, name = "{neutron: Paris & Corte}", f"es-anet-{sites.run_id}"
    made = sites.json("Paris", "network", "create", name, cloud="Paris-demo", scope=scope)
    members = members_of(sites, str(made["id"]))
    try:
        for site, member in members.items():
            assert sites.json(site, "network", "show", member, cloud=site)["name"] == name
        rows = sites.json("Paris", "network", "list", "--name", name, "-c", "ID", "-c", "Site",
                          cloud="Paris-demo", scope=scope)  # fmt: skip
        assert rows == [{"ID": made["id"], "Site": "Paris & Corte"}]
    finally:
        deleted = sites.run("Paris", "network", "delete", name, cloud="Paris-demo", scope=scope)
    assert deleted.ok, deleted.stderr
    for site, member in members.items():
        assert not sites.run(site, "network", "show", member, cloud=site).ok


def test_an_and_volume_create_is_one_volume(sites: Sites) -> None:
    scope, name = "{cinder: Paris & Corte}", f"es-avol-{sites.run_id}"
    made = sites.json("Paris", "volume", "create", "--size", "1", name, cloud="Paris-demo",
                      scope=scope)  # fmt: skip
    members = members_of(sites, str(made["id"]))
    try:
        for site, member in members.items():
            wait_status(sites, site, "volume", member, "available", cloud=site)
        rows = sites.json("Paris", "volume", "list", "--name", name, "-c", "ID", "-c", "Site",
                          cloud="Paris-demo", scope=scope)  # fmt: skip
        assert rows == [{"ID": made["id"], "Site": "Paris & Corte"}]
    finally:
        deleted = sites.run("Paris", "volume", "delete", name, cloud="Paris-demo", scope=scope)
    assert deleted.ok, deleted.stderr
    for site, member in members.items():
        deadline = time.monotonic() + 90
        while sites.run(site, "volume", "show", member, cloud=site).ok:
            assert time.monotonic() < deadline, f"{site} kept volume {member}"
            time.sleep(2)


def test_a_strict_and_volume_create_that_one_site_refuses_leaves_nothing(sites: Sites) -> None:
    vtype = f"es-paris-only-{sites.run_id}"  # Corte's cinder has no such type: 404 there
    assert sites.run("Paris", "volume", "type", "create", vtype, "--public", cloud="Paris").ok
    name = f"es-undo-{sites.run_id}"
    try:
        made = sites.run("Paris", "volume", "create", "--size", "1", "--type", vtype, name,
                         cloud="Paris-demo", scope="{cinder: Paris & Corte}")  # fmt: skip
        assert not made.ok and "Traceback" not in made.stderr
        assert "Corte: 404" in made.stderr and "undone: Paris: " in made.stderr, made.stderr
        assert "deleted again" in made.stderr, made.stderr  # once no longer 'creating'
        deadline = time.monotonic() + 90
        while sites.json("Paris", "volume", "list", "--all-projects", "--name", name,
                         cloud="Paris"):  # fmt: skip
            assert time.monotonic() < deadline, "Paris kept the volume nobody asked for"
            time.sleep(2)
    finally:
        sites.run("Paris", "volume", "type", "delete", vtype, cloud="Paris")


def test_a_quota_set_under_and_sets_both_sites(sites: Sites) -> None:
    def instances(site: str) -> int:
        """Paris's project ``demo``'s instance quota at ``site``'s nova (asked from Paris:
        that project's users are Paris's, wherever their calls go)."""
        rows = sites.json("Paris", "quota", "show", "--compute", "demo", cloud="Paris",
                          scope=f"{{nova: {site}}}")  # fmt: skip
        return int(next(r["Limit"] for r in rows if r["Resource"] == "instances"))

    scope = "{nova: Paris & Corte}"
    untouched = instances("Marseille")
    try:
        done = sites.run("Paris", "quota", "set", "--instances", "37", "demo", cloud="Paris",
                         scope=scope)  # fmt: skip
        assert done.ok, done.stderr
        assert (instances("Paris"), instances("Corte")) == (37, 37)
        assert instances("Marseille") == untouched
    finally:
        sites.run("Paris", "quota", "set", "--instances", "100", "demo", cloud="Paris",
                  scope=scope)  # fmt: skip
