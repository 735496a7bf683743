"""One site of the testbed: initialise it (cold), start it (warm), stop it, report on it.

A :class:`Site` runs every process of one independent OpenStack (keystone, glance, placement,
neutron, nova-api/conductor/scheduler/compute, cinder-api/scheduler/volume) plus its edgescope
proxy, from the folder of its :class:`~edgescope.testbed.layout.SitePlan`; what lies under
neutron and cinder (the site's OVN and Ceph) is ``backends.py``'s. Initialisation steps
leave a marker in ``run/stages``, so a failed ``up`` resumes where it stopped. Command lines
come from ``services.py``, files from ``configs.py``.

    >>> site = Site(plan, transport_url=broker.url(...), peers=[...], security=pki.ensure(plans))
    >>> site.initialise(report=print)     # cold: ~2.5 min alone
    >>> site.stop(); site.start(report=print)   # warm: ~25 s
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edgescope.testbed import configs, haproxy, schema_cache
from edgescope.testbed.backends import Backends, features
from edgescope.testbed.configs import Credentials
from edgescope.testbed.layout import (
    DAEMONS,
    HTTP_SERVICES,
    SERVICE_TYPES,
    SERVICES,
    SitePlan,
    TestbedError,
    check_service,
)
from edgescope.testbed.pki import SiteSecurity
from edgescope.testbed.process import (
    http_answers,
    port_in_use,
    rss_bytes,
    running_pid,
    start_process,
    stop_process,
    wait_http,
)
from edgescope.testbed.services import (
    VENV_BIN,
    Launch,
    manage,
    python_module,
    service_launch,
)

Report = Callable[[str], None]

_PASTE_FILES = {  # shipped by the packages in <venv>/etc, copied next to each site's config
    "glance/glance-api-paste.ini": "glance/glance-api-paste.ini",
    "nova/api-paste.ini": "nova/api-paste.ini",
    "neutron/api-paste.ini": "neutron/api-paste.ini",
}
_STOP_ORDER = (
    "haproxy",
    "proxy",
    "nova-api",
    "nova-compute",
    "nova-scheduler",
    "nova-conductor",
    "cinder-api",
    "cinder-volume",
    "cinder-scheduler",
    "neutron",
    "placement",
    "glance",
    "keystone",
    "ovn-controller",
    "ovn-northd",
    "ovs-vswitchd",
    "ovn-nb-db",
    "ovn-sb-db",
    "ovs-db",
    "ceph-osd",
    "ceph-mon",
)


@dataclass(frozen=True)
class ServiceStatus:
    """What ``testbed status`` shows for one service of a site."""

    site: str
    service: str
    port: int | None
    pid: int | None
    healthy: bool
    rss: int
    """Resident memory in bytes of the process and its children."""


def _quiet(_: str) -> None:
    return None


class Site:
    """The processes and state of one site."""

    def __init__(
        self,
        plan: SitePlan,
        *,
        transport_url: str,
        peers: Sequence[SitePlan] = (),
        security: Mapping[str, SiteSecurity] | None = None,
        seeds: Sequence[str] = (),
    ) -> None:
        self.plan = plan
        self.transport_url = transport_url
        self.peers = list(peers)
        """Static peers (``[[peers]]``); a site that joined later has none."""
        self.security = security
        self.seeds = list(seeds)
        """Where the site directory starts gossiping (default: the static peers)."""
        self.backends = Backends(plan, run=self._run, launch=self._launch, features=features())
        """The site's OVN and Ceph, under neutron and cinder (when this machine runs them)."""
        absent = self.backends.features.without()
        self.services = [s for s in SERVICES if s not in absent]
        """The services this site runs (SERVICES, less what this machine cannot run)."""

    # Files --------------------------------------------------------------------------------
    @property
    def credentials(self) -> Credentials:
        return Credentials.load_or_create(self.plan.root / "credentials.json")

    @property
    def initialised(self) -> bool:
        return (self.plan.run / "stages" / "initialised").exists()

    def write_configs(self) -> None:
        """(Re)write every config file from the plan; cheap, done at every start."""
        plan = self.plan
        for sub in (
            "etc",
            "data/images",
            "data/glance-staging",
            "data/glance-tasks",
            "data/nova/instances",
            "data/neutron",
            "data/cinder",
            "log",
            "run/lock",
            "run/stages",
        ):
            (plan.root / sub).mkdir(parents=True, exist_ok=True)
        for key_dir in ("fernet-keys", "credential-keys"):
            (plan.data / key_dir).mkdir(mode=0o700, exist_ok=True)
        for src, dst in _PASTE_FILES.items():
            # Always from the installed package's own file: a restored snapshot never keeps a
            # stale one.
            target = plan.etc / dst
            target.parent.mkdir(parents=True, exist_ok=True)
            shipped = (Path(sys.prefix) / "etc" / src).read_text()
            target.write_text(configs.adjust_paste(dst, shipped))
        files = configs.render_site(
            plan,
            self.credentials,
            transport_url=self.transport_url,
            peers=self.peers,
            security=self.security,
            seeds=self.seeds,
            ovn=self.backends.features.ovn,
        )
        files.update(self.backends.files(self.credentials, self.transport_url))
        for rel, text in files.items():
            path = plan.root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            path.chmod(0o600)
        if plan.runs("haproxy") and self.security is not None:
            haproxy.write_config(plan)  # from the proxy.toml just written

    # Commands ------------------------------------------------------------------------------
    def _run(
        self, argv: list[str], what: str, *, stdin: str | None = None, timeout: float = 300.0
    ) -> str:
        """Run a one-shot command, log its output, raise with the tail if it fails."""
        log = self.plan.logs / "init.log"
        try:
            done = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise TestbedError(f"{self.plan.name}: {what} timed out after {timeout:.0f} s") from exc
        with log.open("a") as out:
            out.write(f"\n==== {time.strftime('%F %T')} {what}: rc={done.returncode}\n")
            out.write(done.stdout + done.stderr)
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            raise TestbedError(f"{self.plan.name}: {what} failed (see {log}):\n{tail}")
        return done.stdout

    def _stage(self, name: str, action: Callable[[], object]) -> None:
        """Run an initialisation step once; its marker makes a resumed ``up`` skip it."""
        marker = self.plan.run / "stages" / name
        if not marker.exists():
            action()
            marker.touch()

    def _schema(self, name: str, files: list[str], *steps: tuple[list[str], str]) -> None:
        """Run a schema's migration ``steps`` (command, what), or copy the result of the first
        site's run (:mod:`edgescope.testbed.schema_cache`)."""

        def migrate() -> None:
            for argv, what in steps:
                self._run(argv, what)

        if schema_cache.synced(self.plan.data, files, name, migrate):
            with (self.plan.logs / "init.log").open("a") as out:
                out.write(f"\n==== {time.strftime('%F %T')} {name} schema: copied from the cache\n")

    # Initialisation (cold) -----------------------------------------------------------------
    def initialise(self, report: Report = _quiet) -> None:
        """Create databases, keys, catalog and content, leaving every service running."""
        self.write_configs()
        with ThreadPoolExecutor(max_workers=3) as pool:
            databases = pool.submit(self._init_databases, report)
            backends = pool.submit(self.backends.start, report)
            self._init_identity(report)
            databases.result()
            backends.result()
        report("starting services")
        self._start_services([s for s in self.services if s not in ("keystone", "proxy")])
        self._stage("discover-hosts", lambda: self._discover_hosts(report))
        report("creating flavor, image, demo project")
        self._stage("content", lambda: self._provision("content"))
        self.backends.wait_ready()
        (self.plan.run / "stages" / "initialised").touch()

    def _init_identity(self, report: Report) -> None:
        plan, creds = self.plan, self.credentials
        report("keystone database")
        self._stage(
            "keystone-db",
            lambda: self._schema(
                "keystone",
                ["keystone.db"],
                (manage(plan, "keystone-manage", "db_sync"), "keystone db_sync"),
            ),
        )
        owner = [
            "--keystone-user",
            getpass.getuser(),
            "--keystone-group",
            grp.getgrgid(os.getgid()).gr_name,
        ]
        self._stage(
            "keystone-keys",
            lambda: (
                self._run(manage(plan, "keystone-manage", "fernet_setup", *owner), "fernet_setup"),
                self._run(
                    manage(plan, "keystone-manage", "credential_setup", *owner), "credential_setup"
                ),
            ),
        )
        urls = [
            arg
            for iface in ("public", "internal", "admin")
            for arg in (f"--bootstrap-{iface}-url", plan.auth_url)
        ]
        self._stage(
            "keystone-bootstrap",
            lambda: self._run(
                manage(
                    plan,
                    "keystone-manage",
                    "bootstrap",
                    "--bootstrap-password",
                    creds.admin,
                    "--bootstrap-username",
                    "admin",
                    "--bootstrap-project-name",
                    "admin",
                    "--bootstrap-role-name",
                    "admin",
                    "--bootstrap-service-name",
                    "keystone",
                    "--bootstrap-region-id",
                    plan.name,
                    *urls,
                ),
                "keystone bootstrap",
            ),
        )
        front = {"haproxy": ", proxy and HAProxy", "proxy": " and proxy"}.get(plan.catalog, "")
        report("starting keystone" + front)
        self._start_services(["keystone", "proxy", "haproxy"])
        report("registering services and users")
        self._stage("register", lambda: self._provision("register"))

    def _init_databases(self, report: Report) -> None:
        plan = self.plan
        self._stage(
            "glance-db",
            lambda: self._schema(
                "glance",
                ["glance.db"],
                (manage(plan, "glance-manage", "db_sync"), "glance db_sync"),
            ),
        )
        self._stage(
            "placement-db",
            lambda: self._schema(
                "placement",
                ["placement.db"],
                (manage(plan, "placement-manage", "db", "sync"), "placement db sync"),
            ),
        )
        report("neutron schema")
        self._stage(
            "neutron-db",
            lambda: (
                self._run(
                    python_module(
                        plan, "edgescope.testbed._neutron_schema", plan.sqlite_url("neutron")
                    ),
                    "neutron schema from models",
                ),
                self._run(manage(plan, "neutron-db-manage", "stamp", "heads"), "neutron stamp"),
            ),
        )
        report("nova databases")
        self._stage("nova-db", self._init_nova_databases)
        self._stage("cinder-db", self.backends.init_databases)

    def _init_nova_databases(self) -> None:
        plan = self.plan
        api_sync = manage(plan, "nova-manage", "api_db", "sync")
        self._schema("nova_api", ["nova_api.db"], (api_sync, "nova api_db sync"))
        cell0 = plan.sqlite_url("nova_cell0")
        self._run(
            manage(plan, "nova-manage", "cell_v2", "map_cell0", "--database_connection", cell0),
            "nova map_cell0",
        )
        self._run(
            manage(plan, "nova-manage", "cell_v2", "create_cell", "--name", "cell1"),
            "nova create_cell",
        )
        cells_sync = manage(plan, "nova-manage", "db", "sync")
        self._schema("nova_cells", ["nova_cell0.db", "nova_cell1.db"], (cells_sync, "nova db sync"))

    def adopt_shared(self, sites: Sequence[str]) -> None:
        """Adopt the flavor and image every site has as one set each (from this site)."""
        self._provision("adopt", {"proxy_url": self.plan.proxy_url, "sites": list(sites)})

    def _provision(self, step: str, extra: dict[str, Any] | None = None) -> None:
        plan, creds = self.plan, self.credentials
        image = plan.data / "debian.img"
        if not image.exists():
            # A small, recognisable disk image: the fake driver never reads it.
            image.write_bytes(b"edgescope debian test image\n".ljust(64 * 1024, b"\0"))
        request = {
            "auth_url": plan.auth_url,
            "region": plan.name,
            "admin_password": creds.admin,
            "service_password": creds.service,
            "demo_password": creds.demo,
            "endpoints": {
                stype: plan.catalog_url(svc)
                for svc, (stype, _) in SERVICE_TYPES.items()
                if svc in self.services
            },
            "image_file": str(image),
            **(extra or {}),
        }
        self._run(
            python_module(plan, "edgescope.testbed._provision", step),
            f"provision {step}",
            stdin=json.dumps(request),
        )

    def _compute_heartbeat(self) -> datetime | None:
        """Last heartbeat of this site's nova-compute in the cell DB (UTC), if any."""
        db = self.plan.data / "nova_cell1.db"
        if not db.exists():
            return None
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute(
                    "SELECT coalesce(updated_at, created_at) FROM services "
                    "WHERE \"binary\"='nova-compute' AND host=? AND deleted=0",
                    (self.plan.compute_host,),
                ).fetchone()
        except sqlite3.Error:
            return None
        if row is None or row[0] is None:
            return None
        return datetime.fromisoformat(str(row[0])).replace(tzinfo=UTC)

    def _wait_compute(self, since: datetime, timeout: float = 420.0) -> None:
        """Wait until nova-compute has reported in after ``since``."""
        deadline = time.monotonic() + timeout
        pidfile = self.plan.pid_path("nova-compute")
        while time.monotonic() < deadline:
            beat = self._compute_heartbeat()
            if beat is not None and beat >= since:
                return
            if running_pid(pidfile) is None:
                raise TestbedError(f"{self.plan.name}: nova-compute exited (see its log)")
            time.sleep(0.5)
        raise TestbedError(f"{self.plan.name}: nova-compute did not report within {timeout:.0f} s")

    def _discover_hosts(self, report: Report) -> None:
        report("waiting for nova-compute, mapping host")
        self._wait_compute(datetime.now(UTC) - timedelta(days=1))
        self._run(
            manage(self.plan, "nova-manage", "cell_v2", "discover_hosts", "--verbose"),
            "nova discover_hosts",
        )

    # Start / stop (warm) -------------------------------------------------------------------
    def start(self, report: Report = _quiet) -> None:
        """Start every service of an initialised site and wait until nova-compute reports."""
        self.write_configs()
        self._update_cell_urls(report)
        since = datetime.now(UTC) - timedelta(seconds=2)
        self.backends.start(report)
        report("starting services")
        self._start_services(self.services)
        report("waiting for nova-compute")
        self._wait_compute(since)
        self.backends.wait_ready()

    def _update_cell_urls(self, report: Report) -> None:
        """Give nova's cell mappings today's database URLs: they were stored at initialisation,
        and a folder made by an older edgescope keeps the URLs it was made with."""
        api_db = self.plan.data / "nova_api.db"
        if not api_db.exists():
            return
        with closing(sqlite3.connect(api_db, timeout=30)) as db:
            cells = db.execute(
                "SELECT uuid, name, transport_url, database_connection FROM cell_mappings"
            )
            stale = [
                (uuid, transport, wanted)
                for uuid, name, transport, url in cells.fetchall()
                if url != (wanted := self.plan.sqlite_url(f"nova_{name}"))
            ]
        for uuid, transport, wanted in stale:
            report("updating nova's cell database URLs")
            self._run(
                manage(self.plan, "nova-manage", "cell_v2", "update_cell", "--cell_uuid", uuid,
                       "--transport-url", transport, "--database_connection", wanted),
                "nova update_cell",
            )  # fmt: skip

    def _start_services(self, services: Sequence[str]) -> None:
        """Start the services that are not running (all at once), then wait for them."""
        wanted = [s for s in services if self.plan.runs(s)]
        for service in wanted:
            self._launch(service)
        for service in wanted:
            self._wait_up(service)

    def _recipe(self, service: str) -> Launch:
        if service == "haproxy":
            return haproxy.launch(self.plan)
        return service_launch(self.plan, service)

    def _launch(self, service: str) -> None:
        pidfile = self.plan.pid_path(service)
        if running_pid(pidfile) is not None:
            return
        has_port = service in (*HTTP_SERVICES, "proxy", "haproxy")
        if has_port and not self.plan.exec_prefix:
            port = self.plan.port(service)
            if port_in_use(self.plan.bind_host, port):
                raise TestbedError(
                    f"{self.plan.name} {service}: port {port} is taken by a process this testbed "
                    "did not start (another testbed? see `edgescope testbed status "
                    "--state-dir ...`, or use --port-base)"
                )
        launch = self._recipe(service)
        start_process(launch.argv, log=self.plan.log_path(service), pidfile=pidfile, env=launch.env)

    def _wait_up(self, service: str, timeout: float = 420.0) -> None:
        launch = self._recipe(service)
        pidfile = self.plan.pid_path(service)
        what = f"{self.plan.name} {service}"
        if launch.health_url is not None:
            wait_http(
                launch.health_url,
                timeout=timeout,
                pidfile=pidfile,
                what=what,
                exec_prefix=self.plan.exec_prefix,
            )
        elif running_pid(pidfile) is None:
            raise TestbedError(f"{what} exited during start-up (see {self.plan.log_path(service)})")
        if (
            service in ("proxy", "haproxy")
            and self.plan.runs("haproxy")
            and all(running_pid(self.plan.pid_path(s)) for s in ("proxy", "haproxy"))
        ):
            haproxy.wait_proxy_seen(self.plan)  # scoped calls reach it from now on

    def start_service(self, service: str, *, wait: bool = True) -> None:
        """Start one service of the site (e.g. glance again after :meth:`stop_service`)."""
        self._launch(check_service(service))
        if wait:
            self._wait_up(service)

    def stop_service(self, service: str) -> bool:
        """Stop one service of the site by PID; True if it was running."""
        return stop_process(self.plan.pid_path(check_service(service)))

    def stop(self) -> list[str]:
        """Stop every service of the site (in parallel); returns those that were running."""
        with ThreadPoolExecutor(max_workers=len(_STOP_ORDER)) as pool:
            stopped = list(pool.map(self.stop_service, _STOP_ORDER))
        self.backends.after_stop()
        return [s for s, was in zip(_STOP_ORDER, stopped, strict=True) if was]

    def announce_leave(self) -> str:
        """Tell the sites this one knows that it left (``edgescope directory leave``, run
        from its own namespace: the others are reached as they would be from the site)."""
        argv = [*self.plan.exec_prefix, str(VENV_BIN / "edgescope"), "directory", "leave",
                "--config", str(self.plan.etc / "proxy.toml")]  # fmt: skip
        return self._run(argv, "directory leave", timeout=60.0)

    # Status ---------------------------------------------------------------------------------
    def status(self) -> list[ServiceStatus]:
        rows = []
        for service in self.services:
            if not self.plan.runs(service):
                continue
            pid = running_pid(self.plan.pid_path(service))
            port = (
                self.plan.port(service) if service in (*HTTP_SERVICES, "proxy", "haproxy") else None
            )
            healthy = pid is not None
            if healthy and port is not None:
                healthy = http_answers(
                    self.plan.direct_url(service) + "/",
                    timeout=3.0,
                    exec_prefix=self.plan.exec_prefix,
                )
            rows.append(
                ServiceStatus(
                    self.plan.name, service, port, pid, healthy, rss_bytes(pid) if pid else 0
                )
            )
        return rows

    def healthy(self) -> bool:
        return all(row.healthy for row in self.status())


__all__ = ["DAEMONS", "Report", "ServiceStatus", "Site"]
