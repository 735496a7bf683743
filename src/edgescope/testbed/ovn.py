"""A site's networks: Open vSwitch (userspace datapath) and one OVN deployment, per site.

Six processes per site, all in the foreground under the testbed's PID handling, talking
over unix sockets in ``run/ovn`` (no TCP port): ``ovs-db`` (the switch's database),
``ovs-vswitchd`` (``br-int`` with ``datapath_type=netdev``: this kernel has no openvswitch
module), ``ovn-nb-db`` and ``ovn-sb-db`` (OVN's databases), ``ovn-northd`` and
``ovn-controller`` (the site's one chassis, named after nova's compute host, since ML2/OVN
binds a port only to a chassis of the port's host). neutron's ML2/OVN driver reaches the
databases through the sockets, from any namespace. Commands here are pure (argv lists);
``backends.py`` runs them. Databases live in ``data/ovn`` as ``*.ovsdb`` (snapshots copy
them as plain files).

    >>> launch_argv(plan, "ovn-northd")[-3:]
    ['--ovnnb-db=unix:.../run/ovn/ovnnb_db.sock', '--ovnsb-db=unix:.../run/ovn/ovnsb_db.sock', ...]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from edgescope.testbed.layout import SitePlan, TestbedError

SCHEMAS = {
    "conf": Path("/usr/share/openvswitch/vswitch.ovsschema"),
    "ovnnb": Path("/usr/share/ovn/ovn-nb.ovsschema"),
    "ovnsb": Path("/usr/share/ovn/ovn-sb.ovsschema"),
}
"""Database file stem -> the schema Debian's packages ship."""

_BINARIES = ("ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-vswitchd", "ovn-northd",
             "ovn-controller", "ovn-sbctl")  # fmt: skip
BRIDGE = "br-int"


def missing() -> str | None:
    """Why this machine cannot run a site's OVN, or None if it can."""
    if os.geteuid() != 0:
        return "OVN's userspace datapath needs root (taps and a network namespace per site)"
    absent = [b for b in _BINARIES if shutil.which(b) is None and not Path("/usr/sbin", b).exists()]
    if absent:
        return f"{', '.join(absent)} not installed (make system-deps: openvswitch-switch, ovn-*)"
    return None


def run_dir(plan: SitePlan) -> Path:
    """Sockets and control sockets (``run/`` is never snapshotted)."""
    return plan.run / "ovn"


def db_dir(plan: SitePlan) -> Path:
    return plan.data / "ovn"


def socket(plan: SitePlan, name: str) -> str:
    """``unix:`` address of a database: ``db`` (the switch's), ``ovnnb_db`` or ``ovnsb_db``."""
    return f"unix:{run_dir(plan) / name}.sock"


def environment(plan: SitePlan) -> dict[str, str]:
    """The OVS/OVN tools take their default folders from these (ovn-controller has no
    ``--unixctl`` option: its control socket goes to ``$OVN_RUNDIR``)."""
    run, db, log = str(run_dir(plan)), str(db_dir(plan)), str(plan.logs)
    return {"OVS_RUNDIR": run, "OVS_DBDIR": db, "OVS_LOGDIR": log,
            "OVN_RUNDIR": run, "OVN_DBDIR": db, "OVN_LOGDIR": log}  # fmt: skip


def launch_argv(plan: SitePlan, service: str) -> list[str]:
    """The foreground command line of one of the site's OVS/OVN daemons."""
    run, db = run_dir(plan), db_dir(plan)
    console = "-vconsole:info"
    databases = {  # service -> (file stem, socket name, schema name, config table)
        "ovs-db": ("conf", "db", "Open_vSwitch,Open_vSwitch,manager_options"),
        "ovn-nb-db": ("ovnnb", "ovnnb_db", "OVN_Northbound,NB_Global,connections"),
        "ovn-sb-db": ("ovnsb", "ovnsb_db", "OVN_Southbound,SB_Global,connections"),
    }
    if service in databases:
        stem, sock, remote = databases[service]
        argv = ["ovsdb-server", str(db / f"{stem}.ovsdb"), f"--remote=punix:{run / sock}.sock",
                f"--remote=db:{remote}", f"--unixctl={run / sock}.ctl", console]  # fmt: skip
    elif service == "ovs-vswitchd":
        argv = ["ovs-vswitchd", socket(plan, "db"), f"--unixctl={run}/ovs-vswitchd.ctl", console]
    elif service == "ovn-northd":
        argv = ["ovn-northd", f"--ovnnb-db={socket(plan, 'ovnnb_db')}",
                f"--ovnsb-db={socket(plan, 'ovnsb_db')}", f"--unixctl={run}/ovn-northd.ctl",
                console]  # fmt: skip
    elif service == "ovn-controller":
        argv = ["ovn-controller", socket(plan, "db"), console]
    else:
        raise TestbedError(f"not an OVN service: {service!r}")
    return [*plan.ovs_prefix, *argv]


