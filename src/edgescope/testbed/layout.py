"""Where each site of the testbed lives: its ports, its folders, its URLs. Pure, no I/O.

A :class:`SitePlan` is computed from the site's name and index, so ``up``, ``status`` and
``down`` always agree on ports and paths. Sites never collide: site ``i`` (1-based) owns the
ports ``port_base + 100*i + 0..99``. Neighbours: ``configs.py`` renders the service config
files from a plan, ``site.py`` runs the processes, ``deployment.py`` ties sites together.

    >>> plan = SitePlan.make("Paris", 1, Path("/tmp/state"))
    >>> plan.port("keystone"), plan.proxy_url
    (20100, 'http://127.0.0.1:20190')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edgescope.errors import EdgescopeError

CatalogMode = Literal["haproxy", "proxy", "direct"]
"""Where each site's Keystone catalog points: ``haproxy`` (the default, as Kolla-Ansible runs
a site: the site's HAProxy, which sends scoped calls to the proxy and the others straight to
the service), ``proxy`` (the plain mode: the proxy, by path prefix) or ``direct`` (the
services themselves, no edgescope)."""
CATALOG_MODES: tuple[CatalogMode, ...] = ("haproxy", "proxy", "direct")
DEFAULT_CATALOG: CatalogMode = "haproxy"

PORT_BASE = 20000
"""Site ``i`` uses ports ``PORT_BASE + 100*i`` onwards (Paris=1: 20100..20199)."""

PORT_OFFSETS: dict[str, int] = {
    "keystone": 0,
    "glance": 1,
    "placement": 2,
    "nova-api": 3,
    "neutron": 6,
    "cinder-api": 7,
    "haproxy": 10,
    "ceph-mon": 20,
    "proxy": 90,
    "proxy-peer": 91,
}
"""Offset of each HTTP listener inside a site's block of 100 ports. ``haproxy`` is its first
frontend (keystone's); see :data:`HAPROXY_SHIFT` and :data:`PROXY_LISTENER_SHIFT`."""

HAPROXY_SHIFT = 10
"""Under ``--catalog haproxy``, the site's HAProxy serves each API at the service's port + 10
(keystone 20110 for Paris), where the catalog points, as a Kolla VIP serves it."""
PROXY_LISTENER_SHIFT = 80
"""...and the proxy has a listener per service at the service's port + 80 (keystone 20180),
where HAProxy sends the service's scoped calls: the service keeps the client's URL."""

HTTP_SERVICES = ("keystone", "glance", "placement", "neutron", "nova-api", "cinder-api")
"""The WSGI services, served by uWSGI, in start order."""

DAEMONS = ("nova-conductor", "nova-scheduler", "nova-compute", "cinder-scheduler", "cinder-volume")
"""The oslo.service daemons (no HTTP listener)."""

OVN_DAEMONS = ("ovs-db", "ovn-nb-db", "ovn-sb-db", "ovs-vswitchd", "ovn-northd", "ovn-controller")
"""A site's Open vSwitch (userspace datapath) and its own OVN deployment (``ovn.py``)."""

CEPH_DAEMONS = ("ceph-mon", "ceph-osd")
"""A site's one-OSD Ceph cluster, cinder's RBD backend (``ceph.py``)."""

SERVICES = (*OVN_DAEMONS, *CEPH_DAEMONS, *HTTP_SERVICES, *DAEMONS, "proxy", "haproxy")
"""Every per-site service name ``testbed logs SITE SERVICE`` and ``stop_service`` accept."""

SQLITE_PLUGIN = "edgescope_immediate"
"""The ``sqlalchemy.plugins`` entry point of :mod:`edgescope.testbed.sqlite_immediate`."""

SERVICE_TYPES: dict[str, tuple[str, str]] = {
    "keystone": ("identity", "/identity"),
    "glance": ("image", "/image"),
    "placement": ("placement", "/placement"),
    "nova-api": ("compute", "/compute"),
    "neutron": ("network", "/network"),
    "cinder-api": ("block-storage", "/volume"),
}
"""service -> (canonical service type, path prefix on the site's proxy)."""

# The version suffix each catalog URL carries (as devstack registers them).
_CATALOG_SUFFIX = {"identity": "/v3", "compute": "/v2.1", "block-storage": "/v3"}

_SITE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")


class TestbedError(EdgescopeError):
    """The testbed cannot do what was asked (bad site name, service failed to start, ...)."""

    __test__ = False  # not a pytest test class, despite the name


class TestbedUsageError(TestbedError):
    """The request itself is wrong (unknown site or service, no testbed there): exit code 2."""

    __test__ = False


def check_site_name(name: str) -> str:
    """Return ``name`` if it is a usable site name (letters, digits, ``-``, ``_``)."""
    if not _SITE_NAME.match(name):
        raise TestbedUsageError(
            f"invalid site name {name!r}: use a letter then letters, digits, '-' or '_' (max 32)"
        )
    return name


def check_service(name: str) -> str:
    """Return ``name`` if it is one of a site's services."""
    if name not in SERVICES:
        raise TestbedUsageError(f"unknown service {name!r}; choose from {', '.join(SERVICES)}")
    return name


def parse_sites(text: str) -> list[str]:
    """Parse ``"Paris,Corte,Marseille"`` into distinct, valid site names."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise TestbedUsageError("no site given: use e.g. --sites Paris,Corte,Marseille")
    lowered = [n.lower() for n in names]
    if len(set(lowered)) != len(lowered):
        raise TestbedUsageError(f"site names must be distinct (case-insensitively): {text!r}")
    return [check_site_name(n) for n in names]


@dataclass(frozen=True)
class SitePlan:
    """Everything fixed about one site: identity, addresses, folders."""

    name: str
    index: int
    """1-based position in the deployment; selects the block of ports."""
    root: Path
    """The site's state folder: ``<state-dir>/sites/<name>``."""
    bind_host: str = "127.0.0.1"
    """Address every service of this site listens on (a netns address under --wan)."""
    port_base: int = PORT_BASE
    exec_prefix: tuple[str, ...] = field(default=())
    """Prepended to every command of this site, e.g. ``("ip", "netns", "exec", "es-paris")``."""
    catalog: CatalogMode = DEFAULT_CATALOG
    """Where the Keystone catalog points (:data:`CatalogMode`)."""

    @classmethod
    def make(
        cls,
        name: str,
        index: int,
        state_dir: Path,
        *,
        bind_host: str = "127.0.0.1",
        port_base: int = PORT_BASE,
        exec_prefix: tuple[str, ...] = (),
        catalog: CatalogMode = DEFAULT_CATALOG,
    ) -> SitePlan:
        """Plan site ``name`` at position ``index`` (1-based) under ``state_dir``."""
        if index < 1 or index > 50:
            raise TestbedError(f"site index {index} out of range 1..50")
        return cls(
            check_site_name(name),
            index,
            state_dir.resolve() / "sites" / name,
            bind_host,
            port_base,
            exec_prefix,
            catalog,
        )

    # Ports and URLs -------------------------------------------------------------------------
    def port(self, service: str) -> int:
        """The TCP port of an HTTP service (or of the proxy) of this site."""
        try:
            return self.port_base + 100 * self.index + PORT_OFFSETS[service]
        except KeyError:
            raise TestbedUsageError(f"service {service!r} has no port") from None

    def direct_url(self, service: str) -> str:
        """The service's own listener, e.g. ``http://127.0.0.1:20101``."""
        return f"http://{self.bind_host}:{self.port(service)}"

    @property
    def proxy_url(self) -> str:
        """The site's edgescope proxy main listener."""
        return self.direct_url("proxy")

    @property
    def peer_url(self) -> str:
        """The site's proxy as its peers reach it: its peer listener, over TLS."""
        return f"https://{self.bind_host}:{self.port('proxy-peer')}"

    def public_base(self, service: str) -> str:
        """The base URL clients see for a service (no version suffix)."""
        if self.catalog == "direct":
            return self.direct_url(service)
        if self.catalog == "haproxy":
            return f"http://{self.bind_host}:{self.haproxy_port(service)}"
        return self.proxy_url + SERVICE_TYPES[service][1]

    def haproxy_port(self, service: str) -> int:
        """The site's HAProxy frontend of an HTTP service (``--catalog haproxy``)."""
        return self.port(service) + HAPROXY_SHIFT

    def proxy_listener_port(self, service: str) -> int:
        """The proxy's own listener for an HTTP service (``--catalog haproxy``)."""
        return self.port(service) + PROXY_LISTENER_SHIFT

    def runs(self, service: str) -> bool:
        """Whether this site runs ``service`` in its catalog mode (no proxy under ``direct``,
        HAProxy only under ``haproxy``)."""
        if service == "proxy":
            return self.catalog != "direct"
        if service == "haproxy":
            return self.catalog == "haproxy"
        return True

    def catalog_url(self, service: str) -> str:
        """The URL registered in Keystone's catalog for ``service``."""
        service_type = SERVICE_TYPES[service][0]
        return self.public_base(service) + _CATALOG_SUFFIX.get(service_type, "")

    @property
    def auth_url(self) -> str:
        """Keystone v3 as clients and services of this site reach it."""
        return self.catalog_url("keystone")

    @property
    def keystone_direct_v3(self) -> str:
        """Keystone v3 at its own port (used by the proxy's ``[identity]`` section)."""
        return self.direct_url("keystone") + "/v3"

    # Folders --------------------------------------------------------------------------------
    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "log"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log_path(self, service: str) -> Path:
        """The log file of a service (stdout and stderr of its process)."""
        return self.logs / f"{service}.log"

    def pid_path(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def sqlite_url(self, db: str) -> str:
        """SQLite URL with a 30 s busy timeout, and transactions that take the write lock up
        front (``sqlite_immediate``), so that the timeout applies: without both, parallel
        writers hit 'database is locked'."""
        return f"sqlite:///{self.data / db}.db?timeout=30&plugin={SQLITE_PLUGIN}"

    @property
    def compute_host(self) -> str:
        return f"{self.name}-compute1"

    @property
    def rabbit_vhost(self) -> str:
        return self.name.lower()

    @property
    def ovs_prefix(self) -> tuple[str, ...]:
        """Where the site's Open vSwitch runs: the site's namespace under ``--wan``, else a
        namespace of its own (two userspace datapaths cannot share one: both want the
        ``ovs-netdev`` tap), named after the site's port block so two testbeds never meet."""
        if self.exec_prefix:
            return self.exec_prefix
        return ("ip", "netns", "exec", self.ovs_netns)

    @property
    def ovs_netns(self) -> str:
        return f"es-ovs-{self.port_base + 100 * self.index}"

    @property
    def volume_host(self) -> str:
        return f"{self.name}-volume1"
