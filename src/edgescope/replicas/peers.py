"""Replica traffic between proxies: record pushes, the internal endpoints, replay of queued writes.

Every call goes through the proxy's :class:`~edgescope.proxy.extension.ProxyServices`
(signed by the proxy, through its breakers); the endpoints accept signed peers only.

    POST /edgescope/replicas/sets   {"set": {...}} or {"delete": {...}}   (signed peers)
    GET  /edgescope/replicas        this site's replica sets and pending queue (JSON)

A replicated write sent to a member site carries ``X-Edgescope-Replica`` (handle),
``X-Edgescope-Hlc`` (stamp) and ``X-Edgescope-Idempotency-Key`` (applied at most once there).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

from aiohttp import web

from edgescope.aio import spawn
from edgescope.errors import Refused, SiteUnreachable
from edgescope.proxy.body import read_capped
from edgescope.proxy.call import BranchReply
from edgescope.proxy.carriers import REQUEST_ID_HEADER, SCOPE_HEADER, new_request_id
from edgescope.proxy.extension import ProxyServices
from edgescope.proxy.protocol import (
    HLC_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    PEER_PATH,
    REPLICA_HEADER,
    REPLICA_SETS_PATH,
    REPLICAS_PATH,
    UNDO_NAME_HEADER,
    UNDO_OF_HEADER,
    ForgedHop,
    content_digest,
)
from edgescope.proxy.responses import ErrorCode, error_body, error_response, refusal_response
from edgescope.replicas.checks import check_push, parse_push
from edgescope.replicas.clock import Clock, ClockTooFarAhead
from edgescope.replicas.guard import Claims, WriteGuard
from edgescope.replicas.indoubt import create_lookup, made_lookup, undo_name
from edgescope.replicas.model import Hlc, MemberState, PendingOp, ReplicaSet
from edgescope.replicas.record import created_id
from edgescope.replicas.registry import IdCollision, Registry, RegistryError
from edgescope.replicas.translate import translate_request, translation_table
from edgescope.replicas.validate import InvalidRecord

log = logging.getLogger("edgescope.replicas")
INTERNAL_HEADERS = (REPLICA_HEADER, HLC_HEADER, IDEMPOTENCY_KEY_HEADER)
PUSH_TIMEOUT = 2.0
APPLIED_RETENTION = 30 * 24 * 3600.0
"""Seconds an applied idempotency key (and its answer) is kept: a replay of the same write
later than this would apply it again (docs/semantics.md)."""
PRUNE_EVERY = 3600.0
STOP_GRACE = 5.0
"""Seconds a stopping proxy lets its replay round end before cancelling it."""
LISTING_LIMIT = 1000
MAX_PUSH_BYTES = 256 * 1024
"""Largest record push body read (413 past it): a valid record (at most 64 members, each field
at most 255 characters) is far smaller; the body is read with this cap, never whole first."""
PUSH_IDLE = 10.0
"""Seconds a record push's body may pause (a signed peer that stalls it is answered 408)."""
"""Most queued writes one ``GET /edgescope/replicas`` lists (their count is in the metrics)."""
_REPLAY_HEADERS = ("content-type", "accept", "x-auth-token", "openstack-api-version")

Services = Callable[[], ProxyServices]
"""The proxy's services, once the extension is started."""


async def _capped_body(request: web.Request, limit: int) -> bytes | None:
    """The request's whole body, or None past ``limit`` bytes (checked before and while read).
    Raises TimeoutError when it pauses for over :data:`PUSH_IDLE` seconds."""
    if request.content_length is not None and request.content_length > limit:
        return None
    return await read_capped(request.content.iter_any(), limit, PUSH_IDLE)


