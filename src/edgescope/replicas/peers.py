"""Replica traffic between proxies: record pushes, internal endpoints, replay of queued writes.

Neighbours: :mod:`hooks` owns one :class:`PeerLink` (pushes replica-set records to member
sites), one :class:`Replayer` (sends queued writes once their site is reachable again) and
one :class:`Clock` (the site's hybrid logical clock). :func:`add_routes` mounts the internal
endpoint on the proxy's main listener. Every request between proxies is signed with the
proxy's hop marker (:mod:`edgescope.proxy.peer_auth`); unsigned ones are refused (403).

Headers of a replicated write sent to a member site (peer proxies only):
``X-Edgescope-Replica`` (handle), ``X-Edgescope-Hlc`` (stamp) and
``X-Edgescope-Idempotency-Key`` (applied at most once at that site).

    POST /edgescope/replicas/sets   {"set": {...}} or {"delete": {...}}   (signed)
    GET  /edgescope/replicas        this site's replica sets and pending queue (JSON)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aiohttp import web
from yarl import URL

from edgescope.aio import spawn
from edgescope.errors import SiteUnreachable
from edgescope.proxy.breaker import Breaker
from edgescope.proxy.carriers import REQUEST_ID_HEADER, new_request_id
from edgescope.proxy.config import RESERVED_PREFIX, ProxyConfig
from edgescope.proxy.forward import Upstream, read_body
from edgescope.proxy.peer_auth import ForgedHop, sign_hop, verify_hop
from edgescope.proxy.responses import ErrorCode, error_response
from edgescope.replicas.model import Hlc, MemberState, PendingOp, ReplicaSet, observe, tick
from edgescope.replicas.record import created_id
from edgescope.replicas.translate import translate_request, translation_table

if TYPE_CHECKING:
    from edgescope.replicas.hooks import ReplicaHooks

log = logging.getLogger("edgescope.replicas")
REPLICA_HEADER = "X-Edgescope-Replica"
HLC_HEADER = "X-Edgescope-Hlc"
KEY_HEADER = "X-Edgescope-Idempotency-Key"
INTERNAL_HEADERS = (REPLICA_HEADER, HLC_HEADER, KEY_HEADER)
SETS_PATH = f"{RESERVED_PREFIX}/replicas/sets"
LIST_PATH = f"{RESERVED_PREFIX}/replicas"
PEER_PATH = f"{RESERVED_PREFIX}/svc/"
PUSH_TIMEOUT = 2.0
_REPLAY_HEADERS = ("content-type", "accept", "x-auth-token", "openstack-api-version")


APPLIED_RETENTION = 30 * 24 * 3600.0
"""Seconds an applied idempotency key (and its answer) is kept: a replay of the same write
later than this would apply it again (docs/semantics.md)."""
PRUNE_EVERY = 3600.0


class Clock:
    """The site's hybrid logical clock (wall time in ms from ``time.time``)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.last: Hlc | None = None

    def now(self) -> Hlc:
        self.last = tick(self.last, now_ms=time.time_ns() // 1_000_000, site=self.site)
        return self.last

    def observe(self, remote: Hlc) -> Hlc:
        self.last = observe(self.last, remote, now_ms=time.time_ns() // 1_000_000, site=self.site)
        return self.last


def carries_internal_headers(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in INTERNAL_HEADERS)


def internal_headers(handle: str | None, hlc: Hlc, key: str) -> dict[str, str]:
    headers = {HLC_HEADER: hlc.encode(), KEY_HEADER: key}
    if handle is not None:
        headers[REPLICA_HEADER] = handle
    return headers


def read_internal_headers(
    headers: Mapping[str, str],
) -> tuple[str | None, Hlc, str | None] | None:
    """(handle, stamp, idempotency key) of a replicated write, None when malformed."""
    try:
        hlc = Hlc.parse(headers.get(HLC_HEADER, ""))
    except ValueError:
        return None
    key = headers.get(KEY_HEADER)
    if key is not None and not 0 < len(key) <= 200:
        return None
    return headers.get(REPLICA_HEADER), hlc, key


def replay_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The request headers a queued write keeps (content, auth, API microversions)."""
    return {
        name: value
        for name, value in headers.items()
        if name.lower() in _REPLAY_HEADERS or name.lower().endswith("-api-version")
    }


class PeerLink:
    """Signed proxy-to-proxy calls about replica sets."""

    def __init__(
        self, config: ProxyConfig, upstream: Upstream, breakers: dict[str, Breaker], clock: Clock
    ) -> None:
        self.config = config
        self.upstream = upstream
        self.breakers = breakers
        self.clock = clock

    async def push_set(self, replica_set: ReplicaSet) -> None:
        """Store the record at every member site (best effort; replay re-pushes later)."""
        await self._push_all(replica_set, {"set": replica_set.to_json()})

    async def push_delete(self, replica_set: ReplicaSet) -> None:
        await self._push_all(replica_set, {"delete": replica_set.to_json()})

    async def _push_all(self, replica_set: ReplicaSet, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        targets = [s for s in replica_set.sites if s != self.config.site and self.config.peer(s)]
        await asyncio.gather(*(self._push(site, data) for site in targets))

    async def _push(self, site: str, data: bytes) -> None:
        peer = self.config.peer(site)
        assert peer is not None
        headers = {"Content-Type": "application/json", REQUEST_ID_HEADER: new_request_id()}
        headers.update(
            sign_hop(self.config.secret, "POST", SETS_PATH, self.config.site, 1, now=time.time())
        )
        try:
            response = await self.upstream.open(
                site,
                "POST",
                URL(str(peer.url).rstrip("/") + SETS_PATH),
                headers=headers,
                body=data,
                connect_timeout=min(peer.connect_timeout, PUSH_TIMEOUT),
                read_timeout=PUSH_TIMEOUT,
            )
            await read_body(response, site, 64 * 1024)
            if response.status >= 300:
                log.warning("replica record push to %s answered %s", site, response.status)
        except SiteUnreachable as exc:
            log.warning("replica record push to %s failed: %s", site, exc.reason)

    async def send_op(
        self, op: PendingOp, path: str, body: bytes | None
    ) -> tuple[int, dict[str, str], bytes]:
        """Replay one queued write at its target site's proxy (a normal signed peer hop)."""
        peer = self.config.peer(op.target)
        if peer is None:
            raise SiteUnreachable(op.target, "no longer a configured peer")
        breaker = self.breakers[op.target]
        if not breaker.allow(now=time.monotonic()):
            raise SiteUnreachable(op.target, "circuit breaker open")
        full = PEER_PATH + op.service + path
        headers = dict(op.headers)
        headers[REQUEST_ID_HEADER] = new_request_id()
        headers.update(internal_headers(op.handle, op.hlc, op.key))
        if body:
            headers["Content-Length"] = str(len(body))
        headers.update(
            sign_hop(
                self.config.secret,
                op.method,
                full.split("?", 1)[0],
                self.config.site,
                1,
                now=time.time(),
            )
        )
        try:
            response = await self.upstream.open(
                op.target,
                op.method,
                URL(str(peer.url).rstrip("/") + full, encoded=True),
                headers=headers,
                body=body or None,
                connect_timeout=peer.connect_timeout,
                read_timeout=peer.read_timeout,
            )
            data = await read_body(response, op.target, self.config.limits.max_merge_bytes)
        except SiteUnreachable as exc:
            breaker.record_failure(now=time.monotonic(), reason=exc.reason)
            raise
        breaker.record_success()
        return response.status, dict(response.headers), data


def add_routes(app: web.Application, hooks: ReplicaHooks) -> None:
    async def receive(request: web.Request) -> web.Response:
        request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        try:
            marker = verify_hop(
                request.headers,
                "POST",
                SETS_PATH,
                hooks.config.secret,
                now=time.time(),
                window=hooks.config.limits.hop_window,
            )
            if marker is None:
                raise ForgedHop("replica records are accepted from signed peer proxies only")
        except ForgedHop as exc:
            return error_response(ErrorCode.HOP_FORBIDDEN, str(exc), request_id=request_id)
        try:
            payload = json.loads(await request.read())
            doc = payload.get("set") or payload["delete"]
            replica_set = ReplicaSet.from_json(doc)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return error_response(
                ErrorCode.BAD_REQUEST, f"malformed replica record: {exc}", request_id=request_id
            )
        if replica_set.version is not None:
            hooks.clock.observe(replica_set.version)
        if "set" in payload:
            stored = await asyncio.to_thread(hooks.registry.put_set, replica_set)
        else:
            await asyncio.to_thread(hooks.registry.delete_set, replica_set.handle)
            stored = True
        return web.json_response({"stored": stored, "site": hooks.site})

    async def listing(request: web.Request) -> web.Response:
        pending = await asyncio.to_thread(hooks.registry.pending)
        return web.json_response(
            {
                "site": hooks.site,
                "sets": [s.to_json() for s in hooks.registry.sets()],
                "pending": [p.summary() for p in pending],
            }
        )

    app.router.add_post(SETS_PATH, receive)
    app.router.add_get(LIST_PATH, listing)


class Replayer:
    """Sends queued writes to their site, in queue order per site, once it answers again.

    Runs every ``interval`` seconds and whenever something is queued. A site that is still
    unreachable (or answers 5xx) stops its queue until the next round, so the order per
    replica set is kept; the breaker skips a site known to be down without waiting.
    """

    def __init__(self, hooks: ReplicaHooks, interval: float) -> None:
        self.hooks = hooks
        self.interval = interval
        self._pruned_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()

    def start(self) -> None:
        if self.interval > 0:
            self._task = spawn(self._loop(), name=f"edgescope-replay-{self.hooks.site}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.replay_once()
                await self.prune_applied()
            except Exception:  # keep replaying; the queue is durable
                log.exception("replay round failed")

    async def prune_applied(self, now: float | None = None) -> int:
        """At most hourly: forget idempotency keys older than ``APPLIED_RETENTION``."""
        now = time.time() if now is None else now
        if now - self._pruned_at < PRUNE_EVERY:
            return 0
        self._pruned_at = now
        return await asyncio.to_thread(self.hooks.registry.prune_applied, now - APPLIED_RETENTION)

    async def replay_once(self) -> int:
        """One round over every target's queue; returns how many ops finished."""
        async with self._round:
            registry = self.hooks.registry
            finished = 0
            for target in await asyncio.to_thread(registry.targets):
                for op in await asyncio.to_thread(registry.pending, target):
                    if not await self._replay(op):
                        break
                    finished += 1
            return finished

    async def _replay(self, op: PendingOp) -> bool:
        """True when ``op`` is finished (applied, superseded or refused for good)."""
        registry = self.hooks.registry
        replica_set = registry.lookup(op.handle) if op.handle else None
        table = translation_table([replica_set], op.target) if replica_set else {}
        path, body = translate_request(op.path, op.body, table)
        try:
            status, headers, data = await self.hooks.peers.send_op(op, path, body)
        except SiteUnreachable as exc:
            await asyncio.to_thread(registry.retry_later, op.key, exc.reason)
            return False
        if status >= 500:
            await asyncio.to_thread(registry.retry_later, op.key, f"answered {status}")
            return False
        if status >= 300:
            state = "superseded" if status == 409 and b"Superseded" in data else "failed"
            await asyncio.to_thread(
                registry.finish, op.key, state=state, error=data[:300].decode("utf-8", "replace")
            )
            return True
        await asyncio.to_thread(registry.finish, op.key)
        if replica_set is not None:
            await self._update_set(op, replica_set, created_id(data, headers))
        return True

    async def _update_set(self, op: PendingOp, replica_set: ReplicaSet, new_id: str | None) -> None:
        hooks = self.hooks
        if op.is_create and op.path.split("?", 1)[0] == replica_set.collection:
            member = replica_set.member(op.target)
            if new_id is not None and member is not None and member.state is MemberState.PENDING:
                updated = replica_set.with_member(op.target, new_id, MemberState.PRESENT)
                await hooks.store_and_push(_versioned(updated, hooks.clock.now()))
        elif op.method == "DELETE":
            gone = await asyncio.to_thread(
                hooks.registry.mark_gone, replica_set.handle, op.target, hooks.clock.now()
            )
            if gone is not None:
                await (hooks.delete_and_push if gone.all_gone else hooks.store_and_push)(gone)


def _versioned(replica_set: ReplicaSet, version: Hlc) -> ReplicaSet:
    return ReplicaSet(
        replica_set.handle,
        replica_set.service,
        replica_set.collection,
        replica_set.members,
        version,
    )
