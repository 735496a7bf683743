"""The proxy side of replicated resources: the calls ``SiteProxy`` makes at fixed points.

Neighbours: ``proxy/server.py`` builds one :class:`ReplicaHooks` per site (when it has a
state dir) and hands every routed call to :meth:`ReplicaHooks.route`. This module decides
with the pure modules (:mod:`translate`, :mod:`collapse`, :mod:`record`, the LWW rule of
:mod:`model`), stores with the :mod:`registry`, sends branches with the proxy's own
``Dispatcher.send`` (same carriers, hop markers, breakers), and leaves record pushes, the
internal endpoints and the replay of queued writes to :mod:`peers`.

Hook points inside :meth:`route`:

* :meth:`translate_request` -- before each branch is sent: handle/member ids -> branch ids;
* :meth:`collapse` -- on a merged ``&`` list;
* :meth:`on_fanout_result` -- after an ``&`` write: record a set (create), drop or shrink it
  (delete);
* :meth:`enqueue_pending` -- eventual mode (``X-Edgescope-Mode: eventual``), for each
  unreachable member.

    hooks = ReplicaHooks(proxy.config, proxy.dispatcher, proxy.upstream, Registry(state_dir))
    response = await hooks.route(call, plan, memory)
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from aiohttp import web
from multidict import CIMultiDict

from edgescope.errors import SiteUnreachable
from edgescope.lang import And, SiteRef, evaluate, unparse
from edgescope.proxy.body import BodyTee, ReplayableBody
from edgescope.proxy.carriers import REQUEST_ID_HEADER, ScopeMemory
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.dispatch import Call, Dispatcher
from edgescope.proxy.forward import CHUNK, Upstream, end_to_end, read_body
from edgescope.proxy.merge import (
    SITES_HEADER,
    SiteResult,
    failure_response,
    merge_results,
)
from edgescope.proxy.responses import ErrorCode, error_body, error_response, json_error
from edgescope.proxy.route import Plan, branch_scope
from edgescope.replicas import peers
from edgescope.replicas.collapse import collapse_collection
from edgescope.replicas.model import Hlc, PendingOp, ReplicaSet, lww_wins
from edgescope.replicas.record import record_create
from edgescope.replicas.registry import Registry
from edgescope.replicas.translate import candidates, translate_request, translation_table

MODE_HEADER = "X-Edgescope-Mode"
PENDING_HEADER = "X-Edgescope-Pending"
SET_HEADER = "X-Edgescope-Replica-Set"
REPLAYED_HEADER = "X-Edgescope-Replayed"
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_TRANSLATED_BODY = 1024 * 1024
"""JSON request bodies up to this size are read whole and translated; larger ones stream."""
SUPERSEDED = "Superseded Write"


@dataclass(slots=True)
class BranchReply:
    site: str
    status: int
    headers: dict[str, str]
    body: bytes


class ReplicaHooks:
    """Replica-aware routing for one site proxy."""

    def __init__(
        self,
        config: ProxyConfig,
        dispatcher: Dispatcher,
        upstream: Upstream,
        registry: Registry,
        *,
        replay_interval: float = 1.0,
    ) -> None:
        self.config = config
        self.site = config.site
        self.dispatcher = dispatcher
        self.registry = registry
        self.clock = peers.Clock(config.site)
        self.peers = peers.PeerLink(config, upstream, dispatcher.breakers, self.clock)
        self.replayer = peers.Replayer(self, replay_interval)
        self._locks: dict[str, asyncio.Lock] = {}

    async def start(self) -> None:
        self.replayer.start()

    async def stop(self) -> None:
        await self.replayer.stop()
        await asyncio.to_thread(self.registry.close)

    def add_routes(self, app: web.Application) -> None:
        """The internal endpoints (signed peers only), before the proxy's catch-all route."""
        peers.add_routes(app, self)

    # -- the one entry point --------------------------------------------------------------

    async def route(self, call: Call, plan: Plan, memory: ScopeMemory) -> web.StreamResponse:
        """Serve ``call``: replica-aware where it matters, else the plain dispatcher."""
        request = call.request
        if peers.carries_internal_headers(request.headers):
            if call.from_peer is None:
                return error_response(
                    ErrorCode.HOP_FORBIDDEN,
                    "X-Edgescope-Replica/Hlc/Idempotency-Key are for peer proxies only",
                    request_id=call.request_id,
                )
            if plan.is_local:
                return await self._serve_peer_write(call, plan)
        if plan.merges:
            return await self._fan_out(call, plan, memory)
        if isinstance(plan.expr, SiteRef) and self.registry.has_sets:
            return await self._single(call, plan, memory, plan.expr.name)
        return await self.dispatcher.run(call, plan, memory)

    # -- hook points ------------------------------------------------------------------------

    def involved_sets(self, path: str, body: bytes | None) -> list[ReplicaSet]:
        found = {}
        for text in candidates(path, body):
            replica_set = self.registry.lookup(text)
            if replica_set is not None:
                found[replica_set.handle] = replica_set
        return list(found.values())

    def translate_request(
        self, sets: Sequence[ReplicaSet], site: str, path: str, body: bytes | None
    ) -> tuple[str, bytes | None]:
        """The (path, body) that the branch to ``site`` sends."""
        return translate_request(path, body, translation_table(sets, site))

    def collapse(self, body: bytes) -> bytes:
        """A merged ``&`` list with each replica set's members as one item."""
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return body
        if not isinstance(doc, dict):
            return body
        collapsed = collapse_collection(doc, self.registry.lookup)
        return body if collapsed == doc else json.dumps(collapsed).encode()

    async def on_fanout_result(
        self,
        call: Call,
        sets: Sequence[ReplicaSet],
        succeeded: Sequence[BranchReply],
        pending: Sequence[str],
        hlc: Hlc,
    ) -> ReplicaSet | None:
        """Record a set after a create, shrink or drop it after a delete; returns the set."""
        method = call.request.method
        if method == "POST" and not sets:
            created = [(r.site, r.body, r.headers) for r in succeeded if 200 <= r.status < 300]
            replica_set = record_create(
                call.service, call.path, created, pending=pending, version=hlc
            )
            if replica_set is not None and len(replica_set.members) > 1:
                await self.store_and_push(replica_set)
                return replica_set
            return None
        if method == "DELETE" and len(sets) == 1:
            replica_set = sets[0]
            for reply in succeeded:
                updated = await asyncio.to_thread(
                    self.registry.mark_gone, replica_set.handle, reply.site, self.clock.now()
                )
                replica_set = updated or replica_set
            if replica_set.all_gone:
                await self.delete_and_push(replica_set)
            else:
                await self.store_and_push(replica_set)
            return replica_set
        return None

    async def enqueue_pending(
        self,
        call: Call,
        plan: Plan,
        site: str,
        op_key: str,
        handle: str | None,
        body: bytes | None,
        hlc: Hlc,
    ) -> None:
        """Queue the write durably for the unreachable member ``site`` (handle form)."""
        scope = branch_scope(plan, call.service, site)
        headers = peers.replay_headers(call.request.headers)
        if scope is not None:
            headers["X-Scope"] = unparse(scope)
        op = PendingOp(
            key=f"{op_key}:{site}",
            handle=handle,
            target=site,
            service=call.service,
            method=call.request.method,
            path=call.path,
            body=body or b"",
            headers=headers,
            hlc=hlc,
        )
        await asyncio.to_thread(self.registry.enqueue, op)
        self.replayer.wake()

    async def store_and_push(self, replica_set: ReplicaSet) -> None:
        await asyncio.to_thread(self.registry.put_set, replica_set)
        await self.peers.push_set(replica_set)

    async def delete_and_push(self, replica_set: ReplicaSet) -> None:
        await asyncio.to_thread(self.registry.delete_set, replica_set.handle)
        await self.peers.push_delete(replica_set)

    # -- guarded writes (LWW + idempotency), at the site that applies them ---------------

    async def guarded_write(
        self,
        handle: str | None,
        hlc: Hlc,
        key: str | None,
        send: Callable[[], Awaitable[BranchReply]],
    ) -> BranchReply:
        """Apply a replicated write once (by ``key``) and only if it wins by LWW."""
        if key is not None:
            prior = await asyncio.to_thread(self.registry.applied, key)
            if prior is not None:
                status, body, headers = prior
                return BranchReply(self.site, status, {**headers, REPLAYED_HEADER: "1"}, body)
        lock = self._locks.setdefault(handle or "", asyncio.Lock())
        async with lock:
            self.clock.observe(hlc)
            if handle is not None and self.registry.lookup(handle) is not None:
                last = await asyncio.to_thread(self.registry.last_write, handle)
                if not lww_wins(hlc, last):
                    assert last is not None
                    message = (
                        f"write stamped {hlc.encode()} lost to {last.encode()} at {self.site} "
                        "(last-writer-wins)"
                    )
                    body = json.dumps(error_body(409, SUPERSEDED, message)).encode()
                    reply = BranchReply(self.site, 409, {"Content-Type": "application/json"}, body)
                    if key is not None:
                        await asyncio.to_thread(
                            self.registry.record_applied, key, 409, body, reply.headers
                        )
                    return reply
            reply = await send()
            if 200 <= reply.status < 300:
                if handle is not None:
                    await asyncio.to_thread(self.registry.set_last_write, handle, hlc)
                if key is not None:
                    await asyncio.to_thread(
                        self.registry.record_applied, key, reply.status, reply.body, reply.headers
                    )
            return reply

    async def _serve_peer_write(self, call: Call, plan: Plan) -> web.StreamResponse:
        marker = peers.read_internal_headers(call.request.headers)
        if marker is None:
            return error_response(
                ErrorCode.BAD_REQUEST, "malformed replica headers", request_id=call.request_id
            )
        handle, hlc, key = marker
        body = await call.request.content.read() if call.request.body_exists else None

        async def send() -> BranchReply:
            response = await self.dispatcher.send(call, plan, self.site, _once(body))
            data = await read_body(response, self.site, self.config.limits.max_merge_bytes)
            headers = {k: v for k, v in end_to_end(response.headers).items()}
            return BranchReply(self.site, response.status, headers, data)

        try:
            reply = await self.guarded_write(handle, hlc, key, send)
        except SiteUnreachable as exc:
            return error_response(
                ErrorCode.SITE_UNREACHABLE, f"{call.service}: {exc}", request_id=call.request_id
            )
        return _response(reply, call.request_id)

    # -- routing ----------------------------------------------------------------------------

    async def _single(
        self, call: Call, plan: Plan, memory: ScopeMemory, site: str
    ) -> web.StreamResponse:
        """One site: translate ids in the path (bodies stream untouched); track deletes."""
        sets = self.involved_sets(call.path, None)
        if not sets:
            return await self.dispatcher.run(call, plan, memory)
        path, _ = self.translate_request(sets, site, call.path, None)
        call.path = path
        if call.request.method != "DELETE" or call.from_peer is not None or len(sets) != 1:
            return await self.dispatcher.run(call, plan, memory)
        # A delete at one site: answer only once the set records that member as gone.
        body = call.request.content.iter_chunked(CHUNK) if call.request.body_exists else None
        try:
            response = await self.dispatcher.send(call, plan, site, body)
            data = await read_body(response, site, self.config.limits.max_merge_bytes)
        except SiteUnreachable as exc:
            return error_response(
                ErrorCode.SITE_UNREACHABLE,
                f"{call.service}: {exc}",
                request_id=call.request_id,
                site=site,
            )
        if 200 <= response.status < 300:
            updated = await asyncio.to_thread(
                self.registry.mark_gone, sets[0].handle, site, self.clock.now()
            )
            if updated is not None:
                await (self.delete_and_push if updated.all_gone else self.store_and_push)(updated)
        reply = BranchReply(site, response.status, dict(end_to_end(response.headers)), data)
        return _response(reply, call.request_id)

    async def _fan_out(self, call: Call, plan: Plan, memory: ScopeMemory) -> web.StreamResponse:
        request = call.request
        body: bytes | None = None
        streamed: Callable[[str], AsyncIterable[bytes] | None] = lambda site: None  # noqa: E731
        tee: BodyTee | None = None
        spool: ReplayableBody | None = None
        if request.body_exists:
            if _small_json(request):
                body = await request.content.read()  # not .read(): clone() must still work
            else:
                source = request.content.iter_chunked(CHUNK)
                sites = list(dict.fromkeys(plan.sites))
                if isinstance(plan.expr, And) and all(
                    isinstance(o, SiteRef) for o in plan.expr.operands
                ):
                    tee = BodyTee(source, len(sites))
                    streamed = {s: tee.reader(i) for i, s in enumerate(sites)}.get
                else:
                    spool = ReplayableBody(source)
                    async for _ in spool.replay():
                        pass
                    streamed = lambda site: spool.replay()  # noqa: E731
        sets = self.involved_sets(call.path, body)
        method = request.method
        is_write = method in WRITES
        op_key = uuid.uuid4().hex if is_write else ""
        hlc = self.clock.now()
        handle = sets[0].handle if len(sets) == 1 and method != "POST" else None
        if len(sets) == 1 and method == "POST":
            handle = sets[0].handle  # an action on the set (e.g. POST .../action)

        async def branch(site: str) -> BranchReply:
            path, branch_body = self.translate_request(sets, site, call.path, body)
            headers = end_to_end(request.headers)
            for name in peers.INTERNAL_HEADERS:
                headers.popall(name, None)
            if branch_body is not None:
                headers["Content-Length"] = str(len(branch_body))
            if is_write and site != self.site:
                headers.update(peers.internal_headers(handle, hlc, f"{op_key}:{site}"))
            branch_call = replace(call, request=request.clone(headers=headers), path=path)
            payload = _once(branch_body) if body is not None else streamed(site)

            async def send() -> BranchReply:
                response = await self.dispatcher.send(branch_call, plan, site, payload)
                data = await read_body(response, site, self.config.limits.max_merge_bytes)
                return BranchReply(site, response.status, dict(response.headers), data)

            if is_write and site == self.site:
                return await self.guarded_write(handle, hlc, f"{op_key}:{site}", send)
            return await send()

        try:
            outcome = await evaluate(
                plan.expr, branch, lambda r: bool(self.dispatcher.policy(r.status))
            )
        finally:
            if tee is not None:
                await tee.aclose()
            if spool is not None:
                spool.close()
        results = _site_results(outcome.attempts)
        call.chosen = [r.site for r in results]
        unreachable = [r.site for r in results if r.failed and r.status is None]
        http_failed = [r for r in results if r.failed and r.status is not None]
        succeeded: list[BranchReply] = [
            a.result for a in outcome.attempts if a.error is None and not a.failed and a.result
        ]
        eventual = request.headers.get(MODE_HEADER, "").strip().lower() == "eventual"
        degraded = bool(
            not outcome.ok
            and eventual
            and is_write
            and succeeded
            and not http_failed
            and all(self.config.peer(s) is not None for s in unreachable)
        )
        if not outcome.ok and not degraded:
            merged = failure_response(results, call.service, "&")
            response = json_error(json.loads(merged.body), merged.status, call.request_id)
            response.headers[SITES_HEADER] = merged.headers[SITES_HEADER]
            return response
        pending = unreachable if degraded else []
        replica_set = None
        if is_write:
            replica_set = await self.on_fanout_result(call, sets, succeeded, pending, hlc)
        for site in pending:
            queued_handle = handle or (replica_set.handle if replica_set else None)
            await self.enqueue_pending(call, plan, site, op_key, queued_handle, body, hlc)
        winners = [r for r in results if not r.failed]
        merged = merge_results(winners)
        out_body = self.collapse(merged.body) if method == "GET" else merged.body
        headers = merged.headers
        headers[SITES_HEADER] = ", ".join(
            f"{r.site}={'pending' if r.site in pending else r.label}" for r in results
        )
        if pending:
            headers[PENDING_HEADER] = ", ".join(pending)
        if replica_set is not None:
            headers[SET_HEADER] = replica_set.handle
        headers.setdefault(REQUEST_ID_HEADER, call.request_id)
        return web.Response(status=merged.status, body=out_body, headers=headers)