async def check_operator(
    services: ProxyServices, request: web.Request, roles: frozenset[str], what: str
) -> None:
    """Let ``request`` through when its token holds one of ``roles`` at this site."""
    token = request.headers.get("X-Auth-Token", "")
    if not token:
        raise Refused(401, f"{what} needs an operator's X-Auth-Token")
    try:
        held = await services.token_roles(token)
    except SiteUnreachable as exc:
        raise Refused(503, f"cannot validate the token here: {exc.reason}") from None
    if not held & roles:
        wanted = " or ".join(sorted(roles)) or "(none configured)"
        raise Refused(403, f"{what} needs role {wanted} at {services.site}")


def carries_internal_headers(headers: Mapping[str, str]) -> bool:
    return any(name in headers for name in INTERNAL_HEADERS)


def internal_headers(handle: str | None, hlc: Hlc, key: str) -> dict[str, str]:
    headers = {HLC_HEADER: hlc.encode(), IDEMPOTENCY_KEY_HEADER: key}
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
    key = headers.get(IDEMPOTENCY_KEY_HEADER)
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


class RecordLink:
    """Keeps replica-set records here and at every member site."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        services: Services,
        operator_roles: frozenset[str] = frozenset({"admin"}),
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.services = services
        self.operator_roles = operator_roles
        self.refused_pushes = 0
        """Record pushes refused (not a member, malformed, colliding ids): a metric."""

    async def store_and_push(self, replica_set: ReplicaSet, *, new: bool = False) -> None:
        """Store ``replica_set`` (``new``: a create, refused when its ids or handle are
        another set's) and push it to every member; raises IdCollision, InvalidRecord."""
        await asyncio.to_thread(self.registry.put_set, replica_set, new=new)
        await self._push_all(replica_set, {"set": replica_set.to_json()})

    async def delete_and_push(self, replica_set: ReplicaSet) -> None:
        await asyncio.to_thread(self.registry.delete_set, replica_set.handle)
        await self._push_all(replica_set, {"delete": replica_set.to_json()})

    async def mark_gone(self, replica_set: ReplicaSet, site: str) -> ReplicaSet:
        """Record that ``site``'s member was deleted; drop the set once all are gone."""
        updated = await asyncio.to_thread(
            self.registry.mark_gone, replica_set.handle, site, self.clock.now()
        )
        if updated is None:
            return replica_set
        await (self.delete_and_push if updated.all_gone else self.store_and_push)(updated)
        return updated

    async def _push_all(self, replica_set: ReplicaSet, payload: dict[str, object]) -> None:
        """Best effort: a member that misses a push gets the record with the next one."""
        services = self.services()
        data = json.dumps(payload).encode()
        targets = [s for s in replica_set.sites if s != services.site and services.is_peer(s)]
        await asyncio.gather(*(self._push(services, site, data) for site in targets))

    async def _push(self, services: ProxyServices, site: str, data: bytes) -> None:
        headers = {"Content-Type": "application/json", REQUEST_ID_HEADER: new_request_id()}
        try:
            reply = await services.send_to_peer(
                site, "POST", REPLICA_SETS_PATH, headers=headers, body=data, timeout=PUSH_TIMEOUT
            )
        except SiteUnreachable as exc:
            log.warning("replica record push to %s failed: %s", site, exc.reason)
            return
        if reply.status >= 300:
            log.warning("replica record push to %s answered %s", site, reply.status)

    def routes(self) -> list[web.RouteDef]:
        return [web.post(REPLICA_SETS_PATH, self._receive), web.get(REPLICAS_PATH, self._listing)]

    async def _receive(self, request: web.Request) -> web.Response:
        """A member's record push: checked whole before anything is stored (checks.py)."""
        request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
        try:
            marker = self.services().verify_peer(request)
        except ForgedHop as exc:
            return error_response(ErrorCode.HOP_FORBIDDEN, str(exc), request_id=request_id)
        try:
            data = await _capped_body(request, MAX_PUSH_BYTES)
        except TimeoutError:
            message = f"a replica record push paused for over {PUSH_IDLE:g} s"
            refusal = Refused(408, message, title="Request Body Incomplete")
            return refusal_response(refusal, request_id)
        if data is None:
            message = f"a replica record push is at most {MAX_PUSH_BYTES} bytes"
            return refusal_response(
                Refused(413, message, title="Request Entity Too Large"), request_id
            )
        if marker.content_digest != content_digest(data):
            message = "the record's body is not the one its sender signed"
            return error_response(ErrorCode.HOP_FORBIDDEN, message, request_id=request_id)
        try:
            done = await self.receive_push(marker.peer, data)
        except (InvalidRecord, ClockTooFarAhead) as exc:
            self.refused_pushes += 1
            log.warning("record push from %s refused: %s", marker.peer, exc)
            return error_response(
                ErrorCode.BAD_REQUEST, f"malformed replica record: {exc}", request_id=request_id
            )
        except IdCollision as exc:  # a peer sees a plain 409 Conflict, not the client's title
            self.refused_pushes += 1
            log.warning("record push from %s refused: %s", marker.peer, exc)
            return refusal_response(Refused(409, str(exc)), request_id)
        except (Refused, RegistryError) as exc:
            self.refused_pushes += 1
            log.warning("record push from %s refused: %s", marker.peer, exc)
            return refusal_response(exc, request_id)
        return web.json_response({"stored": done, "site": self.clock.site})

    async def receive_push(self, peer: str, data: bytes) -> bool:
        """Check and store one push of the signed ``peer``; True when stored. Raises
        Refused, InvalidRecord, ClockTooFarAhead or IdCollision (nothing stored)."""
        deleting, pushed = parse_push(data)
        stored = await asyncio.to_thread(self.registry.fresh, pushed.handle)
        check_push(peer, self.clock.site, pushed, stored, deleting=deleting)
        if pushed.version is not None:
            self.clock.observe(pushed.version)
        if not deleting:
            return await asyncio.to_thread(self.registry.put_set, pushed)
        if stored is None:
            return False
        await asyncio.to_thread(self.registry.delete_set, pushed.handle)
        return True

    async def _listing(self, request: web.Request) -> web.Response:
        """Sets and queue: a signed peer sees the sets it is a member of and the writes
        queued for it; an operator (a token with ``operator_roles``) sees everything."""
        services = self.services()
        peer: str | None = None
        try:
            peer = services.verify_peer(request).peer
        except ForgedHop:
            try:
                await check_operator(services, request, self.operator_roles, "listing replicas")
            except Refused as refusal:
                request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
                return refusal_response(refusal, request_id)
        pending = await asyncio.to_thread(self.registry.pending, peer, limit=LISTING_LIMIT)
        sets = self.registry.sets()
        doc: dict[str, object] = {"site": self.clock.site}
        if peer is not None:
            sets = visible_to(peer, sets)
        else:
            doc["quarantine"] = await asyncio.to_thread(self.registry.quarantine)
        doc["sets"] = [s.to_json() for s in sets]
        doc["pending"] = [p.summary() for p in pending]
        return web.json_response(doc)


class Replayer:
    """Sends queued writes to their site, in queue order per site, once it answers again.

    Runs every ``interval`` seconds and whenever something is queued. A site that is still
    unreachable stops its queue until the next round; the breaker skips a site known to be
    down without waiting. A write it answers 5xx is retried next round, and holds only the
    later writes to the same replica set (or, outside any, the same path), so the order
    per set is kept: one a site refuses for good (a request that trips a backend bug)
    never holds everyone's writes to it. When
    several proxies of the site share the queue, one of them replays a target's queue at a
    time (the lease ``replay:<site>``); if it dies, another takes the queue over once the
    lease runs out, and resends the write in flight with its key (applied once there).
    """

    def __init__(self, link: RecordLink, interval: float, claims: Claims | None = None) -> None:
        self.link = link
        self.registry = link.registry
        self.interval = interval
        self.claims = claims or Claims(owner=f"{link.clock.site}/{id(self):x}")
        self.guard: WriteGuard | None = None
        """This site's write guard: a write queued for this site itself is applied through it."""
        self._pruned_at = 0.0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._round = asyncio.Lock()
        self._stopping = False

    def start(self) -> None:
        if self.interval > 0:
            self._task = spawn(self._loop(), name=f"edgescope-replay-{self.link.clock.site}")

    async def stop(self) -> None:
        """Let the round in progress end (then cancel it), and give up this proxy's leases."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:  # a cancelled round could still take a lease in its thread
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
        # A lease held at the cancel would keep the queue from the next proxy until it ran out.
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.registry.release_all, self.claims.owner)

    def wake(self) -> None:
        self._wake.set()

    async def _loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            if self._stopping:
                return
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
        return await asyncio.to_thread(self.registry.prune_applied, now - APPLIED_RETENTION)

    async def replay_once(self) -> int:
        """One round over every target's queue; returns how many ops finished."""
        async with self._round:
            finished = 0
            for target in await asyncio.to_thread(self.registry.targets):
                finished += await self._replay_queue(target)
            return finished

    async def _replay_queue(self, target: str) -> int:
        """Replay ``target``'s queue in order while this proxy holds its lease."""
        lease, owner = f"replay:{target}", self.claims.owner
        seconds = self.claims.lease_seconds
        registry = self.registry
        if not await asyncio.to_thread(registry.acquire, lease, owner, seconds):
            return 0  # another proxy of the site replays it
        finished = 0
        held: set[str] = set()
        """Sets (or, outside any, paths; an undo: its own key) whose earlier write the site
        refused for now."""
        try:
            for queued in await asyncio.to_thread(registry.pending, target):
                order = queued.key if is_undo(queued) else queued.handle or queued.path
                if order in held:
                    continue  # after its set's earlier write, in order
                op = await asyncio.to_thread(registry.load, queued.key)  # one body at a time
                if op is None or op.state != "queued":
                    continue  # finished meanwhile by another proxy, or quarantined
                done = await self._replay(op)
                if done is None:
                    break  # unreachable: the rest waits for the next round too
                if done:
                    finished += 1
                else:
                    held.add(order)
                if not await asyncio.to_thread(registry.acquire, lease, owner, seconds):
                    log.warning("lost the replay lease of %s to another proxy", target)
                    break
        finally:
            await asyncio.to_thread(registry.release, lease, owner)
        return finished

    async def send(self, op: PendingOp) -> BranchReply:
        """Send ``op`` to its site (a signed peer hop, ids translated for that site).

        A write queued for this site itself (its own branch failed before any answer: the
        backend restarting, the registry locked) is applied here, through the guard with the
        key the live branch used: it applies at most once, never as a hop to a "peer".
        """
        replica_set = await self._set_of(op)
        table = translation_table([replica_set], op.target) if replica_set else {}
        path, body = translate_request(op.path, op.body, table)
        services = self.link.services()
        if op.target == self.link.clock.site:
            return await self._apply_here(op, services, path, body)
        headers = {**op.headers, **internal_headers(op.handle, op.hlc, op.key)}
        return await services.send_to_peer(
            op.target, op.method, PEER_PATH + op.service + path, headers=headers, body=body
        )

    async def _apply_here(
        self, op: PendingOp, services: ProxyServices, path: str, body: bytes | None
    ) -> BranchReply:
        if self.guard is None:
            raise SiteUnreachable(op.target, "no write guard here to apply a queued write")
        scope = op.headers.get(SCOPE_HEADER)

        async def send() -> BranchReply:
            return await services.call_site(
                op.target, op.service, op.method, path, headers=op.headers, scope=scope, body=body
            )

        async def find(listing: str) -> BranchReply:
            return await services.call_site(
                op.target, op.service, "GET", listing, headers=op.headers, scope=scope
            )

        known = self.registry.lookup
        collection = path.partition("?")[0].rstrip("/")
        undo_of = op.headers.get(UNDO_OF_HEADER)
        if undo_of is not None and op.method == "DELETE":
            name = undo_name(op.headers.get(UNDO_NAME_HEADER))
            made = (
                made_lookup(find, op.target, collection, name, lambda i: known(i) is not None)
                if name is not None
                else None
            )

            async def delete(id_: str) -> BranchReply:
                target = f"{collection}/{quote(id_, safe='')}"
                return await services.call_site(
                    op.target, op.service, "DELETE", target, headers=op.headers, scope=scope
                )

            try:
                return await self.guard.undo_create(undo_of, delete, made)
            except (Refused, RegistryError) as exc:
                return _answered(op.target, exc)
        lookup = None
        if op.is_create:
            lookup = create_lookup(
                find, op.target, collection, body, lambda id_: known(id_) is not None
            )
        try:
            return await self.guard.guarded_write(op.handle, op.hlc, op.key, send, lookup)
        except (Refused, RegistryError) as exc:  # registry unavailable, write in progress
            return _answered(op.target, exc)

    async def _replay(self, op: PendingOp) -> bool | None:
        """True when ``op`` is finished (applied, superseded or refused for good), False
        when the site answered 5xx (retried later), None when it was unreachable."""
        registry = self.registry
        try:
            reply = await self.send(op)
        except SiteUnreachable as exc:
            await asyncio.to_thread(registry.retry_later, op.key, exc.reason)
            return None
        if reply.status >= 500:
            await asyncio.to_thread(registry.retry_later, op.key, f"answered {reply.status}")
            return False
        if reply.status >= 300:
            superseded = reply.status == 409 and b"Superseded" in reply.body
            await asyncio.to_thread(
                registry.finish,
                op.key,
                state="superseded" if superseded else "failed",
                error=reply.body[:300].decode("utf-8", "replace"),
            )
            return True
        await asyncio.to_thread(registry.finish, op.key)
        replica_set = await self._set_of(op)
        if replica_set is not None:
            try:
                await self._update_set(op, replica_set, created_id(reply.body, reply.headers))
            except (IdCollision, InvalidRecord) as exc:  # the member's answer is not recorded
                log.error("write %s applied at %s, its set not updated: %s", op.key, op.target, exc)
        return True

    async def _set_of(self, op: PendingOp) -> ReplicaSet | None:
        """The op's set as the database has it now (another proxy may have changed it)."""
        return await asyncio.to_thread(self.registry.fresh, op.handle) if op.handle else None

    async def _update_set(self, op: PendingOp, replica_set: ReplicaSet, new_id: str | None) -> None:
        if op.is_create and op.path.split("?", 1)[0] == replica_set.collection:
            member = replica_set.member(op.target)
            if new_id is not None and member is not None and member.state is MemberState.PENDING:
                updated = replica_set.with_member(op.target, new_id, MemberState.PRESENT)
                await self.link.store_and_push(updated.versioned(self.link.clock.now()))
        elif op.method == "DELETE":
            await self.link.mark_gone(replica_set, op.target)


def is_undo(op: PendingOp) -> bool:
    """An undo of a failed create (``<key>:undo:<site>``, ``hooks._op``): it deletes what
    that create alone made, so a 5xx to it holds no other write (not the others' undos
    queued for the same collection)."""
    return op.method == "DELETE" and op.handle is None and ":undo:" in op.key


def _answered(site: str, error: Refused | RegistryError) -> BranchReply:
    """``error`` as the answer of ``site``'s branch, as a peer would have answered it."""
    status, title, message = error.answer() or (500, "Internal Proxy Error", type(error).__name__)
    body = json.dumps(error_body(status, title, message)).encode()
    return BranchReply(site, status, {"Content-Type": "application/json"}, body)


def visible_to(peer: str, sets: list[ReplicaSet]) -> list[ReplicaSet]:
    """The sets a peer may see in this site's listing: those it is a member of."""
    return [s for s in sets if peer in s.sites]
