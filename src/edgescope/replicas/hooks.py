"""The proxy side of replicated resources: the calls ``SiteProxy`` makes at fixed points.

Neighbours: ``proxy/server.py`` builds one :class:`ReplicaHooks` per site (when it has a
state dir, see :func:`open_replicas`) and hands every routed call to
:meth:`ReplicaHooks.route`, which picks a ``serve_*`` function of :mod:`fanout`. The hooks
decide with the pure modules (:mod:`translate`, :mod:`collapse`, :mod:`record`, the LWW
rule of :mod:`model`), store with the :mod:`registry`, and leave record pushes, the internal
endpoints and the replay of queued writes to :mod:`peers`.

Hook points (called from :mod:`fanout`):

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
import weakref
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from edgescope.lang import SiteRef, unparse
from edgescope.proxy.carriers import ScopeMemory
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.dispatch import Call, Dispatcher
from edgescope.proxy.forward import Upstream
from edgescope.proxy.responses import ErrorCode, error_body, error_response
from edgescope.proxy.route import Plan, branch_scope
from edgescope.replicas import fanout, peers
from edgescope.replicas.collapse import collapse_collection
from edgescope.replicas.fanout import (
    REPLAYED_HEADER,
    SUPERSEDED,
    BranchReply,
)
from edgescope.replicas.model import Hlc, PendingOp, ReplicaSet, lww_wins
from edgescope.replicas.record import record_create
from edgescope.replicas.registry import Registry
from edgescope.replicas.translate import candidates, translate_request, translation_table


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
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

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
                return await fanout.serve_peer_write(self, call, plan)
        if plan.merges:
            return await fanout.serve_fan_out(self, call, plan, memory)
        if isinstance(plan.expr, SiteRef) and self.registry.has_sets:
            return await fanout.serve_single(self, call, plan, memory, plan.expr.name)
        if self.registry.has_sets:  # '|'
            return await fanout.serve_fall_back(self, call, plan, memory)
        return await self.dispatcher.run(call, plan, memory)

    async def admit_peer(self, call: Call) -> web.StreamResponse | None:
        """Delegated identity for a peer's call served here outside ``Dispatcher.run``.

        A Keystone call from a peer that carries a user token of another site goes through
        the proxy's delegation check (``proxy/delegation.py``) exactly as in
        ``Dispatcher.run``; returns the refusal, or None with ``call.acting_token`` set.
        """
        if call.service != "identity" or call.from_peer is None:
            return None
        verdict = await self.dispatcher.delegation.admit(
            call.request.headers,
            call.request.method,
            call.path,
            from_peer=call.from_peer,
            hops=call.hops,
            request_id=call.request_id,
        )
        if verdict.refusal is not None:
            call.chosen = [self.site]
            return verdict.refusal
        call.acting_token = verdict.acting_token
        return None

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
        """Apply a replicated write once (by ``key``) and only if it wins by LWW.

        Writes to one set (or, for a create, with one key) are serialised, so a replay
        that races a slow live branch with the same key still applies once.
        """
        lock_name = handle or key or ""
        lock = self._locks.get(lock_name)
        if lock is None:
            lock = self._locks[lock_name] = asyncio.Lock()
        async with lock:
            if key is not None:
                prior = await asyncio.to_thread(self.registry.applied, key)
                if prior is not None:
                    status, body, headers = prior
                    return BranchReply(self.site, status, {**headers, REPLAYED_HEADER: "1"}, body)
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


STATE_DIR_ENV = "EDGESCOPE_REPLICAS_DIR"
"""Root of the registries for ``edgescope proxy run``: ``$EDGESCOPE_REPLICAS_DIR/<site>/``."""


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