def _site_results(attempts: Sequence[object]) -> list[SiteResult]:
    results = []
    for attempt in attempts:
        error = getattr(attempt, "error", None)
        site = str(getattr(attempt, "site", "?"))
        if error is not None:
            reason = getattr(error, "reason", None) or str(error)
            results.append(SiteResult(site, None, error=reason, failed=True))
            continue
        reply: BranchReply = getattr(attempt, "result")  # noqa: B009
        results.append(
            SiteResult(
                reply.site,
                reply.status,
                reply.body,
                reply.headers,
                failed=bool(getattr(attempt, "failed", False)),
            )
        )
    return results


def _small_json(request: web.Request) -> bool:
    length = request.content_length
    content_type = request.headers.get("Content-Type", "")
    return (
        length is not None
        and length <= MAX_TRANSLATED_BODY
        and ("json" in content_type.lower() or not content_type)
    )


def _once(body: bytes | None) -> AsyncIterator[bytes] | None:
    """``body`` as a one-chunk stream (None for no body, so no chunked framing is sent)."""
    if not body:
        return None

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    return chunks()


def _response(reply: BranchReply, request_id: str) -> web.Response:
    headers: CIMultiDict[str] = CIMultiDict(
        (k, v) for k, v in reply.headers.items() if k.lower() != "content-length"
    )
    headers.setdefault(REQUEST_ID_HEADER, request_id)
    return web.Response(status=reply.status, body=reply.body, headers=headers)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


STATE_DIR_ENV = "EDGESCOPE_STATE_DIR"
"""Where ``edgescope proxy run`` keeps per-site state: ``$EDGESCOPE_STATE_DIR/<site>/``."""


def open_replicas(
    config: ProxyConfig,
    dispatcher: Dispatcher,
    upstream: Upstream,
    state_dir: str | Path | None = None,
) -> ReplicaHooks | None:
    """The site's hooks with its registry, or None when no state dir is configured."""
    if state_dir is None:
        root = os.environ.get(STATE_DIR_ENV)
        if not root:
            return None
        state_dir = Path(root) / config.site
    return ReplicaHooks(config, dispatcher, upstream, Registry(state_dir))
