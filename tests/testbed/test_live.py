"""The real testbed: three independent OpenStack sites behind their proxies, driven by the CLI.

Order matters: the restart test comes last, since it stops and restarts every site.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgescope.testbed import Testbed, TestbedError, ceph
from edgescope.testbed.backends import features, why_not

pytestmark = pytest.mark.testbed
SITES = ["Paris", "Corte", "Marseille"]


@dataclass
class Osc:
    """The real ``openstack`` CLI, run as a subprocess against the testbed's clouds.yaml."""

    clouds_yaml: Path

    def run(self, cloud: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}
        env.pop("OS_SCOPE", None)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "openstack"), "--os-cloud", cloud, *args],
            env=env, capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(f"openstack {' '.join(args)} at {cloud} failed: {done.stderr[-800:]}")
        return done

    def value(self, cloud: str, *args: str) -> str:
        return self.run(cloud, *args, "-f", "value").stdout.strip()


@pytest.fixture(scope="session")
def osc(testbed: Testbed) -> Osc:
    return Osc(testbed.clouds_yaml)


def test_catalog_of_each_site_points_at_its_own_front(testbed: Testbed, osc: Osc) -> None:
    """Its HAProxy (the default) or its proxy (the plain mode); never the services."""
    for name, info in testbed.sites.items():
        rows = json.loads(osc.run(info.cloud, "endpoint", "list", "-f", "json").stdout)
        expected = {"identity", "image", "placement", "compute", "network"}
        if features().storage:
            expected.add("block-storage")
        assert {row["Service Type"] for row in rows} == expected
        assert {row["Service Type"]: row["URL"] for row in rows} == info.catalog, name
        services = {f":{port}" for s, port in info.ports.items() if s not in ("proxy", "haproxy")}
        assert not any(row["URL"].split("/")[2].endswith(tuple(services)) for row in rows)
        assert {row["Region"] for row in rows} == {name}


def test_sites_are_independent_clouds(testbed: Testbed, osc: Osc) -> None:
    ids = {osc.value(info.cloud, "project", "show", "admin", "-c", "id") for info in
           testbed.sites.values()}  # fmt: skip
    assert len(ids) == len(SITES)
    token = osc.value("Paris", "token", "issue", "-c", "id")
    assert token
    # Each site has its own passwords: Paris's admin password does not open Corte.
    paris_password = json.loads(testbed.clouds_yaml.read_text())["clouds"]["Paris"]["auth"][
        "password"
    ]
    refused = osc.run("Corte", "--os-password", paris_password, "token", "issue", check=False)
    assert refused.returncode != 0 and "401" in refused.stderr + refused.stdout


def test_demo_user_boots_a_server_with_no_network(testbed: Testbed, osc: Osc) -> None:
    name = f"tb-{uuid.uuid4().hex[:8]}"
    server = json.loads(osc.run(
        "Corte-demo", "server", "create", "--flavor", "m1.tiny", "--image", "debian",
        "--nic", "none", "--wait", name, "-f", "json",
    ).stdout)  # fmt: skip
    assert server["status"] == "ACTIVE"
    listed = osc.value("Corte-demo", "server", "list", "-c", "Name")
    assert name in listed.split()
    assert name not in osc.value("Paris", "server", "list", "--all-projects", "-c", "Name")
    roles = osc.value("Corte", "role", "assignment", "list", "--user", "demo", "--project",
                      "demo", "--names", "-c", "Role")  # fmt: skip
    assert roles.split() == ["member"]
    osc.run("Corte-demo", "server", "delete", "--wait", name)


def test_demo_user_boots_a_server_on_a_project_network(testbed: Testbed, osc: Osc) -> None:
    if not features().ovn:
        pytest.skip(f"this machine runs neutron without OVN: {'; '.join(why_not())}")
    name = f"tb-{uuid.uuid4().hex[:8]}"
    network = json.loads(osc.run("Marseille-demo", "network", "create", name, "-f", "json").stdout)
    try:
        osc.run("Marseille-demo", "subnet", "create", name, "--network", name,
                "--subnet-range", "10.16.0.0/24")  # fmt: skip
        server = json.loads(osc.run(
            "Marseille-demo", "server", "create", "--flavor", "m1.tiny", "--image", "debian",
            "--nic", f"net-id={network['id']}", "--wait", name, "-f", "json",
        ).stdout)  # fmt: skip
        assert server["status"] == "ACTIVE"
        ports = json.loads(osc.run("Marseille", "port", "list", "--server", server["id"],
                                   "-f", "json").stdout)  # fmt: skip
        assert len(ports) == 1
        port = osc.run("Marseille", "port", "show", ports[0]["ID"], "-f", "json").stdout
        shown = json.loads(port)
        assert shown["binding_host_id"] == "Marseille-compute1"
        assert shown["binding_vif_type"] == "ovs"  # bound by ML2/OVN to the site's chassis
    finally:
        osc.run("Marseille-demo", "server", "delete", "--wait", name, check=False)
        osc.run("Marseille-demo", "subnet", "delete", name, check=False)
        osc.run("Marseille-demo", "network", "delete", name, check=False)


