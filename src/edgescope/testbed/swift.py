"""Swift from Debian's packages, one small Swift per site on loopback, each behind its proxy.

Per site: a memcached (tempauth's tokens, Swift's account and container info), Swift's
proxy-server and its account, container and object servers (Debian's ``/usr/bin/swift-*``
binaries, unmodified, in the foreground with ``workers = 0``), and the site's ``edgescope
proxy run``. The rings (built with ``swift-ring-builder``: one device ``d1`` per ring, one
replica) hold the addresses of the *proxy's* listeners for ``swift-account``,
``swift-container`` and ``swift-object``, not the servers': every call Swift's proxy-server
makes to its backends goes through the site's proxy, which routes it by scope. Every site
uses the same ring layout (part power, device name) and Debian's ``/etc/swift/swift.conf``
(its hash prefix and suffix), so a partition computed at Paris names the same folder at Corte.

Neighbours: :mod:`process` starts, stops and waits; :mod:`edgescope.proxy.keys` makes the
sites' keys. Nothing here is imported by the proxy.

    bed = SwiftTestbed.create(Path("state-swift"), ["Paris", "Corte"], port_base=16000)
    bed.up()
    bed.sites["Paris"].auth_url     # http://127.0.0.1:16006/auth/v1.0, via Paris's proxy
    bed.down()

On the emulated WAN (:mod:`edgescope.testbed.wan`), ``create(..., wan=wan)`` runs each site's
processes in its network namespace: they still talk on the namespace's own loopback, and
only the proxies reach each other, at the sites' WAN addresses (so delays and cuts apply).
"""

from __future__ import annotations

import configparser
import getpass
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgescope.proxy import keys
from edgescope.proxy.config_file import COMMENT, render_config
from edgescope.testbed import swift_keystone
from edgescope.testbed.layout import TestbedError
from edgescope.testbed.process import (
    rss_bytes,
    running_pid,
    start_process,
    stop_process,
    wait_http,
)

if TYPE_CHECKING:
    from edgescope.testbed.wan import Wan

SERVERS = ("account", "container", "object")
"""Swift's backend servers, each also the name of its ring."""
SERVICE_TYPES = {server: f"swift-{server}" for server in SERVERS}
"""The service type each backend server has in scopes (``{swift-object: Corte}``)."""
API_SERVICE = "object-store"
PART_POWER = 8
DEVICE = "d1"
USER, KEY = "test:tester", "testing"
ACCOUNT = "AUTH_test"
SWIFT_CONF = Path("/etc/swift/swift.conf")
"""Debian's, unmodified: every site's Swift reads it (its hash prefix and suffix)."""
_OFFSETS = {
    "memcached": 0,
    "proxy-server": 1,
    "account": 2,
    "container": 3,
    "object": 4,
    "edgescope": 5,
    API_SERVICE: 6,
    "swift-account": 7,
    "swift-container": 8,
    "swift-object": 9,
    "keystone": 10,
}
STRIDE = 20
"""Ports per site: site ``i`` (0-based) owns ``port_base + STRIDE*i`` onwards."""
PROCESSES = ("memcached", "proxy-server", *SERVERS, "edgescope")
"""Every process of a site without Keystone, in start order."""


@dataclass(frozen=True, slots=True)
class SwiftSite:
    """One site's files and ports."""

    name: str
    root: Path
    port_base: int
    address: str = "127.0.0.1"
    """Where the other sites reach this site's proxy (its WAN address on the WAN)."""
    exec_prefix: tuple[str, ...] = ()
    """Prefix of every command of the site (``ip netns exec <ns>`` on the WAN)."""
    keystone: bool = False
    """Whether the site runs its own Keystone, which its proxy-server trusts besides
    tempauth, with ``object-store`` in its catalog (:mod:`swift_keystone`)."""

    @property
    def processes(self) -> tuple[str, ...]:
        """The site's processes, in start order."""
        return ("keystone", *PROCESSES) if self.keystone else PROCESSES

    @property
    def keystone_url(self) -> str:
        """The site's Keystone v3, on the site's own loopback."""
        return f"{self.url('keystone')}/v3"

    def port(self, what: str) -> int:
        return self.port_base + _OFFSETS[what]

    def url(self, what: str) -> str:
        return f"http://127.0.0.1:{self.port(what)}"

    @property
    def etc(self) -> Path:
        return self.root / "etc"

    @property
    def devices(self) -> Path:
        """Swift's ``devices`` folder: a plain folder (``mount_check = false``)."""
        return self.root / "srv" / "node"

    @property
    def auth_url(self) -> str:
        """tempauth's v1 auth, reached through the proxy's ``object-store`` listener."""
        return f"{self.url(API_SERVICE)}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.url(API_SERVICE)}/v1/{ACCOUNT}"

    def pidfile(self, process: str) -> Path:
        return self.root / "run" / f"{process}.pid"

    def log(self, process: str) -> Path:
        return self.root / "log" / f"{process}.log"

    def data_files(self, container: str, name: str, account: str = ACCOUNT) -> list[Path]:
        """The ``.data`` files of one object of ``account`` under this site's devices (its
        folder is named by the object's hash, as Swift's ``hash_path``)."""
        digest = object_hash(container, name, account=account)
        return sorted(self.devices.glob(f"*/objects/*/*/{digest}/*.data"))


