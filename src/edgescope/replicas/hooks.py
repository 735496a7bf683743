"""One call's part in replicated resources: the proxy's ``CallHooks`` for replicas.

:class:`~edgescope.replicas.extension.Replicas` makes a :class:`ReplicaHooks` for each call
that involves replica sets, is an ``&``, or is a replicated write from a peer:

* ``branch`` -- replica ids (handle or member id) in the path and small JSON bodies become
  the branch site's own member id; an ``&`` write to a peer gets the replica markers;
* ``apply_local`` -- a write applied here goes through the idempotency key and the
  last-writer-wins rule (:class:`~edgescope.replicas.guard.WriteGuard`);
* ``record`` -- after an ``&`` create: a new set, stored and pushed to every member; after a
  delete: the member marked gone; in eventual mode, a queued write per unreachable member;
* ``collapse`` -- a merged ``&`` list shows each set once, named by its handle.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import quote

from edgescope.errors import Refused, SiteUnreachable
from edgescope.jsondoc import json_or_none
from edgescope.lang import SiteRef, unparse
from edgescope.proxy.call import BranchReply, BranchRequest, Call
from edgescope.proxy.carriers import SCOPE_HEADER
from edgescope.proxy.extension import Finished, Recorded, SendBranch
from edgescope.proxy.identity import is_identity
from edgescope.proxy.outcome import Verdict
from edgescope.proxy.protocol import SET_HEADER, UNDO_NAME_HEADER, UNDO_OF_HEADER
from edgescope.proxy.route import Plan, branch_scope
from edgescope.replicas.clock import Clock
from edgescope.replicas.collapse import collapse_collection
from edgescope.replicas.guard import Made, WriteGuard
from edgescope.replicas.indoubt import (
    MAX_NAME,
    Lookup,
    create_lookup,
    created_name,
    made_lookup,
    undo_name,
)
from edgescope.replicas.members import merge_members
from edgescope.replicas.model import Hlc, PendingOp, ReplicaSet
from edgescope.replicas.peers import RecordLink, Replayer, internal_headers, replay_headers
from edgescope.replicas.record import created_id, record_create
from edgescope.replicas.registry import IdCollision, QueueFull, Registry
from edgescope.replicas.translate import path_candidates, translate_request, translation_table
from edgescope.replicas.validate import InvalidRecord

log = logging.getLogger("edgescope.replicas")
Marker = tuple[str | None, Hlc, str | None]
"""A replicated write's (handle, stamp, idempotency key), as a peer proxy sent it."""
UNDO_RETRY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds between the undo's DELETEs while a member answers 400 or 409: a resource still
being made may refuse to go (cinder: "Volume status must be available or error", while
the volume is 'creating', which takes a few seconds on Ceph)."""


@dataclass(frozen=True, slots=True)
class SiteReplicas:
    """One site's replica machinery, shared by the extension and every call's hooks."""

    site: str
    registry: Registry
    clock: Clock
    link: RecordLink
    guard: WriteGuard
    replayer: Replayer


class ReplicaHooks:
    """Replica-aware handling of one call."""

    def __init__(
        self,
        replicas: SiteReplicas,
        call: Call,
        plan: Plan,
        sets: Sequence[ReplicaSet],
        marker: Marker | None = None,
    ) -> None:
        self.replicas = replicas
        self.call = call
        self.plan = plan
        self.sets = tuple(sets)
        self.marker = marker
        self.fan_out_write = plan.merges and call.is_write
        in_path = path_candidates(call.path)
        self.addressed = tuple(s for s in self.sets if s.ids & in_path)
        """The sets the path addresses (a POST to a collection addresses none: a create)."""
        self.handle = self.addressed[0].handle if len(self.addressed) == 1 else None
        self.creating = self.fan_out_write and call.method == "POST" and not self.addressed
        last = call.path.partition("?")[0].rstrip("/").rsplit("/", 1)[-1]
        self.read_one = next(
            (s for s in self.addressed if last in s.ids and call.method == "GET"), None
        )
        """The set a GET reads as one resource (``GET /servers/<handle>``), if any."""
        self.op_key = uuid.uuid4().hex if self.fan_out_write else ""
        self.hlc = replicas.clock.now() if self.fan_out_write else None
        self.deleting = (
            not plan.merges
            and call.method == "DELETE"
            and call.from_peer is None
            and len(self.addressed) == 1
        )

    @property
    def reads_replies(self) -> bool:
        return self.marker is not None or self.deleting

    @property
    def queues_writes(self) -> bool:
        return self.fan_out_write

    def branch(self, request: BranchRequest) -> BranchRequest:
        request.path, request.body = self._translated(request.site, request.path, request.body)
        if self.fan_out_write and request.site != self.replicas.site:
            assert self.hlc is not None
            key = f"{self.op_key}:{request.site}"
            request.headers.update(internal_headers(self.handle, self.hlc, key))
        return request

    async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply:
        if self.marker is not None:
            handle, hlc, key = self.marker
            undo_of = self.call.request.headers.get(UNDO_OF_HEADER)
            if undo_of is not None and self.call.method == "DELETE":
                made = self._made(request)
                return await self.replicas.guard.undo_create(undo_of, self._deleter(request), made)
            lookup = self._lookup(request) if self.call.method == "POST" else None
            return await self.replicas.guard.guarded_write(handle, hlc, key, send, lookup)
        if self.fan_out_write:
            assert self.hlc is not None
            key = f"{self.op_key}:{request.site}"
            return await self.replicas.guard.guarded_write(self.handle, self.hlc, key, send)
        return await send()

    def _deleter(self, request: BranchRequest) -> Callable[[str], Awaitable[BranchReply]]:
        """DELETE ``<collection>/<id>`` at this site's backend (for an undo by key)."""
        call, site = self.call, self.replicas.site
        headers = self._backend_headers()
        scope = call.request.headers.get(SCOPE_HEADER)
        collection = request.path.partition("?")[0].rstrip("/")

        async def delete(id_: str) -> BranchReply:
            services = self.replicas.link.services()
            path = f"{collection}/{quote(id_, safe='')}"
            return await services.call_site(
                site, call.service, "DELETE", path, headers=headers, scope=scope
            )

        return delete

    def _lookup(self, request: BranchRequest) -> Lookup | None:
        """How a peer's create, taken over here in doubt, finds what it made (indoubt.py)."""
        collection = request.path.partition("?")[0].rstrip("/")
        site, body = self.replicas.site, request.body
        return create_lookup(self._finder(), site, collection, body, self._known)

    def _made(self, request: BranchRequest) -> Made | None:
        """How a peer's undo by key, of a create taken over here in doubt, finds what that
        create made: by the name the undo carries (``X-Edgescope-Undo-Name``)."""
        name = undo_name(self.call.request.headers.get(UNDO_NAME_HEADER))
        if name is None:
            return None
        collection = request.path.partition("?")[0].rstrip("/")
        return made_lookup(self._finder(), self.replicas.site, collection, name, self._known)

    def _known(self, id_: str) -> bool:
        """The id is a member of a replica set here (so made by no create in doubt)."""
        return self.replicas.registry.lookup(id_) is not None

    def _finder(self) -> Callable[[str], Awaitable[BranchReply]]:
        """``GET`` of a path at this site's backend, for a peer's write in doubt."""
        call, site = self.call, self.replicas.site
        headers = self._backend_headers()
        scope = call.request.headers.get(SCOPE_HEADER)

        async def find(path: str) -> BranchReply:
            services = self.replicas.link.services()
            return await services.call_site(
                site, call.service, "GET", path, headers=headers, scope=scope
            )

        return find

    def _backend_headers(self) -> dict[str, str]:
        """The headers of a call this proxy makes to its own backend for a peer's write (an
        undo by key, an in-doubt lookup): Keystone checks tokens itself, so a delegated call
        carries this site's acting token (as ``delegation.to_backend`` gives the write
        itself), not the peer's user token, which this Keystone refuses (401: a campaign of
        2026-12-07 left a user at Corte so)."""
        headers = replay_headers(self.call.request.headers)
        if self.call.acting_token is not None and is_identity(self.call.service):
            headers = {k: v for k, v in headers.items() if k.lower() != "x-auth-token"}
            headers["X-Auth-Token"] = self.call.acting_token
        return headers

    async def record(self, finished: Finished) -> Recorded:
        if self.deleting and finished.verdict is Verdict.OK:
            await self.replicas.link.mark_gone(self.addressed[0], finished.succeeded[0].site)
            return Recorded()
        if self.creating and finished.verdict is Verdict.FAILED and finished.succeeded:
            note = await self._undo(finished.succeeded)
            return Recorded(note=note + await self._undo_unanswered(finished.in_doubt))
        if not self.fan_out_write or finished.verdict not in (Verdict.OK, Verdict.DEGRADED):
            return Recorded()
        replica_set = await self._record_write(finished)
        handle = self.handle or (replica_set.handle if replica_set else None)
        for site in finished.pending:
            await self._enqueue(self._op(site, self.call.method, self.call.path, handle))
        return Recorded({SET_HEADER: replica_set.handle} if replica_set is not None else {})

    def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
        if self.call.method != "GET" or not self.replicas.registry.has_sets:
            return body
        if self.read_one is not None:
            answers = [(r.site, json_or_none(r.body)) for r in replies]
            return json.dumps(merge_members(self.read_one, answers)).encode()
        doc = json_or_none(body)
        if not isinstance(doc, dict):
            return body
        collapsed = collapse_collection(doc, self.replicas.registry.lookup)
        return body if collapsed == doc else json.dumps(collapsed).encode()

    async def _undo(self, created: Sequence[BranchReply]) -> str:
        """All or nothing: delete what a failed ``&`` create made; returns what was done."""
        collection = self.call.path.partition("?")[0].rstrip("/")
        done = []
        for reply in created:
            site, id_ = reply.site, created_id(reply.body, reply.headers)
            if id_ is None:
                done.append(f"{site}: created, not undone (its answer names no id)")
                continue
            path = f"{collection}/{quote(id_, safe='')}"
            op = self._op(site, "DELETE", path, None, key="undo")
            scope = op.headers.get(SCOPE_HEADER)
            try:
                for delay in (*UNDO_RETRY_DELAYS, None):
                    gone = await self.replicas.link.services().call_site(
                        site, op.service, "DELETE", path, headers=op.headers, scope=scope
                    )
                    if gone.status not in (400, 409) or delay is None:
                        break
                    await asyncio.sleep(delay)  # the member is still being made
            except SiteUnreachable as exc:
                await self._enqueue(op)
                done.append(f"{site}: {id_} to be deleted once reachable ({exc.reason})")
                continue
            if gone.status < 300 or gone.status == 404:
                done.append(f"{site}: {id_} deleted again")
            else:
                done.append(f"{site}: {id_} NOT deleted ({gone.status}), delete it by hand")
        log.warning("undid a failed '&' create (request %s): %s", self.call.request_id, done)
        return "all or nothing, undone: " + "; ".join(done)

    async def _undo_unanswered(self, sites: Sequence[str]) -> str:
        """A failed strict create's branches that gave no answer may still apply it: each is
        sent an undo of the create's key, queued (the member deletes what the key made, or
        keeps a tombstone so that a late arrival makes nothing)."""
        collection = self.call.path.partition("?")[0].rstrip("/")
        named = created_name(self._whole_body()) if sites else None
        for site in sites:
            op = self._op(site, "DELETE", collection, None, key="undo")
            op.headers[UNDO_OF_HEADER] = f"{self.op_key}:{site}"
            if named is not None and len(named[1]) <= MAX_NAME:  # to find it if in doubt there
                op.headers[UNDO_NAME_HEADER] = quote(named[1], safe="")
            await self._enqueue(op)
        return "".join(f"; {site}: no answer, its create to be undone by key" for site in sites)

    async def _record_write(self, finished: Finished) -> ReplicaSet | None:
        """A create makes a set; a delete marks members gone; returns the set."""
        method = self.call.method
        succeeded = [r for r in finished.succeeded if 200 <= r.status < 300]
        if method == "POST" and not self.addressed:
            created = [(r.site, r.body, r.headers) for r in succeeded]
            replica_set = record_create(
                self.call.service,
                self.call.path,
                created,
                pending=finished.pending,
                version=self.hlc,
            )
            if replica_set is None or len(replica_set.members) < 2:
                return None
            try:
                await self.replicas.link.store_and_push(replica_set, new=True)
            except (IdCollision, InvalidRecord) as exc:
                # A client-chosen id (or a member's odd answer) must not take over another
                # set's ids: the create is undone everywhere and refused.
                note = await self._undo(finished.succeeded)
                status = 409 if isinstance(exc, IdCollision) else 502
                title = "Replica Id Collision" if status == 409 else "Bad Replica Id"
                raise Refused(status, f"{exc}; {note}", title=title) from None
            return replica_set
        if method == "DELETE" and len(self.addressed) == 1:
            replica_set = self.addressed[0]
            for reply in succeeded:
                replica_set = await self.replicas.link.mark_gone(replica_set, reply.site)
            return replica_set
        return None

    def _translated(self, site: str, path: str, body: bytes | None) -> tuple[str, bytes | None]:
        """``path`` and ``body`` with the ids of the call's replica sets as ``site`` knows
        them (what the branch to ``site`` sends, live or replayed from the queue)."""
        if not self.sets:
            return path, body
        table: dict[str, str] = {}
        for replica_set in self.sets:
            target = self._target(replica_set.service, site)
            if target is not None:
                table.update(translation_table([replica_set], target))
        return translate_request(path, body, table)

    def _target(self, service: str, site: str) -> str | None:
        """Whose ids a set of ``service`` takes in the branch to ``site``: that site's for
        the routed service or one the scope leaves local, the named site for one the scope
        pins to a site; None (left as is) when the scope has ``&`` or ``|`` for it: the hop
        that routes that service translates then, for each site it tries."""
        if service == self.call.service:
            return site
        scope = branch_scope(self.plan, self.call.service, site)
        expr = scope.expr_for(service) if scope is not None else None
        if expr is None:
            return site
        return expr.name if isinstance(expr, SiteRef) else None

    def _op(
        self, site: str, method: str, path: str, handle: str | None, key: str = ""
    ) -> PendingOp:
        """A write of this call to replay at ``site`` (the call's own, or an undo)."""
        assert self.hlc is not None
        call = self.call
        headers = replay_headers(call.request.headers)
        if method != call.method:
            headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        scope = branch_scope(self.plan, call.service, site)
        if scope is not None:
            headers[SCOPE_HEADER] = unparse(scope)
        return PendingOp(
            key=":".join(p for p in (self.op_key, key, site) if p),
            handle=handle,
            target=site,
            service=call.service,
            method=method,
            path=path,
            body=b"",
            headers=headers,
            hlc=self.hlc,
        )

    def _whole_body(self) -> bytes | None:
        """This call's body, if it was read whole before dispatch (dispatch._whole_body):
        a streamed one is never read again here (its rest would be read unbounded)."""
        request = self.call.request
        body = request.whole if request.has_body else None
        return body if body is not None and len(body) == request.content_length else None

    async def _enqueue(self, op: PendingOp) -> None:
        """Queue ``op`` durably (the body of this call's own write goes with it)."""
        call = self.call
        body = None
        if op.method == call.method and call.request.has_body:
            body = self._whole_body()
            if body is None:  # never queue a truncated body
                raise QueueFull(
                    f"the body of this write was streamed, not kept: it is NOT queued for "
                    f"{op.target} (the write was applied at the reachable sites)"
                )
        path, body = self._translated(op.target, op.path, body)  # as the live branch would
        op = replace(op, path=path, body=body or b"")
        try:
            await asyncio.to_thread(self.replicas.registry.enqueue, op, caller_of(op.headers))
        except QueueFull as exc:
            raise QueueFull(
                f"{exc} (the write was applied at the reachable sites; it is NOT "
                f"queued for {op.target})"
            ) from None
        self.replicas.replayer.wake()


def caller_of(headers: dict[str, str]) -> str:
    """Who queues a write, for the per-caller share of the queue: a digest of its token
    (the proxy does not validate tokens on the write path; one project's callers who
    share a token share one share)."""
    token = next((v for k, v in headers.items() if k.lower() == "x-auth-token"), "")
    return "token:" + hashlib.sha256(token.encode()).hexdigest()[:32] if token else "anonymous"