def test_demo_user_makes_a_volume_of_its_sites_image(testbed: Testbed, osc: Osc) -> None:
    if not features().storage:
        pytest.skip(f"this machine runs no block storage: {'; '.join(why_not())}")
    name = f"tb-{uuid.uuid4().hex[:8]}"
    volume = json.loads(osc.run("Corte-demo", "volume", "create", "--image", "debian", "--size",
                                "1", name, "-f", "json").stdout)  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while (status := osc.value("Corte-demo", "volume", "show", name, "-c", "status")) != (
            "available"
        ):
            assert status not in ("error", "error_restoring") and time.monotonic() < deadline
            time.sleep(2)
        image = json.loads(osc.run("Corte", "image", "show", "debian", "-f", "json").stdout)
        plan = testbed.site("Corte").plan
        exported = subprocess.run(
            ceph.rbd_cli(plan, "export", f"{ceph.POOL}/volume-{volume['id']}", "-"),
            capture_output=True, timeout=120, check=True,
        ).stdout  # fmt: skip
        assert len(exported) == 1 << 30
        assert hashlib.md5(exported[: image["size"]]).hexdigest() == image["checksum"]
    finally:
        osc.run("Corte-demo", "volume", "delete", name, check=False)


def test_each_site_has_a_public_debian_image_and_tiny_flavor(testbed: Testbed, osc: Osc) -> None:
    for info in testbed.sites.values():
        image = json.loads(osc.run(info.demo_cloud, "image", "show", "debian", "-f", "json").stdout)
        assert (image["visibility"], image["status"]) == ("public", "active")
        assert osc.value(info.demo_cloud, "flavor", "show", "m1.tiny", "-c", "vcpus") == "1"


def test_status_reports_every_service_healthy(testbed: Testbed) -> None:
    testbed.up()  # idempotent: restarts anything another test (or person) stopped
    rows = testbed.status()
    site = testbed.site("Paris")
    per_site = [s for s in site.services if site.plan.runs(s)]  # HAProxy in front, or not
    assert len(rows) == len(per_site) * len(SITES)
    assert {"cinder-volume", "ovn-controller", "ceph-osd"} <= {r.service for r in rows} or not (
        features().ovn and features().storage
    )
    assert [r for r in rows if not r.healthy] == []
    assert all(r.rss > 0 for r in rows)


def test_stop_and_start_one_service(testbed: Testbed, osc: Osc) -> None:
    testbed.start_service("Marseille", "glance")  # no-op when running
    assert testbed.stop_service("Marseille", "glance")
    down = osc.run("Marseille", "image", "list", check=False)
    assert down.returncode != 0
    # Others are unaffected (other tests may have added images: look for the testbed's own).
    assert "debian" in osc.value("Paris", "image", "list", "-c", "Name").split()
    testbed.start_service("Marseille", "glance")
    assert "debian" in osc.value("Marseille", "image", "list", "-c", "Name").split()


def test_unknown_site_or_service_is_a_clear_error(testbed: Testbed) -> None:
    with pytest.raises(TestbedError, match="unknown site 'Lyon'"):
        testbed.stop_service("Lyon", "glance")
    with pytest.raises(TestbedError, match="unknown service 'swift'"):
        testbed.stop_service("Paris", "swift")


def test_down_then_up_keeps_state(testbed: Testbed, osc: Osc) -> None:
    marker = f"keep-{uuid.uuid4().hex[:8]}"
    osc.run("Paris", "project", "create", marker)
    before = osc.value("Paris", "project", "show", marker, "-c", "id")
    reattached = Testbed.from_state(testbed.state_dir)
    try:
        stopped = reattached.down()
        assert set(stopped) >= set(SITES)
        assert [row for row in reattached.status() if row.pid] == []
        assert not reattached.healthy()
    finally:
        results = reattached.up()
    assert {r["kind"] for r in results.values()} == {"warm"}
    assert osc.value("Paris", "project", "show", marker, "-c", "id") == before
    assert reattached.up()["Paris"]["kind"] == "running"  # idempotent
    osc.run("Paris", "project", "delete", marker)
