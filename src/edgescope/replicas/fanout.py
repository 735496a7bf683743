"""Replica-aware routing of one call: ``&`` fan-out, one-site calls, writes from peers.

Neighbours: :class:`~edgescope.replicas.hooks.ReplicaHooks.route` picks one of the three
``serve_*`` functions here; they call back into the hooks (translation, collapse, records,
the pending queue, guarded writes) and send branches with the proxy's ``Dispatcher.send``,
so carriers, hop markers and breakers behave exactly as for any other call.

* :func:`serve_fan_out` -- ``&``: JSON bodies up to 1 MB are read whole and translated per
  branch, other bodies are teed (``&``) or spooled (nested ``|``) with only the path
  translated; answers are merged by :mod:`edgescope.proxy.merge`, lists collapsed;
  eventual mode turns unreachable members into queued writes.
* :func:`serve_single` -- one site: ids in the path and in JSON bodies up to 1 MB are
  translated (the answer streams back); a delete records the member as gone first.
* :func:`serve_fall_back` -- ``|``: each attempt carries the ids of the site it goes to.
* :func:`serve_peer_write` -- a replicated write from a peer proxy: idempotency key and
  last-writer-wins checked before the local backend sees it.

    response = await serve_fan_out(hooks, call, plan, memory)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from edgescope.errors import SiteUnreachable
from edgescope.lang import And, SiteRef, evaluate, unparse
from edgescope.proxy.body import BodyTee, ReplayableBody
from edgescope.proxy.carriers import REQUEST_ID_HEADER, ScopeMemory
from edgescope.proxy.dispatch import Call
from edgescope.proxy.forward import CHUNK, end_to_end, iter_body, read_body
from edgescope.proxy.merge import (
    SITES_HEADER,
    SiteResult,
    failure_response,
    merge_results,
    sites_header,
)
from edgescope.proxy.responses import ErrorCode, error_response, json_error
from edgescope.proxy.route import Plan
from edgescope.replicas import peers

if TYPE_CHECKING:
    from edgescope.replicas.hooks import ReplicaHooks

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


async def serve_peer_write(hooks: ReplicaHooks, call: Call, plan: Plan) -> web.StreamResponse:
    marker = peers.read_internal_headers(call.request.headers)
    if marker is None:
        return error_response(
            ErrorCode.BAD_REQUEST, "malformed replica headers", request_id=call.request_id
        )
    handle, hlc, key = marker
    refusal = await hooks.admit_peer(call)
    if refusal is not None:
        return refusal
    body = await call.request.content.read() if call.request.body_exists else None

    async def send() -> BranchReply:
        response = await hooks.dispatcher.send(call, plan, hooks.site, _once(body))
        data = await read_body(response, hooks.site, hooks.config.limits.max_merge_bytes)
        headers = {k: v for k, v in end_to_end(response.headers).items()}
        return BranchReply(hooks.site, response.status, headers, data)

    try:
        reply = await hooks.guarded_write(handle, hlc, key, send)
    except SiteUnreachable as exc:
        return error_response(
            ErrorCode.SITE_UNREACHABLE, f"{call.service}: {exc}", request_id=call.request_id
        )
    return _response(reply, call.request_id)


async def serve_single(
    hooks: ReplicaHooks, call: Call, plan: Plan, memory: ScopeMemory, site: str
) -> web.StreamResponse:
    """One site: translate ids in the path and in small JSON bodies; track deletes."""
    request = call.request
    body: bytes | None = None
    if request.body_exists and call.from_peer is None and _small_json(request):
        body = await request.content.read()  # not .read(): clone() must still work
    sets = hooks.involved_sets(call.path, body)
    if not sets and body is None:
        return await hooks.dispatcher.run(call, plan, memory)
    path, new_body = hooks.translate_request(sets, site, call.path, body)
    call.path = path
    deleting = request.method == "DELETE" and call.from_peer is None and len(sets) == 1
    if body is None and not deleting:
        return await hooks.dispatcher.run(call, plan, memory)
    refusal = await hooks.admit_peer(call)
    if refusal is not None:
        return refusal
    _remember(call, plan, memory)
    payload: AsyncIterable[bytes] | None
    if body is not None:
        headers = end_to_end(request.headers)
        headers["Content-Length"] = str(len(new_body or b""))
        call = replace(call, request=request.clone(headers=headers))
        payload = _once(new_body)
    else:
        payload = request.content.iter_chunked(CHUNK) if request.body_exists else None
    try:
        response = await hooks.dispatcher.send(call, plan, site, payload)
        if not deleting:
            return await _stream_back(call, response, site)
        data = await read_body(response, site, hooks.config.limits.max_merge_bytes)
    except SiteUnreachable as exc:
        return error_response(
            ErrorCode.SITE_UNREACHABLE,
            f"{call.service}: {exc}",
            request_id=call.request_id,
            site=site,
        )
    # A delete at one site: answer only once the set records that member as gone.
    if 200 <= response.status < 300:
        updated = await asyncio.to_thread(
            hooks.registry.mark_gone, sets[0].handle, site, hooks.clock.now()
        )
        if updated is not None:
            await (hooks.delete_and_push if updated.all_gone else hooks.store_and_push)(updated)
    reply = BranchReply(site, response.status, dict(end_to_end(response.headers)), data)
    return _response(reply, call.request_id)


async def serve_fall_back(
    hooks: ReplicaHooks, call: Call, plan: Plan, memory: ScopeMemory
) -> web.StreamResponse:
    """``|``: the path, and JSON bodies up to 1 MB, translated for each site tried in turn."""
    request = call.request
    body: bytes | None = None
    if request.body_exists and call.from_peer is None and _small_json(request):
        body = await request.content.read()
    sets = hooks.involved_sets(call.path, body)
    if not sets and body is None:
        return await hooks.dispatcher.run(call, plan, memory)
    _remember(call, plan, memory)
    spool = None
    if request.body_exists and body is None:
        spool = ReplayableBody(request.content.iter_chunked(CHUNK))

    def per_site(site: str) -> tuple[Call, AsyncIterable[bytes] | None]:
        path, new_body = hooks.translate_request(sets, site, call.path, body)
        if body is None:
            return replace(call, path=path), spool.replay() if spool else None
        headers = end_to_end(request.headers)
        headers["Content-Length"] = str(len(new_body or b""))
        return replace(call, path=path, request=request.clone(headers=headers)), _once(new_body)

    try:
        return await hooks.dispatcher.fall_back(call, plan, per_site)
    finally:
        if spool is not None:
            spool.close()


async def serve_fan_out(
    hooks: ReplicaHooks, call: Call, plan: Plan, memory: ScopeMemory
) -> web.StreamResponse:
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
    _remember(call, plan, memory)
    sets = hooks.involved_sets(call.path, body)
    method = request.method
    is_write = method in WRITES
    op_key = uuid.uuid4().hex if is_write else ""
    hlc = hooks.clock.now()
    handle = sets[0].handle if len(sets) == 1 and method != "POST" else None
    if len(sets) == 1 and method == "POST":
        handle = sets[0].handle  # an action on the set (e.g. POST .../action)

    def failed(reply: BranchReply) -> bool:
        # A write that a member refused (any 4xx, e.g. 401/403/409) did not happen there:
        # the proxy's read policy would let it pass, which would leave the set diverged.
        return bool(hooks.dispatcher.policy(reply.status)) or (is_write and reply.status >= 400)

    async def branch(site: str) -> BranchReply:
        path, branch_body = hooks.translate_request(sets, site, call.path, body)
        headers = end_to_end(request.headers)
        for name in peers.INTERNAL_HEADERS:
            headers.popall(name, None)
        if branch_body is not None:
            headers["Content-Length"] = str(len(branch_body))
        if is_write and site != hooks.site:
            headers.update(peers.internal_headers(handle, hlc, f"{op_key}:{site}"))
        branch_call = replace(call, request=request.clone(headers=headers), path=path)
        payload = _once(branch_body) if body is not None else streamed(site)

        async def send() -> BranchReply:
            response = await hooks.dispatcher.send(branch_call, plan, site, payload)
            data = await read_body(response, site, hooks.config.limits.max_merge_bytes)
            return BranchReply(site, response.status, dict(response.headers), data)

        if is_write and site == hooks.site:
            return await hooks.guarded_write(handle, hlc, f"{op_key}:{site}", send)
        return await send()

    try:
        outcome = await evaluate(plan.expr, branch, failed)
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
        and all(hooks.config.peer(s) is not None for s in unreachable)
    )
    if (
        not outcome.ok
        and eventual
        and not is_write
        and 0 < len(unreachable) < len(results)
        and all(hooks.config.peer(s) is not None for s in unreachable)
    ):
        # eventual reads: answered by the members reachable now (the header names the rest)
        answered = [r for r in results if r.status is not None]
        if any(r.failed for r in answered):  # e.g. 404 where reachable: a lookup goes on
            merged = failure_response(answered, call.service, "&")
            response = json_error(json.loads(merged.body), merged.status, call.request_id)
            response.headers[SITES_HEADER] = sites_header(results)
            return response
        degraded = True
    if not outcome.ok and not degraded:
        merged = failure_response(results, call.service, "&")
        response = json_error(json.loads(merged.body), merged.status, call.request_id)
        response.headers[SITES_HEADER] = merged.headers[SITES_HEADER]
        return response
    pending = unreachable if degraded and is_write else []
    replica_set = None
    if is_write:
        replica_set = await hooks.on_fanout_result(call, sets, succeeded, pending, hlc)
    for site in pending:
        queued_handle = handle or (replica_set.handle if replica_set else None)
        await hooks.enqueue_pending(call, plan, site, op_key, queued_handle, body, hlc)
    winners = [r for r in results if not r.failed]
    merged = merge_results(winners)
    collapsible = method == "GET" and hooks.registry.has_sets
    out_body = hooks.collapse(merged.body) if collapsible else merged.body
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


def _remember(call: Call, plan: Plan, memory: ScopeMemory) -> None:
    """As ``Dispatcher.run`` does: the request id recalls the downstream scope (carrier 4)."""
    if plan.downstream is not None and call.carrier != "request-id":
        memory.remember(call.request_id, unparse(plan.downstream))


async def _stream_back(
    call: Call, response: aiohttp.ClientResponse, site: str
) -> web.StreamResponse:
    """The branch's answer, streamed to the client (as the dispatcher streams one site)."""
    out = web.StreamResponse(status=response.status, reason=response.reason)
    for name, value in end_to_end(response.headers).items():
        out.headers.add(name, value)
    if REQUEST_ID_HEADER not in out.headers:
        out.headers[REQUEST_ID_HEADER] = call.request_id
    await out.prepare(call.request)
    try:
        async for chunk in iter_body(response, site):
            await out.write(chunk)
    except SiteUnreachable:
        if call.request.transport is not None:  # headers are sent: cut the connection
            call.request.transport.close()
        return out
    await out.write_eof()
    return out
