"""Replicated resources as an extension of the site proxy.

Built from configuration by whoever starts the proxy (``edgescope proxy run``, the
testbed): a ``[replicas]`` table in the site's TOML, or ``--state-dir``::

    [replicas]
    state_dir = "/var/lib/edgescope/Paris"   # the embedded registry: replicas.sqlite3
    # or, shared by every proxy of the site (several proxies behind the site's HAProxy):
    # database = "mysql+pymysql://edgescope:PASSWORD@10.0.0.10/edgescope"
    replay_interval = 1.0                    # seconds between replays of queued writes
    sync_interval = 0.5                      # seconds between reads of the others' changes
    operator_roles = ["admin"]               # who may adopt resources (adoption.py)
    queue_max_ops = 10000                    # the eventual-write queue's bounds (507 past
    queue_max_bytes = 268435456              #   them); one caller holds at most
    queue_owner_share = 0.25                 #   this part of each

    replicas = Replicas.open("Paris", "/var/lib/edgescope/Paris")
    proxy = SiteProxy(config, extensions=[replicas])
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from edgescope.aio import spawn
from edgescope.errors import ConfigError, Refused
from edgescope.proxy.call import Call
from edgescope.proxy.dispatch import WHOLE_BODY
from edgescope.proxy.extension import ProxyServices
from edgescope.proxy.route import Plan
from edgescope.replicas.adoption import Adoption
from edgescope.replicas.clock import Clock
from edgescope.replicas.database import check_url
from edgescope.replicas.guard import Claims, WriteGuard
from edgescope.replicas.hooks import ReplicaHooks, SiteReplicas
from edgescope.replicas.metrics import register_metrics
from edgescope.replicas.model import ReplicaSet
from edgescope.replicas.peers import (
    RecordLink,
    Replayer,
    carries_internal_headers,
    read_internal_headers,
)
from edgescope.replicas.registry import QueueBounds, QueueFull, Registry
from edgescope.replicas.translate import candidates

log = logging.getLogger("edgescope.replicas")


_NUMBERS = {
    "replay_interval": (1.0, 0.0, 1e9),
    "sync_interval": (0.5, 0.0, 1e9),
    "claim_seconds": (330.0, 0.1, 1e9),
    "lease_seconds": (30.0, 0.1, 1e9),
    "queue_max_ops": (10_000, 1, 1e9),
    "queue_max_bytes": (256 * 1024 * 1024, 1, 1e15),
    "queue_owner_share": (0.25, 0.001, 1.0),
}
"""Numeric keys of ``[replicas]``: default, least and greatest value."""
_COUNTS = {"queue_max_ops", "queue_max_bytes"}
"""Those of them that count (1.5 was taken as 1)."""


@dataclass(frozen=True, slots=True)
class ReplicasConfig:
    """The ``[replicas]`` table of a site's proxy config."""

    location: str
    """A state folder (embedded SQLite) or a database URL (``database``)."""
    replay_interval: float = 1.0
    operator_roles: tuple[str, ...] = ("admin",)
    """Roles at this site's Keystone that may adopt resources (``/edgescope/replicas/adopt``)."""
    sync_interval: float = 0.5
    """Seconds between two reads of the sets other proxies of the site changed (0: never)."""
    claim_seconds: float = 330.0
    """How long a proxy's claim on a write it applies lasts (longer than any backend write)."""
    lease_seconds: float = 30.0
    """How long a proxy holds a replay queue or a set between two renewals."""
    queue_max_ops: float = 10_000
    queue_max_bytes: float = 256 * 1024 * 1024
    queue_owner_share: float = 0.25

    @property
    def bounds(self) -> QueueBounds:
        """The eventual-write queue's bounds (:class:`~registry.QueueBounds`)."""
        return QueueBounds(
            int(self.queue_max_ops), int(self.queue_max_bytes), self.queue_owner_share
        )

    @property
    def state_dir(self) -> Path | None:
        return None if "://" in self.location else Path(self.location)

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> ReplicasConfig:
        keys = {"state_dir", "database", "operator_roles", *_NUMBERS}
        unknown = sorted(set(raw) - keys)
        if unknown:
            raise ConfigError(
                f"[replicas]: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(keys))}"
            )
        roles = raw.get("operator_roles", ["admin"])
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise ConfigError(
                f"replicas.operator_roles: expected a list of role names, got {roles!r}"
            )
        numbers = {}
        for key, (default, least, most) in _NUMBERS.items():
            value = raw.get(key, default)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not least <= value <= most
                or (key in _COUNTS and value != int(value))
            ):
                kind = "a whole number" if key in _COUNTS else "a number"
                raise ConfigError(
                    f"replicas.{key}: expected {kind} from {least:g} to {most:g}, got {value!r}"
                )
            numbers[key] = float(value)
        return cls(_location(raw, base_dir), operator_roles=tuple(roles), **numbers)