class SwiftTestbed:
    """Sites of Swift, their proxies and their state folder."""

    def __init__(self, state: Path, sites: Sequence[SwiftSite]) -> None:
        self.state = state
        self.sites = {site.name: site for site in sites}

    @classmethod
    def create(
        cls,
        state: Path,
        names: Sequence[str],
        *,
        port_base: int,
        wan: Wan | None = None,
        keystone: bool = False,
    ) -> SwiftTestbed:
        """Plan the sites and write every config, ring and key (kept if already there);
        with ``wan``, each site lives in its namespace of that WAN; with ``keystone``, each
        site runs its own Keystone too (:mod:`swift_keystone`)."""
        sites = [
            SwiftSite(
                name,
                state / name,
                port_base + STRIDE * i,
                wan.site_address(name) if wan else "127.0.0.1",
                tuple(wan.exec_prefix(name)) if wan else (),
                keystone,
            )
            for i, name in enumerate(names)
        ]
        bed = cls(state, sites)
        bed._write()
        return bed

    # -- files -------------------------------------------------------------------------------

    def _write(self) -> None:
        missing = missing_binaries()
        if missing:
            raise TestbedError(
                f"not installed: {', '.join(missing)} (Debian's swift packages and memcached: "
                "make system-deps as root)"
            )
        public = {}
        for site in self.sites.values():
            site.etc.mkdir(parents=True, exist_ok=True)
            (site.devices / DEVICE).mkdir(parents=True, exist_ok=True)
            key_file = site.etc / "site.key"
            if not key_file.exists():
                key_file.write_bytes(keys.private_pem(keys.generate()))
                key_file.chmod(0o600)
            public[site.name] = keys.public_text(keys.load_private_file(key_file).public_key())
        for site in self.sites.values():
            if site.keystone:
                swift_keystone.write(site)
            (site.etc / "proxy-server.conf").write_text(proxy_server_conf(site))
            for server in SERVERS:
                (site.etc / f"{server}-server.conf").write_text(backend_conf(site, server))
            (site.etc / "site.toml").write_text(site_toml(site, self.peers_of(site), public))
        build_rings(self.sites.values())

    def peers_of(self, site: SwiftSite) -> list[SwiftSite]:
        return [other for other in self.sites.values() if other.name != site.name]

    # -- processes ---------------------------------------------------------------------------

    def up(self, names: Iterable[str] | None = None, *, timeout: float = 120.0) -> dict[str, float]:
        """Start the sites' processes (those not running) and wait until each answers.

        Returns the seconds each site took, from its first start to its last answer."""
        chosen = [self.sites[name] for name in (names or self.sites)]
        began = time.monotonic()
        swift_keystone.prepare_all([s for s in chosen if s.keystone])  # before it starts
        for site in chosen:
            for process in site.processes:
                self.start(site, process)
        took = {}
        for site in chosen:
            _wait_tcp(site, timeout)  # memcached
            for process in site.processes:
                if process == "memcached":
                    continue
                wait_http(
                    _health_url(site, process),
                    timeout=timeout,
                    pidfile=site.pidfile(process),
                    what=f"{site.name}'s {process} (log: {site.log(process)})",
                    exec_prefix=site.exec_prefix,
                )
            took[site.name] = time.monotonic() - began
        with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
            list(pool.map(swift_keystone.register, [s for s in chosen if s.keystone]))
        return took

    def start(self, site: SwiftSite, process: str) -> None:
        if running_pid(site.pidfile(process)) is not None:
            return
        if process == "keystone":
            launch = swift_keystone.launch(site)  # its argv has the namespace prefix
            argv, env = launch.argv, {**os.environ, **launch.env}
        else:
            argv, env = [*site.exec_prefix, *_argv(site, process)], None
        start_process(argv, log=site.log(process), pidfile=site.pidfile(process), env=env)

    def stop(self, site: str, processes: Iterable[str] | None = None) -> None:
        found = self.sites[site]
        for process in reversed(tuple(found.processes if processes is None else processes)):
            stop_process(found.pidfile(process))

    def down(self) -> None:
        for name in self.sites:
            self.stop(name)

    def healthy(self) -> bool:
        return all(
            running_pid(site.pidfile(p)) is not None
            for site in self.sites.values()
            for p in site.processes
        )

    def memory(self, site: str) -> dict[str, int]:
        """Resident bytes of each of the site's processes (0: not running)."""
        found = self.sites[site]
        return {
            process: rss_bytes(pid) if (pid := running_pid(found.pidfile(process))) else 0
            for process in found.processes
        }


