"""Replicated resources as an extension of the site proxy.

Built from configuration by whoever starts the proxy (``edgescope proxy run``, the
testbed): a ``[replicas]`` table in the site's TOML, or ``--state-dir``::

    [replicas]
    state_dir = "/var/lib/edgescope/Paris"   # the registry: replicas.sqlite3
    replay_interval = 1.0                    # seconds between replays of queued writes
    operator_roles = ["admin"]               # who may adopt resources (adoption.py)

    replicas = Replicas.open("Paris", "/var/lib/edgescope/Paris")
    proxy = SiteProxy(config, extensions=[replicas])
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from edgescope.errors import ConfigError
from edgescope.proxy.call import Call
from edgescope.proxy.extension import ProxyServices, Refused
from edgescope.proxy.route import Plan
from edgescope.replicas.adoption import Adoption
from edgescope.replicas.clock import Clock
from edgescope.replicas.guard import WriteGuard
from edgescope.replicas.hooks import ReplicaHooks, SiteReplicas
from edgescope.replicas.model import ReplicaSet
from edgescope.replicas.peers import (
    RecordLink,
    Replayer,
    carries_internal_headers,
    read_internal_headers,
)
from edgescope.replicas.registry import Registry
from edgescope.replicas.translate import candidates


@dataclass(frozen=True, slots=True)
class ReplicasConfig:
    """The ``[replicas]`` table of a site's proxy config."""

    state_dir: Path
    replay_interval: float = 1.0
    operator_roles: tuple[str, ...] = ("admin",)
    """Roles at this site's Keystone that may adopt resources (``/edgescope/replicas/adopt``)."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any], base_dir: Path | None = None) -> ReplicasConfig:
        keys = {"state_dir", "replay_interval", "operator_roles"}
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
        state_dir = raw.get("state_dir")
        if not isinstance(state_dir, str) or not state_dir:
            raise ConfigError("[replicas]: missing 'state_dir' (the folder of the registry)")
        interval = raw.get("replay_interval", 1.0)
        if isinstance(interval, bool) or not isinstance(interval, int | float) or interval < 0:
            raise ConfigError(
                f"replicas.replay_interval: expected a non-negative number, got {interval!r}"
            )
        path = Path(state_dir)
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        return cls(path, float(interval), tuple(roles))


class Replicas:
    """What ``&`` creates behaves as one resource: the proxy extension."""

    name = "replicas"

    def __init__(
        self,
        site: str,
        registry: Registry,
        *,
        replay_interval: float = 1.0,
        operator_roles: Sequence[str] = ("admin",),
    ) -> None:
        self.site = site
        self.registry = registry
        self.clock = Clock(site)
        self._services: ProxyServices | None = None
        self.link = RecordLink(registry, self.clock, self._proxy, frozenset(operator_roles))
        self.replayer = Replayer(self.link, replay_interval)
        self.adoption = Adoption(self.link, operator_roles)
        self.parts = SiteReplicas(
            site, registry, self.clock, self.link, WriteGuard(registry, self.clock), self.replayer
        )

    @classmethod
    def open(
        cls,
        site: str,
        state_dir: str | Path,
        *,
        replay_interval: float = 1.0,
        operator_roles: Sequence[str] = ("admin",),
    ) -> Replicas:
        return cls(
            site,
            Registry(state_dir),
            replay_interval=replay_interval,
            operator_roles=operator_roles,
        )

    @classmethod
    def from_config(cls, site: str, config: ReplicasConfig) -> Replicas:
        return cls.open(
            site,
            config.state_dir,
            replay_interval=config.replay_interval,
            operator_roles=config.operator_roles,
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
        self.replayer.start()

    async def stop(self) -> None:
        await self.replayer.stop()
        await asyncio.to_thread(self.registry.close)

    def wants_body(self, call: Call, plan: Plan) -> bool:
        return plan.merges or self.registry.has_sets

    def join(self, call: Call, plan: Plan, body: bytes | None) -> ReplicaHooks | None:
        if call.from_peer is not None and carries_internal_headers(call.request.headers):
            marker = read_internal_headers(call.request.headers)
            if marker is None:
                raise Refused(400, "Bad Request", "malformed replica headers from a peer proxy")
            if plan.is_local:
                return ReplicaHooks(self.parts, call, plan, (), marker)
        sets = self.involved_sets(call.path, body)
        if plan.merges or sets:
            return ReplicaHooks(self.parts, call, plan, sets)
        return None

    async def summary(self, queue_limit: int = 20) -> dict[str, Any]:
        """Sets per service and writes queued per target site (the operator's console)."""
        pending = await asyncio.to_thread(self.registry.pending)
        sets: dict[str, int] = {}
        for replica_set in self.registry.sets():
            sets[replica_set.service] = sets.get(replica_set.service, 0) + 1
        queued: dict[str, int] = {}
        for op in pending:
            queued[op.target] = queued.get(op.target, 0) + 1
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
