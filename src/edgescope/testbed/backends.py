"""The parts of a site under neutron and cinder: its OVN (``ovn.py``) and its Ceph (``ceph.py``).

:class:`Backends` starts them in order (databases before the switch, the monitor before
the OSD), creates them on first use, and writes cinder's and Ceph's files. ``site.py``
hands it the site's one-shot runner and process launcher, and calls it before starting
the OpenStack services and after stopping them. A machine that cannot run them (no root
for OVN's taps, no Ceph installed) runs the site without: :func:`features` says which.

    >>> backends = Backends(plan, run=site._run, launch=site._launch, features=features())
    >>> backends.start(report=print)      # OVN ready, Ceph's monitor answering
    >>> backends.wait_ready()             # the OSD is up: volumes can be created
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from edgescope.testbed import ceph, cinder, ovn
from edgescope.testbed.configs import Credentials, render_ini
from edgescope.testbed.layout import (
    CEPH_DAEMONS,
    OVN_DAEMONS,
    SitePlan,
    TestbedError,
    TestbedUsageError,
)
from edgescope.testbed.process import running_pid, stop_process

Run = Callable[[list[str], str], str]
Launch = Callable[[str], None]
Report = Callable[[str], None]

CINDER_SERVICES = ("cinder-api", "cinder-scheduler", "cinder-volume")


@dataclass(frozen=True)
class Features:
    """What this machine lets a site run besides the base services."""

    ovn: bool
    """neutron on ML2/OVN (else ML2 without a mechanism driver: ``--nic none`` only)."""
    storage: bool
    """cinder on Ceph (else no block storage at all)."""

    def without(self) -> tuple[str, ...]:
        """The services a site with these features does not run."""
        absent: tuple[str, ...] = ()
        if not self.ovn:
            absent += OVN_DAEMONS
        if not self.storage:
            absent += (*CEPH_DAEMONS, *CINDER_SERVICES)
        return absent


def features() -> Features:
    """OVN needs root and Debian's OVS/OVN; storage needs Ceph and cinder installed."""
    import importlib.util

    has_cinder = importlib.util.find_spec("cinder") is not None
    return Features(ovn=ovn.missing() is None, storage=has_cinder and ceph.missing() is None)


def why_not() -> list[str]:
    """One line per missing feature, saying why (for ``testbed up``)."""
    reasons = []
    if (reason := ovn.missing()) is not None:
        reasons.append(f"no tenant networks (neutron without OVN): {reason}")
    if (reason := ceph.missing()) is not None:
        reasons.append(f"no block storage (cinder needs Ceph): {reason}")
    return reasons


def _quiet(_: str) -> None:
    return None


