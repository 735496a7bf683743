"""The whole testbed: several independent sites, their RabbitMQ, their keys and clouds.yaml.

:class:`Testbed` is the Python API used by ``edgescope testbed`` and by the scenario tests:

    tb = Testbed.create(Path("state"), ["Paris", "Corte", "Marseille"])
    tb.up(report=lambda site, msg: print(site, msg))     # idempotent
    tb = Testbed.from_state(Path("state"))                # from another process
    tb.sites["Paris"].cloud, tb.sites["Paris"].proxy_url  # 'Paris', 'http://127.0.0.1:20190'
    tb.stop_service("Corte", "glance"); tb.start_service("Corte", "glance")
    tb.down(purge=False)

State folder: ``testbed.json`` (the plan), ``pki/`` (each site's signing key, a CA and each
proxy's TLS certificate for its peers),
``clouds.yaml``, ``timings.json``, ``rabbit/`` and ``sites/<name>/``. Under ``--wan`` the plan
also records the WAN's state folder (``wan_state``), where the WAN commands find it.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgescope.testbed import snapshot
from edgescope.testbed.configs import Credentials
from edgescope.testbed.layout import (
    DEFAULT_CATALOG,
    HTTP_SERVICES,
    PORT_BASE,
    SERVICE_TYPES,
    SERVICES,
    CatalogMode,
    SitePlan,
    TestbedError,
    TestbedUsageError,
)
from edgescope.testbed.pki import Pki
from edgescope.testbed.rabbit import RabbitBroker
from edgescope.testbed.site import ServiceStatus, Site

SiteReport = Callable[[str, str], None]
"""Progress callback: (site name, message)."""


@dataclass(frozen=True)
class SiteInfo:
    """What a client of the testbed needs to know about one site."""

    name: str
    cloud: str
    """clouds.yaml entry for the site's admin (``openstack --os-cloud Paris``)."""
    demo_cloud: str
    """clouds.yaml entry for the site's non-admin user ``demo`` of project ``demo``."""
    region: str
    auth_url: str
    proxy_url: str
    ports: dict[str, int]
    logs: dict[str, Path]
    root: Path
    bind_host: str
    exec_prefix: tuple[str, ...]
    catalog: dict[str, str] = field(default_factory=dict)
    """Service type -> the URL the site's Keystone catalog holds for it (``identity``:
    ``http://127.0.0.1:20110/v3`` behind HAProxy)."""
    proxy_endpoints: dict[str, str] = field(default_factory=dict)
    """Service type -> where the site's proxy itself serves it (its per-service listener
    behind HAProxy, a path prefix of its main listener in the plain mode), for calls that
    must reach the proxy whatever they carry."""


def _noop(_site: str, _message: str) -> None:
    return None