def default_owner(site: str) -> str:
    """This proxy's name in claims and leases: unique among the proxies of the site."""
    return f"{site}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:6]}"


def dead_on_this_host(own: str) -> Callable[[str], bool]:
    """For owners named like ``own`` (same site and host): is that proxy's process gone?

    A PID that runs again (reused, or another PID namespace) counts as alive: its claims then
    expire with their time, as before.
    """

    def dead(owner: str) -> bool:
        parts = owner.split("/")
        if owner == own or len(parts) != 4 or not parts[2].isdigit():
            return False
        try:
            os.kill(int(parts[2]), 0)
        except ProcessLookupError:
            return True
        except OSError:
            return False
        return False

    return dead


def _location(raw: Mapping[str, Any], base_dir: Path | None) -> str:
    state_dir, database = raw.get("state_dir"), raw.get("database")
    if database is not None and state_dir is not None:
        raise ConfigError(
            "[replicas]: give 'state_dir' or 'database', not both (--state-dir sets state_dir)"
        )
    if database is not None:
        if not isinstance(database, str) or "://" not in database:
            raise ConfigError(
                "replicas.database: expected a database URL such as "
                "mysql+pymysql://edgescope:PASSWORD@10.0.0.10/edgescope"
            )
        check_url(database)
        return database
    if not isinstance(state_dir, str) or not state_dir:
        raise ConfigError(
            "[replicas]: give 'state_dir' (the folder of the embedded registry) or "
            "'database' (a database URL the proxies of the site share)"
        )
    path = Path(state_dir)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    return str(path)


