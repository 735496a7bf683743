"""Network namespaces of the WAN: one bridge namespace, one namespace per site.

    <prefix>-wan      holds bridge ``br0`` and one port ``p-<site>`` per site (rules, delayer)
    <prefix>-<site>   holds ``lo`` and ``wan0`` (the site's address), nothing else:
                      no default route, no NAT, IPv6 disabled

Nothing is created in the root namespace: each veth is created with both ends directly
inside their target namespaces. Built with a few ``ip -batch`` calls (one process per
namespace, not per command), so bringing up 3 sites takes tens of milliseconds.

    names = WanNames("es")
    create(topology, names)          # idempotent: removes leftovers of the same names first
    names.site("Paris")              # 'es-paris'
    destroy(names, topology.names)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edgescope.testbed.wan._commands import WanError, run
from edgescope.testbed.wan.topology import Site, Topology

NETNS_DIR = Path("/run/netns")
BRIDGE = "br0"
SITE_IFACE = "wan0"
_NO_IPV6 = ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")


@dataclass(frozen=True)
class WanNames:
    """Namespace and interface names derived from one prefix (so test WANs never collide)."""

    prefix: str = "es"

    @property
    def wan(self) -> str:
        return f"{self.prefix}-wan"

    def site(self, site: str) -> str:
        return f"{self.prefix}-{site.lower()}"

    @staticmethod
    def port(site: str) -> str:
        """The bridge port of a site, inside the wan namespace (at most 14 characters)."""
        return f"p-{site.lower()}"


def exists(namespace: str) -> bool:
    return (NETNS_DIR / namespace).exists()


def create(topology: Topology, names: WanNames) -> None:
    """Create the wan namespace, its bridge, and one connected namespace per site."""
    destroy(names, topology.names)
    try:
        _batch(None, [f"netns add {names.wan}", _no_ipv6(names.wan)])
        _batch(
            names.wan,
            ["link set lo up", f"link add {BRIDGE} type bridge stp_state 0",
             f"link set {BRIDGE} up"],
        )  # fmt: skip
        _plug(topology, names, list(topology.sites))
    except WanError:
        destroy(names, topology.names)
        raise


def add_sites(topology: Topology, names: WanNames, sites: Iterable[str]) -> None:
    """Create the namespaces of ``sites`` (in ``topology``) and plug them into the bridge of
    a running WAN: a site joining the edge."""
    new = [topology.site(name) for name in sites]
    try:
        _plug(topology, names, new)
    except WanError:
        remove_sites(names, [s.name for s in new])
        raise


def _plug(topology: Topology, names: WanNames, sites: list[Site]) -> None:
    """One namespace per site, its veth's other end a port of the bridge."""
    root = [f"netns add {names.site(s.name)}" for s in sites]
    root += [_no_ipv6(names.site(s.name)) for s in sites]
    root += [
        f"link add {SITE_IFACE} netns {names.site(s.name)} type veth "
        f"peer name {names.port(s.name)} netns {names.wan}"
        for s in sites
    ]
    _batch(None, root)
    ports = [f"link set {names.port(s.name)} {what}" for s in sites for what in
             (f"master {BRIDGE}", "up")]  # fmt: skip
    _batch(names.wan, ports)
    for site in sites:
        _batch(
            names.site(site.name),
            [
                "link set lo up",
                f"addr add {site.address}/{topology.prefixlen} dev {SITE_IFACE}",
                f"link set {SITE_IFACE} up",
            ],
        )


def _no_ipv6(namespace: str) -> str:
    return f"netns exec {namespace} sysctl -q -w {' '.join(_NO_IPV6)}"


def remove_sites(names: WanNames, sites: Iterable[str]) -> None:
    """Delete the namespaces of ``sites`` (their bridge ports go with them)."""
    present = [names.site(s) for s in sites if exists(names.site(s))]
    if present:
        run(
            ["ip", "-force", "-batch", "-"],
            input="".join(f"netns del {ns}\n" for ns in present),
            check=False,
        )


def destroy(names: WanNames, sites: Iterable[str]) -> None:
    """Delete the wan namespace and the site namespaces; missing ones are fine (idempotent)."""
    present = [ns for ns in (names.wan, *(names.site(s) for s in sites)) if exists(ns)]
    if present:
        run(
            ["ip", "-force", "-batch", "-"],
            input="".join(f"netns del {ns}\n" for ns in present),
            check=False,
        )
    left = [ns for ns in present if exists(ns)]
    if left:
        raise WanError(f"could not delete namespaces: {', '.join(left)}")


def set_sysctl(namespace: str, key: str, value: str) -> None:
    """Set a sysctl in ``namespace`` and read it back (Debian's sysctl may exit 0 on failure)."""
    run(["ip", "netns", "exec", namespace, "sysctl", "-q", "-w", f"{key}={value}"], check=False)
    got = run(["ip", "netns", "exec", namespace, "sysctl", "-n", key], check=False).stdout.strip()
    if got != value:
        raise WanError(f"could not set {key}={value} in namespace {namespace} (it reads {got!r})")


def _batch(namespace: str | None, commands: list[str]) -> None:
    """Run ``ip`` commands in one process, inside ``namespace`` (or the root namespace)."""
    where = ["-n", namespace] if namespace else []
    run(["ip", *where, "-batch", "-"], input="".join(f"{c}\n" for c in commands))


CLONE_NEWNET = 0x40000000


def enter(namespace: str) -> None:
    """Move the calling thread into ``namespace``: sockets it makes from now on, and threads
    it starts, are there; sockets made before stay where they were (a listener bound first
    keeps serving the root namespace). setns(2) through ctypes: os.setns is Python 3.12+."""
    import ctypes
    import os

    path = NETNS_DIR / namespace
    if not path.exists():
        raise WanError(f"no network namespace {namespace!r} (is the WAN up?)")
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise WanError(f"cannot enter {namespace}: {os.strerror(errno)} (needs root)")
    finally:
        os.close(fd)