def proxy_server_conf(site: SwiftSite) -> str:
    """Swift's proxy-server: tempauth (tokens in this site's memcached), rings in ``etc``;
    with Keystone, authtoken and keystoneauth before tempauth (:mod:`swift_keystone`)."""
    auth = "authtoken keystoneauth tempauth" if site.keystone else "tempauth"
    filters = {
        "catch_errors": "catch_errors",
        "gatekeeper": "gatekeeper",
        "healthcheck": "healthcheck",
        "proxy-logging": "proxy_logging",
        "cache": "memcache",
        "listing_formats": "listing_formats",
        "tempauth": "tempauth",
        "copy": "copy",
        "dlo": "dlo",
        "versioned_writes": "versioned_writes",
    }
    lines = [
        *_default_section(site, "proxy-server"),
        "",
        "[pipeline:main]",
        "pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats "
        f"{auth} copy dlo versioned_writes proxy-logging proxy-server",
        "",
        "[app:proxy-server]",
        "use = egg:swift#proxy",
        "account_autocreate = true",
        "allow_account_management = true",
    ]
    for name, egg in filters.items():
        lines += ["", f"[filter:{name}]", f"use = egg:swift#{egg}"]
        if name == "cache":
            lines.append(f"memcache_servers = 127.0.0.1:{site.port('memcached')}")
        if name == "tempauth":
            # the storage URL the client is given is the proxy's listener, not Swift's own
            lines.append(f"user_test_tester = {KEY} .admin {site.storage_url}")
    if site.keystone:
        lines += swift_keystone.proxy_filters(site)
    return "\n".join(lines) + "\n"


def backend_conf(site: SwiftSite, server: str) -> str:
    """An account, container or object server on this site's plain ``devices`` folder."""
    return "\n".join(
        [
            *_default_section(site, server),
            f"devices = {site.devices}",
            "mount_check = false",
            "",
            "[pipeline:main]",
            f"pipeline = {server}-server",
            "",
            f"[app:{server}-server]",
            f"use = egg:swift#{server}",
            "",
        ]
    )


def _default_section(site: SwiftSite, process: str) -> list[str]:
    return [
        "[DEFAULT]",
        "bind_ip = 127.0.0.1",
        f"bind_port = {site.port(process)}",
        "workers = 0",
        f"user = {getpass.getuser()}",
        f"swift_dir = {site.etc}",
        f"log_name = {process}-{site.name}",
    ]


def site_toml(site: SwiftSite, peers: Sequence[SwiftSite], public: dict[str, str]) -> str:
    """The site's proxy: a listener for Swift's API and one per backend service, and the
    carrier Swift forwards (its transaction id)."""
    backends = {API_SERVICE: "proxy-server", **{t: s for s, t in SERVICE_TYPES.items()}}
    services: list[dict[str, Any]] = []
    for service, process in backends.items():
        entry: dict[str, Any] = {
            "type": service,
            "port": site.port(service),
            "backend": site.url(process),
        }
        if service == API_SERVICE:  # tempauth checks tokens itself: no piggyback on them
            entry["plain_token"] = True
        services.append(entry)
    doc: dict[str, Any] = {
        "site": site.name,
        # on the WAN, also on the site's address: the peers' hops come in there
        "listen": f"{'0.0.0.0' if site.exec_prefix else '127.0.0.1'}:{site.port('edgescope')}",
        "private_key_file": "site.key",
        "services": services,
        "carriers": [
            {
                COMMENT: "Swift appends X-Trans-Id-Extra (32 characters) to the transaction id "
                "it sends on\nevery call to its backends: the scope's handle travels there.",
                "read": "X-Trans-Id",
                "write": "X-Trans-Id-Extra",
                "services": [API_SERVICE],
            }
        ],
    }
    if peers:
        doc["peers"] = [
            {
                "name": peer.name,
                "url": f"http://{peer.address}:{peer.port('edgescope')}",
                "public_key": public[peer.name],
                "connect_timeout": 2.0,
            }
            for peer in peers
        ]
    return render_config(doc)


