"""A site's OVN and Ceph and its cinder: the rendered files and command lines (no process)."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from edgescope.testbed import ceph, cinder, ovn
from edgescope.testbed.backends import Backends, Features
from edgescope.testbed.configs import Credentials, render_ini
from edgescope.testbed.layout import PORT_OFFSETS, SitePlan, TestbedError, TestbedUsageError
from edgescope.testbed.services import service_launch

WAN = ("ip", "netns", "exec", "es-paris")


@pytest.fixture
def plan(tmp_path: Path) -> SitePlan:
    return SitePlan.make("Paris", 1, tmp_path)


def test_each_loopback_site_gets_its_own_switch_namespace(tmp_path: Path) -> None:
    """Two userspace datapaths cannot share a namespace: both create the ``ovs-netdev`` tap."""
    plans = [SitePlan.make(n, i, tmp_path) for i, n in enumerate(["Paris", "Corte"], 1)]
    assert [p.ovs_netns for p in plans] == ["es-ovs-20100", "es-ovs-20200"]
    assert plans[0].ovs_prefix == ("ip", "netns", "exec", "es-ovs-20100")
    other = SitePlan.make("Paris", 1, tmp_path, port_base=10000)  # a second testbed
    assert other.ovs_netns != plans[0].ovs_netns
    wan = SitePlan.make("Paris", 1, tmp_path, bind_host="10.66.0.1", exec_prefix=WAN)
    assert wan.ovs_prefix == WAN  # under --wan: the site's own namespace


def test_ovn_daemons_talk_over_the_sites_unix_sockets(plan: SitePlan) -> None:
    run = plan.run / "ovn"
    northd = service_launch(plan, "ovn-northd")
    assert northd.argv[:4] == ["ip", "netns", "exec", "es-ovs-20100"]
    assert f"--ovnnb-db=unix:{run}/ovnnb_db.sock" in northd.argv
    assert f"--ovnsb-db=unix:{run}/ovnsb_db.sock" in northd.argv
    assert "--detach" not in northd.argv  # foreground: the testbed tracks the PID
    controller = service_launch(plan, "ovn-controller")
    assert controller.env["OVN_RUNDIR"] == str(run)  # its control socket (no --unixctl)
    nb = service_launch(plan, "ovn-nb-db").argv
    assert str(plan.data / "ovn" / "ovnnb.ovsdb") in nb  # not .db: snapshots copy it as is


def test_the_chassis_is_nova_compute_host_on_a_userspace_bridge(plan: SitePlan) -> None:
    """ML2/OVN binds a port only to a chassis whose hostname is the port's host."""
    init = " ".join(ovn.chassis_commands(plan)[0])
    assert "external-ids:hostname=Paris-compute1" in init
    assert "datapath_type=netdev" in init and "ovn-bridge-datapath-type=netdev" in init
    assert f"external-ids:ovn-remote=unix:{plan.run}/ovn/ovnsb_db.sock" in init


def test_plug_names_the_port_as_os_vif_does(plan: SitePlan) -> None:
    port = "5f1c0b3e-0d6e-4f55-9a57-0c1b2f3a4d5e"
    argv = ovn.plug_command(plan, port, "fa:16:3e:00:00:01", "vm-1")
    assert "tap5f1c0b3e-0d" in argv and f"external_ids:iface-id={port}" in argv
    assert "external_ids:attached-mac=fa:16:3e:00:00:01" in argv
    backends = Backends(plan, run=_never, launch=_never, features=Features(True, True))
    with pytest.raises(TestbedUsageError, match="not a port id"):
        backends.plug("x; rm -rf /", "", "")
    without = Backends(plan, run=_never, launch=_never, features=Features(False, True))
    with pytest.raises(TestbedError, match="without OVN"):
        without.plug(port, "", "")


def _never(*_: object) -> str:
    raise AssertionError("must not run")


def test_ceph_ports_stay_inside_the_sites_block(plan: SitePlan) -> None:
    conf = _ini(ceph.ceph_conf(plan, "fsid-1"))["global"]
    low, high = int(conf["ms bind port min"]), int(conf["ms bind port max"])
    mon = plan.port("ceph-mon")
    assert conf["mon host"] == f"[v2:127.0.0.1:{mon},v1:127.0.0.1:{mon + 1}]"
    assert mon + 1 < low <= high < plan.port("proxy")
    taken = {plan.port_base + 100 + offset for offset in PORT_OFFSETS.values()}
    assert taken.isdisjoint(range(mon + 1, high + 1))
    assert high - low + 1 >= 8  # an OSD binds 8 messenger ports
    assert conf["osd pool default size"] == "1"


def test_ceph_lives_in_the_site_folder(plan: SitePlan) -> None:
    text = ceph.ceph_conf(plan, "fsid-1")
    assert "/etc/ceph" not in text
    assert f"keyring = {plan.data}/ceph/$cluster.$name.keyring" in text
    assert ceph.launch_argv(plan, "ceph-osd")[-3:] == ["-f", "-c", str(ceph.conf_path(plan))]
    wan = SitePlan.make("Paris", 1, plan.root.parent.parent, bind_host="10.66.0.1",
                        exec_prefix=WAN)  # fmt: skip
    assert ceph.cli(wan, "osd", "stat")[:4] == list(WAN)  # asked from the site's namespace
    assert "public addr = 10.66.0.1" in ceph.ceph_conf(wan, "fsid-1")


def test_cinder_conf_carries_the_three_fixes(plan: SitePlan) -> None:
    conf = _ini(render_ini(cinder.cinder_conf(plan, Credentials.generate(), "rabbit://x")))
    helper = conf["cinder_sys_admin"]["helper_command"]
    assert helper.endswith(f"privsep-helper --config-file {plan.etc}/cinder/cinder.conf")
    assert conf["privsep_osbrick"]["helper_command"] == helper  # no sudo cinder-rootwrap
    assert conf["DEFAULT"]["resource_query_filters_file"].endswith("cinder/resource_filters.json")
    assert conf["DEFAULT"]["public_endpoint"] == "http://127.0.0.1:20117"  # HAProxy's frontend
    assert conf["DEFAULT"]["glance_catalog_info"] == "image:glance:publicURL"
    backend = conf[cinder.BACKEND]
    assert backend["rbd_pool"] == ceph.POOL and backend["rbd_user"] == ceph.CLIENT
    assert conf["database"]["connection"].startswith(f"sqlite:///{plan.data}/cinder.db?")


def test_cinder_api_reads_its_config_from_uwsgi_arguments(plan: SitePlan) -> None:
    launch = service_launch(plan, "cinder-api")
    assert "cinder.wsgi.api" in launch.argv
    assert launch.argv[-2:] == ["--pyargv", f"--config-file {plan.etc}/cinder/cinder.conf"]
    assert launch.health_url == "http://127.0.0.1:20107/"
    assert plan.catalog_url("cinder-api") == "http://127.0.0.1:20117/v3"


def test_features_say_which_services_a_site_lacks() -> None:
    assert Features(True, True).without() == ()
    assert "ovn-controller" in Features(False, True).without()
    lacking = Features(True, False).without()
    assert {"ceph-osd", "cinder-volume", "cinder-api"} <= set(lacking)


def _ini(text: str) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser(strict=True, interpolation=None)
    parser.read_string(text)
    sections = {s: dict(parser[s]) for s in parser.sections()}
    sections["DEFAULT"] = dict(parser.defaults())
    return sections