def create_commands(plan: SitePlan) -> list[list[str]]:
    """``ovsdb-tool create`` for each database file that does not exist yet."""
    return [
        ["ovsdb-tool", "create", str(db_dir(plan) / f"{stem}.ovsdb"), str(schema)]
        for stem, schema in SCHEMAS.items()
        if not (db_dir(plan) / f"{stem}.ovsdb").exists()
    ]


def chassis_commands(plan: SitePlan) -> list[list[str]]:
    """Initialise the databases and describe the chassis, before ``ovs-vswitchd`` and
    ``ovn-controller`` start (``--no-wait``: nothing needs to be running but the databases).
    An encapsulation type and IP are required to register a chassis, even alone."""
    host = plan.compute_host
    return [
        ["ovs-vsctl", f"--db={socket(plan, 'db')}", "--no-wait", "init",
         "--", "--may-exist", "add-br", BRIDGE,
         "--", "set", "bridge", BRIDGE, "datapath_type=netdev", "fail-mode=secure",
         "other-config:disable-in-band=true",
         "--", "set", "open", ".", f"external-ids:system-id={host}",
         f"external-ids:hostname={host}", f"external-ids:ovn-remote={socket(plan, 'ovnsb_db')}",
         "external-ids:ovn-encap-type=geneve", "external-ids:ovn-encap-ip=127.0.0.1",
         "external-ids:ovn-bridge-datapath-type=netdev",
         "external-ids:ovn-cms-options=enable-chassis-as-gw"],
        ["ovn-nbctl", f"--db={socket(plan, 'ovnnb_db')}", "--no-wait", "init"],
        ["ovn-sbctl", f"--db={socket(plan, 'ovnsb_db')}", "init"],
    ]  # fmt: skip


def plug_command(plan: SitePlan, port_id: str, mac: str, device_id: str = "") -> list[str]:
    """What os-vif's OVS plugin does on a real hypervisor, for a port of a fake-driver server:
    an interface on ``br-int`` whose ``iface-id`` is the neutron port. ovn-controller claims
    it, neutron marks the port ACTIVE and tells nova ``network-vif-plugged``."""
    tap = f"tap{port_id[:11]}"
    argv = ["ovs-vsctl", f"--db={socket(plan, 'db')}", "--timeout=30",
            "--", "--may-exist", "add-port", BRIDGE, tap,
            "--", "set", "Interface", tap, "type=internal", f"external_ids:iface-id={port_id}",
            "external_ids:iface-status=active"]  # fmt: skip
    if mac:
        argv.append(f"external_ids:attached-mac={mac}")
    if device_id:
        argv.append(f"external_ids:vm-uuid={device_id}")
    return argv


# I/O ---------------------------------------------------------------------------------------


def ensure_netns(plan: SitePlan) -> None:
    """Create the namespace of the site's switch (loopback testbeds; ``--wan`` has its own)."""
    if plan.exec_prefix or Path("/run/netns", plan.ovs_netns).exists():
        return
    lo_up = ["ip", "netns", "exec", plan.ovs_netns, "ip", "link", "set", "lo", "up"]
    for argv in (["ip", "netns", "add", plan.ovs_netns], lo_up):
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise TestbedError(f"{plan.name}: {' '.join(argv)}: {done.stderr.strip()}")


def remove_netns(plan: SitePlan) -> None:
    """Delete the switch's own namespace (nothing to do under ``--wan``)."""
    if not plan.exec_prefix and Path("/run/netns", plan.ovs_netns).exists():
        subprocess.run(["ip", "netns", "delete", plan.ovs_netns], capture_output=True, check=False)


def wait_sockets(plan: SitePlan, names: tuple[str, ...], timeout: float = 30.0) -> None:
    """Wait until the databases listen on their unix sockets."""
    deadline = time.monotonic() + timeout
    paths = [run_dir(plan) / f"{name}.sock" for name in names]
    while not all(path.exists() for path in paths):
        if time.monotonic() > deadline:
            absent = ", ".join(p.name for p in paths if not p.exists())
            raise TestbedError(f"{plan.name}: OVN databases not listening ({absent})")
        time.sleep(0.05)


def chassis_registered(plan: SitePlan) -> bool:
    """True once the site's chassis is in its southbound database."""
    argv = ["ovn-sbctl", f"--db={socket(plan, 'ovnsb_db')}", "--timeout=5", "--bare",
            "--columns=hostname", "list", "Chassis"]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return plan.compute_host in done.stdout.split()


__all__ = [
    "BRIDGE",
    "chassis_commands",
    "chassis_registered",
    "create_commands",
    "db_dir",
    "ensure_netns",
    "environment",
    "launch_argv",
    "missing",
    "plug_command",
    "remove_netns",
    "run_dir",
    "socket",
    "wait_sockets",
]