_RING_SCRIPT = """
import json, sys
from swift.common.ring import RingBuilder
for builder, ring, port, part_power, device in json.loads(sys.argv[1]):
    b = RingBuilder(part_power, 1, 1)
    b.add_dev({"region": 1, "zone": 1, "ip": "127.0.0.1", "port": port, "device": device,
               "weight": 100})
    b.rebalance()
    b.save(builder)
    b.get_ring().save(ring)
"""


def build_rings(sites: Iterable[SwiftSite]) -> None:
    """One ring per server, one device: the proxy's listener for that server's service.

    What ``swift-ring-builder create/add/rebalance`` does, with the same code (Swift's
    ``RingBuilder``, run by Debian's python3), in one process for every ring: the CLI
    would start Python 27 times for three sites."""
    todo = [
        [
            str(site.etc / f"{server}.builder"),
            str(site.etc / f"{server}.ring.gz"),
            site.port(SERVICE_TYPES[server]),
            PART_POWER,
            DEVICE,
        ]
        for site in sites
        for server in SERVERS
        if not (site.etc / f"{server}.ring.gz").exists()
    ]
    if not todo:
        return
    done = subprocess.run(
        ["/usr/bin/python3", "-c", _RING_SCRIPT, json.dumps(todo)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise TestbedError(f"building Swift's rings failed: {done.stderr[-600:]}")


def _argv(site: SwiftSite, process: str) -> list[str]:
    if process == "memcached":
        port = str(site.port("memcached"))
        return ["memcached", "-l", "127.0.0.1", "-p", port, "-U", "0", "-m", "16", "-u", "root"]
    if process == "edgescope":
        edgescope = Path(sys.executable).parent / "edgescope"
        return [str(edgescope), "proxy", "run", "--config", str(site.etc / "site.toml")]
    conf = site.etc / f"{process}.conf" if process == "proxy-server" else None
    conf = conf or site.etc / f"{process}-server.conf"
    # -v: log to the console (the process's log file) as well as to syslog
    return [
        f"swift-{process}-server" if process in SERVERS else "swift-proxy-server",
        str(conf),
        "-v",
    ]


def _health_url(site: SwiftSite, process: str) -> str:
    if process == "keystone":
        return site.keystone_url
    if process == "edgescope":
        return f"{site.url('edgescope')}/edgescope/health"
    if process == "proxy-server":
        return f"{site.url('proxy-server')}/healthcheck"
    return f"{site.url(process)}/"  # a backend server answers 400 to this: it is up


def _wait_tcp(site: SwiftSite, timeout: float) -> None:
    import socket

    port = site.port("memcached")
    probe = f"import socket; socket.create_connection(('127.0.0.1', {port}), 0.5).close()"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if site.exec_prefix:  # inside the site's namespace
            argv = [*site.exec_prefix, sys.executable, "-c", probe]
            if subprocess.run(argv, capture_output=True, check=False).returncode == 0:
                return
        else:
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return
        time.sleep(0.1)
    raise TestbedError(f"{site.name}'s memcached did not listen within {timeout:.0f} s")


def object_hash(
    container: str, name: str, conf: Path = SWIFT_CONF, *, account: str = ACCOUNT
) -> str:
    """Swift's ``hash_path(account, container, name)``, with ``conf``'s prefix and suffix."""
    parser = configparser.ConfigParser()
    parser.read(conf)
    prefix = parser.get("swift-hash", "swift_hash_path_prefix", fallback="")
    suffix = parser.get("swift-hash", "swift_hash_path_suffix", fallback="")
    path = f"{prefix}/{account}/{container}/{name}{suffix}"
    return hashlib.md5(path.encode(), usedforsecurity=False).hexdigest()


def missing_binaries() -> list[str]:
    wanted = ["memcached", "swift-proxy-server", "swift"]
    wanted += [f"swift-{server}-server" for server in SERVERS]
    return [name for name in wanted if shutil.which(name) is None]


def describe(bed: SwiftTestbed) -> str:
    """The sites and their URLs, as JSON (for people and for logs)."""
    return json.dumps(
        {name: {"auth_url": s.auth_url, "root": str(s.root)} for name, s in bed.sites.items()},
        indent=2,
    )
