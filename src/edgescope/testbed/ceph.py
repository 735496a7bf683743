"""A site's block storage backend: a one-OSD Ceph cluster (Debian's Ceph 16), cinder's RBD pool.

Two processes per site in the foreground: ``ceph-mon`` and ``ceph-osd`` (BlueStore on a
sparse file, no loop device; no mgr: cinder and ``rbd`` need none). Everything lives in
``data/ceph`` (keys, mon store, OSD) and ``etc/ceph/ceph.conf``; no ``/etc/ceph``, no
systemd. The monitor listens on the site's address at port offsets 20 (v2) and 21 (v1);
the daemons' messengers use offsets 22-39. Pure parts: :func:`ceph_conf` and the command
lines; ``backends.py`` runs them (creation ~15 s, a warm start ~5 s).

    >>> ceph_conf(plan, "6a9c...").splitlines()[1]
    'fsid = 6a9c...'
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from edgescope.testbed.layout import SitePlan, TestbedError

POOL = "volumes"
"""The RBD pool cinder's volumes go to."""
CLIENT = "cinder"
"""The cephx user cinder-volume connects as (``profile rbd`` on the pool)."""
OSD_SIZE = "10G"
"""Apparent size of the sparse file the OSD uses (about 0.3 GB is written at creation)."""
OSD_MEMORY_TARGET = 939_524_096
"""896 MiB (Ceph's default is 4 GiB); the OSD idles at ~60 MiB."""
_MESSENGER_PORTS = 18  # an OSD binds 8 (for mgr-less clusters 18 leaves room for a mgr)
_BINARIES = ("ceph-mon", "ceph-osd", "ceph-authtool", "monmaptool", "ceph", "rbd")


def missing() -> str | None:
    """Why this machine cannot run a site's Ceph, or None if it can."""
    absent = [b for b in _BINARIES if shutil.which(b) is None]
    if absent:
        return f"{', '.join(absent)} not installed (make system-deps: ceph-mon, ceph-osd, ...)"
    try:
        import rados  # type: ignore[import-not-found]  # noqa: F401
        import rbd  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "Debian's python3-rados/python3-rbd are not linked into this environment (make)"
    return None


def data_dir(plan: SitePlan) -> Path:
    return plan.data / "ceph"


def conf_path(plan: SitePlan) -> Path:
    return plan.etc / "ceph" / "ceph.conf"


def keyring(plan: SitePlan, name: str) -> Path:
    """``data/ceph/ceph.<name>.keyring``: where every daemon and client finds its key."""
    return data_dir(plan) / f"ceph.{name}.keyring"


def mon_addresses(plan: SitePlan) -> str:
    port = plan.port("ceph-mon")
    return f"[v2:{plan.bind_host}:{port},v1:{plan.bind_host}:{port + 1}]"


def ceph_conf(plan: SitePlan, fsid: str) -> str:
    """The cluster's one config file: a single replica, every path under the site."""
    data, first = data_dir(plan), plan.port("ceph-mon") + 2
    return "\n".join([
        "[global]",
        f"fsid = {fsid}",
        "mon initial members = a",
        f"mon host = {mon_addresses(plan)}",
        f"public network = {plan.bind_host}/32",
        f"public addr = {plan.bind_host}",
        f"ms bind port min = {first}",
        f"ms bind port max = {first + _MESSENGER_PORTS - 1}",
        "auth cluster required = cephx",
        "auth service required = cephx",
        "auth client required = cephx",
        "osd pool default size = 1",
        "osd pool default min size = 1",
        "osd pool default pg num = 8",
        "osd pool default pgp num = 8",
        "mon allow pool size one = true",
        "mon warn on pool no redundancy = false",
        "osd crush chooseleaf type = 0",
        f"run dir = {plan.run / 'ceph'}",
        f"admin socket = {plan.run / 'ceph'}/$cluster-$name.asok",
        "log to file = false",  # the daemons run in the foreground: stderr is their log
        "log to stderr = true",
        "err to stderr = true",
        f"keyring = {data}/$cluster.$name.keyring",
        "[mon]",
        f"mon data = {data}/mon-$id",
        "mon allow pool delete = true",
        "mon data avail warn = 5",
        "auth allow insecure global id reclaim = false",
        "[osd]",
        f"osd data = {data}/osd-$id",
        "osd objectstore = bluestore",
        f"osd memory target = {OSD_MEMORY_TARGET}",
        "",
    ])  # fmt: skip