class Testbed:
    """Sites, broker(s) and files under one state folder."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        state_dir: Path,
        plans: Sequence[SitePlan],
        *,
        wan_state: Path | None = None,
        joined: Mapping[str, str] | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.plans = list(plans)
        self.wan_state = wan_state
        self.joined = dict(joined or {})
        """Sites that joined a running testbed (``join``), with the one peer each named:
        no ``[[peers]]`` of theirs, in nobody's ``[[peers]]``; the site directory does it."""
        self._brokers = {plan.name: self._broker_for(plan) for plan in self.plans}

    # Construction --------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        state_dir: Path,
        sites: Sequence[str],
        *,
        catalog: CatalogMode | None = None,
        port_base: int = PORT_BASE,
        addresses: dict[str, tuple[str, tuple[str, ...]]] | None = None,
        wan_state: Path | None = None,
    ) -> Testbed:
        """Plan a testbed; if the folder already holds one, it must have the same sites.

        ``addresses`` maps a site to ``(bind_host, exec_prefix)`` (its netns under ``--wan``).
        ``catalog`` None: the folder's recorded mode, or :data:`DEFAULT_CATALOG` (HAProxy).
        """
        existing = cls._load_json(state_dir)
        if catalog is None:
            catalog = existing.get("catalog", "proxy") if existing else DEFAULT_CATALOG
        if existing is not None:
            old = [s["name"] for s in existing["sites"] if not s.get("seed")]
            if old != list(sites) or existing.get("catalog", "proxy") != catalog:
                raise TestbedUsageError(
                    f"{state_dir} holds a testbed of sites {','.join(old)} "
                    f"(catalog {existing.get('catalog', 'proxy')}); use `edgescope testbed down "
                    "--purge` first, or another --state-dir"
                )
        addresses = addresses or {}
        plans = [
            SitePlan.make(
                name,
                index,
                state_dir,
                bind_host=addresses.get(name, ("127.0.0.1", ()))[0],
                exec_prefix=tuple(addresses.get(name, ("", ()))[1]),
                port_base=port_base,
                catalog=catalog,
            )
            for index, name in enumerate(sites, start=1)
        ]
        joined = cls.from_state(state_dir) if existing is not None else None
        if joined is not None:  # sites that joined later stay part of it
            plans += [p for p in joined.plans if p.name in joined.joined]
        testbed = cls(
            state_dir, plans, wan_state=wan_state, joined=joined.joined if joined else None
        )
        testbed._save()
        return testbed

    @classmethod
    def from_state(cls, state_dir: Path) -> Testbed:
        """Attach to the testbed whose plan is saved in ``state_dir``."""
        data = cls._load_json(state_dir)
        if data is None:
            raise TestbedUsageError(f"no testbed in {state_dir}: run `edgescope testbed up` first")
        plans = [
            SitePlan.make(
                s["name"],
                s["index"],
                state_dir,
                bind_host=s["bind_host"],
                exec_prefix=tuple(s["exec_prefix"]),
                port_base=data["port_base"],
                catalog=data.get("catalog", "proxy"),
            )
            for s in data["sites"]
        ]
        wan = data.get("wan_state")
        joined = {s["name"]: s["seed"] for s in data["sites"] if s.get("seed")}
        return cls(state_dir, plans, wan_state=Path(wan) if wan else None, joined=joined)

    @staticmethod
    def _load_json(state_dir: Path) -> dict[str, Any] | None:
        path = state_dir / "testbed.json"
        if not path.exists():
            return None
        try:
            data: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise TestbedError(f"unreadable {path}: {exc}") from exc
        return data

    def _save(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        first = self.plans[0]
        data = {
            "port_base": first.port_base,
            "catalog": first.catalog,
            "wan_state": str(self.wan_state) if self.wan_state else None,
            "sites": [
                {
                    "name": p.name,
                    "index": p.index,
                    "bind_host": p.bind_host,
                    "exec_prefix": list(p.exec_prefix),
                    **({"seed": self.joined[p.name]} if p.name in self.joined else {}),
                }
                for p in self.plans
            ],
        }
        (self.state_dir / "testbed.json").write_text(json.dumps(data, indent=1))

    # Pieces --------------------------------------------------------------------------------
    def _broker_for(self, plan: SitePlan) -> RabbitBroker:
        if plan.exec_prefix:  # own namespace: own broker, on the site's address
            return RabbitBroker(
                self.state_dir / f"rabbit-{plan.name}",
                plan.bind_host,
                plan.port_base + 5672,
                plan.exec_prefix,
            )
        return RabbitBroker(self.state_dir / "rabbit", "127.0.0.1", plan.port_base + 5672)

    @property
    def brokers(self) -> list[RabbitBroker]:
        unique: dict[Path, RabbitBroker] = {b.root: b for b in self._brokers.values()}
        return list(unique.values())

    @property
    def pki(self) -> Pki:
        """The sites' signing keys, and TLS between their proxies (``<state>/pki``)."""
        return Pki(self.state_dir / "pki")

    @property
    def clouds_yaml(self) -> Path:
        return self.state_dir / "clouds.yaml"

    def site(self, name: str) -> Site:
        """The :class:`Site` named ``name`` (case-insensitive); creates its credentials file."""
        for plan in self.plans:
            if plan.name.lower() == name.lower():
                creds = Credentials.load_or_create(plan.root / "credentials.json")
                broker = self._brokers[plan.name]
                static = [p for p in self.plans if p.name not in self.joined]
                seed = self.joined.get(plan.name)
                return Site(
                    plan,
                    transport_url=broker.url(plan.rabbit_vhost, plan.rabbit_vhost, creds.rabbit),
                    peers=[] if seed else [p for p in static if p is not plan],
                    security=self.pki.ensure(self.plans),
                    seeds=[self._plan(seed).peer_url] if seed else [],
                )
        known = ", ".join(p.name for p in self.plans)
        raise TestbedUsageError(f"unknown site {name!r}; this testbed has {known}")

    def _plan(self, name: str) -> SitePlan:
        found = next((p for p in self.plans if p.name.lower() == name.lower()), None)
        if found is None:
            known = ", ".join(p.name for p in self.plans)
            raise TestbedUsageError(f"unknown site {name!r}; this testbed has {known}")
        return found

    @property
    def sites(self) -> dict[str, SiteInfo]:
        return {plan.name: self._info(plan) for plan in self.plans}

    def _info(self, plan: SitePlan) -> SiteInfo:
        ports = {s: plan.port(s) for s in (*HTTP_SERVICES, "proxy", "haproxy") if plan.runs(s)}
        logs = {s: plan.log_path(s) for s in SERVICES}
        catalog = {stype: plan.catalog_url(svc) for svc, (stype, _) in SERVICE_TYPES.items()}
        proxy_endpoints = {
            stype: f"http://{plan.bind_host}:{plan.proxy_listener_port(svc)}"
            if plan.catalog == "haproxy"
            else plan.proxy_url + prefix
            for svc, (stype, prefix) in SERVICE_TYPES.items()
        }
        return SiteInfo(
            plan.name,
            plan.name,
            f"{plan.name}-demo",
            plan.name,
            plan.auth_url,
            plan.proxy_url,
            ports,
            logs,
            plan.root,
            plan.bind_host,
            plan.exec_prefix,
            catalog,
            proxy_endpoints,
        )

    def env(self) -> dict[str, str]:
        """Environment for the ``openstack`` CLI: ``OS_CLIENT_CONFIG_FILE``."""
        return {"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml)}

    # Lifecycle -----------------------------------------------------------------------------
    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``up`` or ``down`` at a time per state folder (others wait their turn)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        with (self.state_dir / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def up(self, report: SiteReport = _noop) -> dict[str, dict[str, Any]]:
        """Bring every site up (cold, restored or warm); returns per-site kind and seconds."""
        with self._locked():
            return self._up(report)

    def _up(self, report: SiteReport) -> dict[str, dict[str, Any]]:
        self.pki.ensure(self.plans)
        for broker in self.brokers:
            report("*", f"RabbitMQ {broker.host}:{broker.port}")
            broker.start()
        with ThreadPoolExecutor(max_workers=len(self.plans)) as pool:
            futures = {p.name: pool.submit(self._up_site, p.name, report) for p in self.plans}
            results = {}
            errors = []
            for name, future in futures.items():
                try:
                    results[name] = future.result()
                except TestbedError as exc:
                    errors.append(str(exc))
        self._write_clouds_yaml()
        self._record_timings(results)
        if errors:
            raise TestbedError("\n".join(errors))
        static = [p.name for p in self.plans if p.name not in self.joined]
        if len(static) > 1:
            report(static[0], "adopting m1.tiny and debian of every site as one resource each")
            self.site(static[0]).adopt_shared(static)
        return results

    def _up_site(self, name: str, report: SiteReport) -> dict[str, Any]:
        plan = next(p for p in self.plans if p.name == name)
        say: Callable[[str], None] = lambda message: report(plan.name, message)  # noqa: E731
        started = time.monotonic()
        broker = self._brokers[plan.name]
        # The key names the broker without a password, so it exists before the credentials do.
        key = snapshot.snapshot_key(plan, broker.url(plan.rabbit_vhost, plan.rabbit_vhost, ""))
        restored = not plan.root.exists() and snapshot.restore(plan, key)
        site = self.site(name)  # reads (or, on a cold start, creates) the site's credentials
        if not restored and site.initialised and site.healthy():
            kind = "running"  # nothing to do, not even RabbitMQ commands
        else:
            broker.ensure_vhost(plan.rabbit_vhost, plan.rabbit_vhost, site.credentials.rabbit)
            if restored:
                say("restored from snapshot")
                kind = "restored"
                site.start(say)
            elif site.initialised:
                kind = "warm"
                site.start(say)
            else:
                kind = "cold"
                site.initialise(say)
                say("saving snapshot")
                snapshot.save(plan, key)
        seconds = round(time.monotonic() - started, 1)
        say(f"up ({kind}, {seconds:.0f} s)")
        return {"kind": kind, "seconds": seconds}

    def join(
        self,
        name: str,
        seed: str,
        address: tuple[str, tuple[str, ...]] | None = None,
        report: SiteReport = _noop,
    ) -> dict[str, Any]:
        """Add site ``name`` to the running testbed knowing one peer, ``seed``: no other
        site's config changes; their directories admit it (the testbed's authority endorsed
        its key). ``address`` is its (bind host, netns prefix) on the WAN."""
        with self._locked():
            seed_plan = self._plan(seed)
            if any(p.name.lower() == name.lower() for p in self.plans):
                if name not in self.joined:
                    raise TestbedUsageError(f"{name} is already a site of this testbed")
                plan = self._plan(name)
            else:
                first = self.plans[0]
                bind_host, prefix = address or ("127.0.0.1", ())
                plan = SitePlan.make(
                    name,
                    max(p.index for p in self.plans) + 1,
                    self.state_dir,
                    bind_host=bind_host,
                    exec_prefix=tuple(prefix),
                    port_base=first.port_base,
                    catalog=first.catalog,
                )
                self.plans.append(plan)
                self.joined[plan.name] = seed_plan.name
                self._brokers[plan.name] = self._broker_for(plan)
                self._save()
            self.pki.ensure(self.plans)
            broker = self._brokers[plan.name]
            report("*", f"RabbitMQ {broker.host}:{broker.port}")
            broker.start()
            result = self._up_site(plan.name, report)
            self._write_clouds_yaml()
            return result

    def leave(self, name: str) -> list[str]:
        """Site ``name`` (one that joined) leaves: its proxy stops, a signed "left" entry
        goes to the sites it knows (``edgescope directory leave``, from its own namespace),
        its processes stop and it is no longer part of the testbed (its folder is kept)."""
        with self._locked():
            plan = self._plan(name)
            if plan.name not in self.joined:
                raise TestbedUsageError(f"{plan.name} did not join: take the testbed down instead")
            site = self.site(plan.name)
            stopped = site.stop()
            site.announce_leave()
            if plan.exec_prefix:
                self._brokers[plan.name].stop()
            self.plans.remove(plan)
            del self.joined[plan.name], self._brokers[plan.name]
            self._save()
            self._write_clouds_yaml()
            return stopped

    def down(self, *, purge: bool = False) -> dict[str, list[str]]:
        """Stop every process by PID; with ``purge`` also delete the state folder."""
        with self._locked():
            return self._down(purge)

    def _down(self, purge: bool) -> dict[str, list[str]]:
        with ThreadPoolExecutor(max_workers=max(1, len(self.plans))) as pool:
            stopped = dict(
                zip(
                    [p.name for p in self.plans],
                    pool.map(lambda p: self.site(p.name).stop(), self.plans),
                    strict=True,
                )
            )
        for broker in self.brokers:
            if broker.stop():
                stopped.setdefault("*", []).append(f"rabbitmq@{broker.host}:{broker.port}")
        if purge:
            shutil.rmtree(self.state_dir, ignore_errors=True)
        return stopped

    def status(self) -> list[ServiceStatus]:
        rows = []
        for plan in self.plans:
            rows.extend(self.site(plan.name).status())
        return rows

    def healthy(self) -> bool:
        return all(b.running() for b in self.brokers) and all(
            self.site(p.name).healthy() for p in self.plans
        )

    def stop_service(self, site: str, service: str) -> bool:
        """Stop one service of one site (e.g. Corte's glance for ``|`` scenarios)."""
        with self._locked():
            return self.site(site).stop_service(service)

    def start_service(self, site: str, service: str) -> None:
        """Start one service of one site again and wait until it answers."""
        with self._locked():
            self.site(site).start_service(service)

    # Files ---------------------------------------------------------------------------------
    def _write_clouds_yaml(self) -> None:
        """One admin and one demo entry per site. JSON is valid YAML, and needs no library."""
        clouds = {}
        for plan in self.plans:
            creds = self.site(plan.name).credentials
            for cloud, user, project, password in (
                (plan.name, "admin", "admin", creds.admin),
                (f"{plan.name}-demo", "demo", "demo", creds.demo),
            ):
                clouds[cloud] = {
                    "region_name": plan.name,
                    "identity_api_version": 3,
                    "interface": "public",
                    "auth": {
                        "auth_url": plan.auth_url,
                        "username": user,
                        "password": password,
                        "project_name": project,
                        "user_domain_name": "Default",
                        "project_domain_name": "Default",
                    },
                }
        self.clouds_yaml.touch(mode=0o600)
        self.clouds_yaml.write_text(json.dumps({"clouds": clouds}, indent=2) + "\n")

    def _record_timings(self, results: dict[str, dict[str, Any]]) -> None:
        path = self.state_dir / "timings.json"
        history = json.loads(path.read_text()) if path.exists() else []
        history.append({"at": time.strftime("%FT%TZ", time.gmtime()), "sites": results})
        path.write_text(json.dumps(history[-50:], indent=1))


__all__ = ["ServiceStatus", "SiteInfo", "Testbed"]