@dataclass
class Backends:
    """A site's OVN and Ceph, driven through the site's own runner and launcher."""

    plan: SitePlan
    run: Run
    launch: Launch
    features: Features

    # Files --------------------------------------------------------------------------------
    def files(self, creds: Credentials, transport_url: str) -> dict[str, str]:
        """cinder's and Ceph's config files, by path relative to the site folder."""
        if not self.features.storage:
            return {}
        paste = (cinder.SHIPPED / "api-paste.ini").read_text()
        conf = cinder.cinder_conf(self.plan, creds, transport_url)
        return {
            "etc/cinder/cinder.conf": render_ini(conf),
            "etc/cinder/api-paste.ini": paste,
            "etc/ceph/ceph.conf": ceph.ceph_conf(self.plan, self._fsid()),
        }

    def _fsid(self) -> str:
        path = ceph.data_dir(self.plan) / "fsid"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(str(uuid.uuid4()))
        return path.read_text().strip()

    # Start ----------------------------------------------------------------------------------
    def start(self, report: Report = _quiet) -> None:
        """Bring up OVN (about a second) and Ceph (created on first use, ~15 s)."""
        if self.features.ovn:
            self.start_networks(report)
        if self.features.storage:
            self.start_storage(report)

    def start_networks(self, report: Report = _quiet) -> None:
        plan = self.plan
        if all(running_pid(plan.pid_path(s)) is not None for s in OVN_DAEMONS):
            return
        report("starting OVN")
        ovn.ensure_netns(plan)
        ovn.run_dir(plan).mkdir(parents=True, exist_ok=True)
        ovn.db_dir(plan).mkdir(parents=True, exist_ok=True)
        for argv in ovn.create_commands(plan):
            self.run(argv, "ovsdb-tool create")
        for service in ("ovs-db", "ovn-nb-db", "ovn-sb-db"):
            self.launch(service)
        ovn.wait_sockets(plan, ("db", "ovnnb_db", "ovnsb_db"))
        for argv in ovn.chassis_commands(plan):
            self.run(argv, "OVN chassis and databases")
        for service in ("ovs-vswitchd", "ovn-northd", "ovn-controller"):
            self.launch(service)
        deadline = time.monotonic() + 60
        while not ovn.chassis_registered(plan):
            for service in OVN_DAEMONS:
                if running_pid(plan.pid_path(service)) is None:
                    raise TestbedError(f"{plan.name} {service} exited (see its log)")
            if time.monotonic() > deadline:
                raise TestbedError(f"{plan.name}: OVN chassis not registered within 60 s")
            time.sleep(0.1)

    def start_storage(self, report: Report = _quiet) -> None:
        if (ceph.data_dir(self.plan) / "created").exists():
            report("starting Ceph")
            for service in CEPH_DAEMONS:
                self.launch(service)
        else:
            report("creating Ceph (one monitor, one OSD)")
            self._create_storage()

    def _create_storage(self) -> None:
        """mkfs of the monitor and the OSD, then cinder's pool and key (~15 s)."""
        plan, data = self.plan, ceph.data_dir(self.plan)
        for service in CEPH_DAEMONS:  # what a create that failed half-way left running
            stop_process(plan.pid_path(service))
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        (plan.run / "ceph").mkdir(parents=True, exist_ok=True)
        fsid = self._fsid()
        ceph.conf_path(plan).parent.mkdir(parents=True, exist_ok=True)
        ceph.conf_path(plan).write_text(ceph.ceph_conf(plan, fsid))
        for argv in ceph.mon_mkfs_commands(plan, fsid):
            self.run(argv, "ceph monitor mkfs")
        self.launch("ceph-mon")
        _, key = ceph.osd_prepare(plan)
        self.run(["ceph-authtool", "--create-keyring", str(key), "--gen-key", "-n", "osd.0"],
                 "ceph osd key")  # fmt: skip
        secret = self.run(["ceph-authtool", "-p", "-n", "osd.0", str(key)], "ceph osd secret")
        secret_file = data / "osd-0.json"
        secret_file.write_text(json.dumps({"cephx_secret": secret.strip()}))
        for argv in ceph.osd_mkfs_commands(plan, str(uuid.uuid4()), secret_file):
            self.run(argv, "ceph osd mkfs")
        secret_file.unlink()
        self.launch("ceph-osd")
        self.wait_ready()
        for argv in ceph.pool_commands(plan):
            self.run(argv, "ceph pool for cinder")
        (data / "created").touch()

    def init_databases(self) -> None:
        """cinder's database (its own schema migrations work on SQLite)."""
        if self.features.storage:
            (self.plan.data / "cinder" / "conversion").mkdir(parents=True, exist_ok=True)
            self.run(cinder.db_sync(self.plan), "cinder db sync")

    def wait_ready(self, timeout: float = 180.0) -> None:
        """Wait until the OSD is up (volumes can be created from then on)."""
        if not self.features.storage:
            return
        deadline = time.monotonic() + timeout
        while not ceph.osd_up(self.plan):
            for service in CEPH_DAEMONS:
                if running_pid(self.plan.pid_path(service)) is None:
                    raise TestbedError(f"{self.plan.name} {service} exited (see its log)")
            if time.monotonic() > deadline:
                raise TestbedError(f"{self.plan.name}: Ceph's OSD not up within {timeout:.0f} s")
            time.sleep(0.5)

    # Stop ------------------------------------------------------------------------------------
    def after_stop(self) -> None:
        """Once every process is stopped: remove the switch's own namespace."""
        if self.features.ovn:
            ovn.remove_netns(self.plan)

    def plug(self, port_id: str, mac: str, device_id: str = "") -> None:
        """Plug a neutron port into the site's switch, as os-vif would (see ovn.plug_command)."""
        if not self.features.ovn:
            raise TestbedError(f"{self.plan.name} runs without OVN: no port can be plugged")
        try:
            uuid.UUID(port_id)
        except ValueError:
            raise TestbedUsageError(f"{port_id!r} is not a port id (a UUID)") from None
        self.run(ovn.plug_command(self.plan, port_id, mac, device_id), "plug port")


__all__ = ["CINDER_SERVICES", "Backends", "Features", "features", "why_not"]