def launch_argv(plan: SitePlan, service: str) -> list[str]:
    daemon = {"ceph-mon": ["ceph-mon", "-i", "a"], "ceph-osd": ["ceph-osd", "-i", "0"]}
    if service not in daemon:
        raise TestbedError(f"not a Ceph service: {service!r}")
    return [*plan.exec_prefix, *daemon[service], "-f", "-c", str(conf_path(plan))]


def cli(plan: SitePlan, *args: str) -> list[str]:
    """A ``ceph`` command as the cluster's admin, from the site's namespace."""
    return [*plan.exec_prefix, "ceph", "-c", str(conf_path(plan)), "--connect-timeout", "20",
            *args]  # fmt: skip


def rbd_cli(plan: SitePlan, *args: str) -> list[str]:
    """An ``rbd`` command as the cluster's admin, from the site's namespace."""
    return [*plan.exec_prefix, "rbd", "-c", str(conf_path(plan)), *args]


def mon_mkfs_commands(plan: SitePlan, fsid: str) -> list[list[str]]:
    """Keys (mon., client.admin), the monitor map and the monitor's store."""
    mon, admin, monmap = keyring(plan, "mon.a"), keyring(plan, "client.admin"), data_dir(plan)
    return [
        ["ceph-authtool", "--create-keyring", str(mon), "--gen-key", "-n", "mon.",
         "--cap", "mon", "allow *"],
        ["ceph-authtool", "--create-keyring", str(admin), "--gen-key", "-n", "client.admin",
         "--cap", "mon", "allow *", "--cap", "osd", "allow *", "--cap", "mgr", "allow *"],
        ["ceph-authtool", str(mon), "--import-keyring", str(admin)],
        ["monmaptool", "--create", "--addv", "a", mon_addresses(plan), "--fsid", fsid,
         str(monmap / "monmap")],
        ["ceph-mon", "-c", str(conf_path(plan)), "--mkfs", "-i", "a", "--monmap",
         str(monmap / "monmap"), "--keyring", str(mon)],
    ]  # fmt: skip


def osd_prepare(plan: SitePlan) -> tuple[Path, Path]:
    """Create the OSD's folder, its sparse block file and its key; returns (folder, key)."""
    folder = data_dir(plan) / "osd-0"
    folder.mkdir(parents=True, exist_ok=True)
    block = data_dir(plan) / "osd-0.img"
    with block.open("ab") as out:
        out.truncate(_size_bytes(OSD_SIZE))
    link = folder / "block"
    if not link.is_symlink():
        link.symlink_to(block)
    return folder, keyring(plan, "osd.0")


def osd_mkfs_commands(plan: SitePlan, osd_uuid: str, secret_file: Path) -> list[list[str]]:
    """Register OSD 0 with the monitor (its key given), then make its BlueStore."""
    return [
        cli(plan, "osd", "new", osd_uuid, "0", "-i", str(secret_file)),
        [*plan.exec_prefix, "ceph-osd", "-c", str(conf_path(plan)), "-i", "0", "--mkfs",
         "--osd-uuid", osd_uuid],
    ]  # fmt: skip


def pool_commands(plan: SitePlan) -> list[list[str]]:
    """cinder's pool and cephx user (its key written next to the others)."""
    return [
        cli(plan, "osd", "pool", "create", POOL, "8", "8"),
        cli(plan, "osd", "pool", "application", "enable", POOL, "rbd"),
        rbd_cli(plan, "pool", "init", POOL),
        cli(plan, "auth", "get-or-create", f"client.{CLIENT}", "mon", "profile rbd",
            "osd", f"profile rbd pool={POOL}", "-o", str(keyring(plan, f"client.{CLIENT}"))),
    ]  # fmt: skip


def osd_up(plan: SitePlan) -> bool:
    """True once the monitor answers and counts the OSD up."""
    argv = cli(plan, "osd", "stat", "-f", "json")
    argv[argv.index("20")] = "5"  # a short connect timeout: this is polled
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=15, check=False)
        return done.returncode == 0 and int(json.loads(done.stdout)["num_up_osds"]) >= 1
    except (subprocess.TimeoutExpired, ValueError, KeyError):
        return False


def _size_bytes(text: str) -> int:
    units = {"G": 1 << 30, "M": 1 << 20}
    return int(text[:-1]) * units[text[-1]]


__all__ = [
    "CLIENT",
    "POOL",
    "ceph_conf",
    "cli",
    "conf_path",
    "data_dir",
    "keyring",
    "launch_argv",
    "missing",
    "mon_mkfs_commands",
    "osd_mkfs_commands",
    "osd_prepare",
    "osd_up",
    "pool_commands",
    "rbd_cli",
]