class Replicas:
    """What ``&`` creates behaves as one resource: the proxy extension."""

    name = "replicas"
    events = ("wants_body", "join")

    def __init__(
        self,
        site: str,
        registry: Registry,
        *,
        replay_interval: float = 1.0,
        operator_roles: Sequence[str] = ("admin",),
        sync_interval: float = 0.5,
        claims: Claims | None = None,
    ) -> None:
        self.site = site
        self.registry = registry
        self.claims = claims or Claims(owner=default_owner(site))
        shared = "://" in registry.url and not registry.url.startswith("sqlite")
        # Two proxies of a site stamp writes with the same site name: a tiebreak of their own
        # keeps their stamps apart (a single proxy's stamps stay as they were).
        self.clock = Clock(site, tiebreak=self.claims.owner.rsplit("/", 1)[-1] if shared else "")
        self.sync_interval = sync_interval
        self._services: ProxyServices | None = None
        self._sync_task: asyncio.Task[None] | None = None
        self.link = RecordLink(registry, self.clock, self._proxy, frozenset(operator_roles))
        self.replayer = Replayer(self.link, replay_interval, self.claims)
        self.adoption = Adoption(self.link, operator_roles)
        guard = WriteGuard(registry, self.clock, self.claims)
        self.replayer.guard = guard
        self.parts = SiteReplicas(site, registry, self.clock, self.link, guard, self.replayer)

    @classmethod
    def open(
        cls,
        site: str,
        location: str | Path,
        *,
        replay_interval: float = 1.0,
        operator_roles: Sequence[str] = ("admin",),
    ) -> Replicas:
        """Replicas with their registry in ``location``: a state folder or a database URL."""
        return cls(
            site,
            Registry(location),
            replay_interval=replay_interval,
            operator_roles=operator_roles,
        )

    @classmethod
    def from_config(cls, site: str, config: ReplicasConfig) -> Replicas:
        claims = Claims(default_owner(site), config.claim_seconds, config.lease_seconds)
        return cls(
            site,
            Registry(config.location, bounds=config.bounds),
            replay_interval=config.replay_interval,
            operator_roles=config.operator_roles,
            sync_interval=config.sync_interval,
            claims=claims,
        )

    def _proxy(self) -> ProxyServices:
        if self._services is None:
            raise RuntimeError("the replicas extension is not started")
        return self._services

    # -- Extension ------------------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [*self.link.routes(), *self.adoption.routes()]

    async def start(self, proxy: ProxyServices) -> None:
        self._services = proxy
        register_metrics(proxy.metrics_registry, self.link)
        await asyncio.to_thread(self.registry.queue_usage)
        # Claims of a proxy of this host killed mid-write: taken over now, not in minutes.
        own = self.claims.owner
        prefix = own.rsplit("/", 2)[0] + "/"
        expired = await asyncio.to_thread(
            self.registry.expire_dead_owners, prefix, dead_on_this_host(own)
        )
        if expired:
            log.warning("replicas: %d claims and leases of dead proxies expired", expired)
        self.replayer.start()
        if self.sync_interval > 0:
            self._sync_task = spawn(self._follow(), name=f"edgescope-replicas-sync-{self.site}")

    async def stop(self) -> None:
        if self._sync_task is not None:
            self._sync_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync_task
        await self.replayer.stop()
        await asyncio.to_thread(self.registry.close)

    async def _follow(self) -> None:
        """Keep the set index up to date with what the other proxies of the site record."""
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await asyncio.to_thread(self.registry.sync)
                await asyncio.to_thread(self.registry.queue_usage)
            except Exception as exc:  # the database is away: keep serving from the index
                log.warning("replica registry sync failed: %s", exc)

    def wants_body(self, call: Call, plan: Plan) -> bool:
        """Also a peer's replicated create: taken over in doubt, its name is looked up."""
        replicated_create = call.method == "POST" and call.from_peer is not None
        return (
            plan.merges
            or self.registry.has_sets
            or (replicated_create and carries_internal_headers(call.request.headers))
        )

    def join(self, call: Call, plan: Plan, body: bytes | None) -> ReplicaHooks | None:
        if call.from_peer is not None and carries_internal_headers(call.request.headers):
            marker = read_internal_headers(call.request.headers)
            if marker is None:
                raise Refused(400, "malformed replica headers from a peer proxy")
            if plan.is_local:
                return ReplicaHooks(self.parts, call, plan, (), marker)
        if body is None and self._unread_json(call) and (plan.merges or self.registry.has_sets):
            raise Refused(
                411,
                "a JSON body sent chunked (no Content-Length) cannot have its replica ids "
                "translated for each site: send it with a Content-Length",
                title="Length Required",
            )
        if plan.merges and call.is_write and call.mode == "eventual":
            if body is None and call.request.has_body:
                raise Refused(
                    413,
                    "an eventual write needs a body the proxy can keep for the sites it cannot "
                    f"reach: send it with a Content-Length of at most {WHOLE_BODY} bytes",
                    title="Request Entity Too Large",
                )
            self._check_queue_room()
        sets = self.involved_sets(call.path, body)
        if plan.merges or sets:
            return ReplicaHooks(self.parts, call, plan, sets)
        return None

    @staticmethod
    def _unread_json(call: Call) -> bool:
        """A JSON (or untyped) body the proxy did not read whole because it came chunked."""
        request = call.request
        kind = request.headers.get("Content-Type", "").lower()
        return request.has_body and request.content_length is None and ("json" in kind or not kind)

    def _check_queue_room(self) -> None:
        """Refuse an eventual ``&`` write up front while the queue is at a bound (the
        registry checks again, exactly, when it queues)."""
        count, size = self.registry.usage
        bounds = self.registry.bounds
        if count >= bounds.max_ops or size >= bounds.max_bytes:
            self.registry.queue_full += 1
            raise QueueFull(
                f"the eventual-write queue is full: {count} writes, {size} bytes queued; "
                f"queue_max_ops is {bounds.max_ops}, queue_max_bytes is {bounds.max_bytes}; "
                "retry later or use strict mode"
            )

    async def summary(self, queue_limit: int = 20) -> dict[str, Any]:
        """Sets per service and writes queued per target site (the operator's console)."""
        # Counted in the database; only the first ops are read, and never a body.
        queued = await asyncio.to_thread(self.registry.queued_per_target)
        pending = await asyncio.to_thread(self.registry.pending, limit=queue_limit)
        sets: dict[str, int] = {}
        for replica_set in self.registry.sets():
            sets[replica_set.service] = sets.get(replica_set.service, 0) + 1
        return {
            "sets": sets,
            "pending": queued,
            "queue": [op.summary() for op in pending[:queue_limit]],
        }

    def involved_sets(self, path: str, body: bytes | None) -> list[ReplicaSet]:
        """The sets whose ids the request names (path, query, JSON body)."""
        if not self.registry.has_sets:
            return []
        found = {}
        for text in candidates(path, body):
            replica_set = self.registry.lookup(text)
            if replica_set is not None:
                found[replica_set.handle] = replica_set
        return list(found.values())
