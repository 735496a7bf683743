"""Run a routing :class:`~edgescope.proxy.route.Plan`: one site, ``|`` fallback or ``&`` fan-out.

Neighbours: ``server.py`` builds the :class:`Call` and the plan and hands both here; this
module sends each branch through :mod:`forward` (local backend or peer proxy, with a
signed hop marker and the branch's scope in every carrier), lets scope-lang's
``evaluate`` apply ``&``/``|`` semantics, and shapes the answer with :mod:`merge`.

* one site: request and response bodies are streamed straight through;
* ``|`` only: the first attempt streams while a spool records the request body, so a
  fallback can resend it; the winner's response is streamed back;
* ``&`` somewhere: a flat ``&`` tees the request body to every branch; branch responses
  are read whole (bounded) and merged; a 401 or 403 of any branch fails the ``&``.

Identity across sites: a token validation answered by a *remote* identity site gets this
site's own catalog (:func:`~edgescope.proxy.identity.with_catalog`); a peer's identity call
with a foreign token goes through :mod:`delegation` first.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from edgescope.errors import SiteUnreachable
from edgescope.lang import And, HttpFailurePolicy, Scope, SiteRef, evaluate, unparse
from edgescope.proxy.body import BodyTee, ReplayableBody
from edgescope.proxy.breaker import Breaker, BreakerWatch
from edgescope.proxy.carriers import (
    REQUEST_ID_HEADER,
    ScopeMemory,
    mark_service_token,
    rewrite_carriers,
)
from edgescope.proxy.config import RESERVED_PREFIX, ProxyConfig
from edgescope.proxy.delegation import TOKEN_SITE_HEADER, Delegation
from edgescope.proxy.forward import CHUNK, Upstream, end_to_end, iter_body, read_body
from edgescope.proxy.identity import ServiceToken, is_validation_call, localise_catalog
from edgescope.proxy.merge import (
    SITES_HEADER,
    SiteResult,
    failure_response,
    merge_results,
    sites_header,
)
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.peer_auth import HOP_HEADERS, sign_hop
from edgescope.proxy.responses import ErrorCode, error_response, json_error
from edgescope.proxy.route import Plan, branch_scope

LOCAL_CONNECT_TIMEOUT = 5.0
LOCAL_READ_TIMEOUT = 300.0
ERROR_BODY_LIMIT = 64 * 1024
SMALL_BODY = 64 * 1024
"""Answers up to this size (with a Content-Length) are read whole and sent in one write."""
PEER_PATH = f"{RESERVED_PREFIX}/svc/"


@functools.lru_cache(maxsize=4096)
def _text(scope: Scope) -> str:
    """Canonical text of a (frozen, hashable) scope, cached: branches repeat."""
    return unparse(scope)


@dataclass(slots=True)
class Call:
    """One incoming call, and what the proxy learnt about it (for the access log)."""

    request: web.Request
    service: str
    path: str
    """Backend-relative raw path with query, e.g. ``/v2/images?limit=5``."""
    prefix: str
    request_id: str
    carrier: str = "none"
    scope_text: str | None = None
    from_peer: str | None = None
    hops: int = 0
    chosen: list[str] = field(default_factory=list)
    acting_token: str | None = None
    """Set by delegation: this site's service token replaces the peer user's token."""

    @property
    def is_validation(self) -> bool:
        request = self.request
        return self.service == "identity" and is_validation_call(
            request.method, self.path, "X-Subject-Token" in request.headers
        )


INTERNAL_PREFIX = "x-edgescope-"
"""Headers between edgescope proxies (hop markers, replica markers, modes): never sent on
to a backend."""

PerSite = Callable[[str], tuple[Call, AsyncIterable[bytes] | None]]
"""The call and body that the branch to a site sends."""


@dataclass(slots=True)
class Reply:
    """One branch's answer: headers always, the body read whole only when merging."""

    site: str
    status: int
    headers: CIMultiDict[str]
    response: aiohttp.ClientResponse
    body: bytes = b""
    read: bool = False
    """The body was read whole already (``body`` holds it)."""


class Dispatcher:
    """Sends calls to sites and combines the answers."""

    def __init__(
        self,
        config: ProxyConfig,
        upstream: Upstream,
        breakers: dict[str, Breaker],
        metrics: ProxyMetrics,
        tokens: ServiceToken | None,
        policy: HttpFailurePolicy | None = None,
    ) -> None:
        self.config = config
        self.upstream = upstream
        self.breakers = breakers
        self.metrics = metrics
        self.tokens = tokens
        self.policy = policy or HttpFailurePolicy()
        self.delegation = Delegation(config, upstream, tokens)
        self.watch = BreakerWatch(breakers)

    async def run(self, call: Call, plan: Plan, memory: ScopeMemory) -> web.StreamResponse:
        if call.service == "identity" and plan.is_local and call.from_peer is not None:
            verdict = await self.delegation.admit(
                call.request.headers,
                call.request.method,
                call.path,
                from_peer=call.from_peer,
                hops=call.hops,
                request_id=call.request_id,
            )
            if verdict.refusal is not None:
                call.chosen = [self.config.site]
                return verdict.refusal
            call.acting_token = verdict.acting_token
        if plan.downstream is not None and call.carrier != "request-id":
            memory.remember(call.request_id, _text(plan.downstream))
        if isinstance(plan.expr, SiteRef):
            return await self._single(call, plan, plan.expr.name)
        self.metrics.fanout.observe(len(plan.sites))
        if plan.merges:
            return await self._fan_out(call, plan)
        return await self.fall_back(call, plan)

    async def _single(self, call: Call, plan: Plan, site: str) -> web.StreamResponse:
        call.chosen = [site]
        body = call.request.content.iter_chunked(CHUNK) if call.request.body_exists else None
        try:
            response = await self.send(call, plan, site, body)
        except SiteUnreachable as exc:
            return error_response(
                ErrorCode.SITE_UNREACHABLE,
                f"{call.service}: {exc}",
                request_id=call.request_id,
                site=site,
            )
        # A peer's answer says which site gave it: its backend's own error rarely does.
        remote = {SITES_HEADER: f"{site}={response.status}"} if site != self.config.site else {}
        return await self._stream_back(call, response, site, remote)

    async def fall_back(
        self, call: Call, plan: Plan, per_site: PerSite | None = None
    ) -> web.StreamResponse:
        """``|``: try the sites in order. ``per_site`` gives each attempt its own call and
        body (replicas translate ids per site); by default every attempt replays the body."""
        spool = None
        if per_site is None and call.request.body_exists:
            spool = ReplayableBody(call.request.content.iter_chunked(CHUNK))
        branch_for: PerSite = per_site or (lambda site: (call, spool.replay() if spool else None))

        async def attempt(site: str) -> Reply:
            branch_call, body = branch_for(site)
            response = await self.send(branch_call, plan, site, body)
            reply = Reply(site, response.status, response.headers.copy(), response)
            # Read a small answer here, so that one whose body stalls still falls back (not a
            # validation: its remote answer gets the local catalog from the unread response).
            if self._small(call, response) and not call.is_validation:
                reading = read_body(response, site, SMALL_BODY)
                try:
                    reply.body = await self.watch.unless_opened(site, reading)
                except SiteUnreachable as exc:
                    self._peer_failed(site, exc)
                    raise
                reply.read = True
            return reply

        try:
            outcome = await evaluate(plan.expr, attempt, self._failed)
            results = await self._site_results(outcome.attempts, read_failed=True)
            call.chosen = [r.site for r in results]
            if outcome.ok:
                winner: Reply = outcome.results[0][1]
                return await self._stream_back(
                    call,
                    winner.response,
                    winner.site,
                    {SITES_HEADER: sites_header(results)},
                    body=winner.body if winner.read else None,
                )
            return self._failure(call, results, "|")
        finally:
            if spool is not None:
                spool.close()

    async def _fan_out(self, call: Call, plan: Plan) -> web.StreamResponse:
        sites = list(dict.fromkeys(plan.sites))
        body_for: Callable[[str], AsyncIterable[bytes] | None] = lambda site: None  # noqa: E731
        tee: BodyTee | None = None
        spool: ReplayableBody | None = None
        if call.request.body_exists:
            source = call.request.content.iter_chunked(CHUNK)
            if isinstance(plan.expr, And) and all(
                isinstance(o, SiteRef) for o in plan.expr.operands
            ):
                tee = BodyTee(source, len(sites))
                readers = {site: tee.reader(i) for i, site in enumerate(sites)}
                body_for = readers.get
            else:  # nested |: a branch may never be tried, so spool first, then replay
                spool = ReplayableBody(source)
                async for _ in spool.replay():
                    pass
                body_for = lambda site: spool.replay()  # noqa: E731

        async def branch(site: str) -> Reply:
            response = await self.send(call, plan, site, body_for(site))
            body = await read_body(response, site, self.config.limits.max_merge_bytes)
            return Reply(site, response.status, response.headers.copy(), response, body)

        try:
            outcome = await evaluate(plan.expr, branch, self._failed_in_merge)
        finally:
            if tee is not None:
                await tee.aclose()
            if spool is not None:
                spool.close()
        results = await self._site_results(outcome.attempts, read_failed=False)
        call.chosen = [r.site for r in results]
        if not outcome.ok:
            return self._failure(call, results, "&")
        answered = {r.site: r for r in results if not r.failed}
        merged = merge_results([answered[site] for site, _ in outcome.results])
        merged.headers[SITES_HEADER] = sites_header(results)
        merged.headers.setdefault(REQUEST_ID_HEADER, call.request_id)
        return web.Response(status=merged.status, body=merged.body, headers=merged.headers)

    def _failed(self, reply: Reply) -> bool:
        return bool(self.policy(reply.status))

    def _failed_in_merge(self, reply: Reply) -> bool:
        """In an ``&``, a site refusing the caller (401, 403) is a failure, never dropped."""
        return reply.status in (401, 403) or self._failed(reply)

    async def _site_results(self, attempts: Any, *, read_failed: bool) -> list[SiteResult]:
        results = []
        for attempt in attempts:
            if attempt.error is not None:
                reason = getattr(attempt.error, "reason", None) or str(attempt.error)
                results.append(SiteResult(attempt.site, None, error=reason, failed=True))
                continue
            reply: Reply = attempt.result
            body = reply.body
            if read_failed and attempt.failed:
                try:
                    body = await read_body(reply.response, reply.site, ERROR_BODY_LIMIT)
                except SiteUnreachable:
                    body = b""
            results.append(
                SiteResult(
                    reply.site,
                    reply.status,
                    body,
                    dict(reply.headers),
                    failed=bool(attempt.failed),
                )
            )
        return results

    def _failure(self, call: Call, results: list[SiteResult], operator: str) -> web.Response:
        merged = failure_response(results, call.service, operator)
        response = json_error(json.loads(merged.body), merged.status, call.request_id)
        response.headers[SITES_HEADER] = merged.headers[SITES_HEADER]
        return response

    async def send(
        self, call: Call, plan: Plan, site: str, body: AsyncIterable[bytes] | None
    ) -> aiohttp.ClientResponse:
        """Open one branch: to the local backend, or to ``site``'s proxy with a hop marker."""
        request = call.request
        scope = branch_scope(plan, call.service, site)
        scope_text = _text(scope) if scope is not None else None
        headers = end_to_end(request.headers)
        for name in (*HOP_HEADERS, TOKEN_SITE_HEADER):
            headers.popall(name, None)
        headers[REQUEST_ID_HEADER] = call.request_id
        if site == self.config.site:
            return await self._send_local(call, headers, scope_text, body)
        peer = self.config.peer(site)
        assert peer is not None, "route.plan_route admits configured peers only"
        breaker = self.breakers[site]
        if not breaker.allow(now=time.monotonic()):
            self.metrics.set_breaker(site, breaker.state)
            raise SiteUnreachable(
                site,
                "circuit breaker open"
                + (f" after: {breaker.last_error}" if breaker.last_error else ""),
            )
        rewrite_carriers(headers, scope_text, piggyback_plain=call.carrier != "request-id")
        mark_service_token(headers, self.config.site)
        if call.service == "identity":  # who issued the token: kept from a peer, else us
            headers[TOKEN_SITE_HEADER] = (
                call.request.headers.get(TOKEN_SITE_HEADER, call.from_peer)
                if call.from_peer
                else self.config.site
            ) or self.config.site
        path = PEER_PATH + call.service + call.path
        headers.update(
            sign_hop(
                self.config.secret,
                request.method,
                path.split("?", 1)[0],
                self.config.site,
                call.hops + 1,
                now=time.time(),
            )
        )
        started = time.monotonic()
        opening = self.upstream.open(
            site,
            request.method,
            URL(str(peer.url).rstrip("/") + path, encoded=True),
            headers=headers,
            body=body,
            connect_timeout=peer.connect_timeout,
            read_timeout=peer.read_timeout,
        )
        try:
            response = await self.watch.unless_opened(site, opening)
        except SiteUnreachable as exc:
            self._peer_failed(site, exc)
            raise
        breaker.record_success()
        self.metrics.set_breaker(site, breaker.state)
        self.metrics.peer_latency(peer=site).observe(time.monotonic() - started)
        return response

    async def _send_local(
        self,
        call: Call,
        headers: CIMultiDict[str],
        scope_text: str | None,
        body: AsyncIterable[bytes] | None,
    ) -> aiohttp.ClientResponse:
        request = call.request
        service = self.config.service(call.service)
        assert service is not None
        is_identity = call.service == "identity"
        for name in {n for n in headers if n.lower().startswith(INTERNAL_PREFIX)}:
            headers.popall(name, None)  # edgescope's own headers end at the proxy
        rewrite_carriers(
            headers,
            scope_text,
            strip_tokens=is_identity,
            piggyback_plain=call.carrier != "request-id",
        )
        if (
            is_identity
            and call.from_peer
            and self.tokens is not None
            and is_validation_call(request.method, call.path, "X-Subject-Token" in headers)
        ):
            # The peer's service token means nothing here: validate with this site's own.
            headers["X-Auth-Token"] = await self.tokens.get()
        elif is_identity and call.acting_token is not None:
            headers["X-Auth-Token"] = call.acting_token  # delegated (see delegation.py)
        headers["X-Forwarded-Host"] = request.host
        headers["X-Forwarded-Proto"] = request.scheme
        if call.prefix:
            headers["X-Forwarded-Prefix"] = call.prefix
        url = URL(str(service.backend).rstrip("/") + call.path, encoded=True)
        return await self.upstream.open(
            self.config.site,
            request.method,
            url,
            headers=headers,
            body=body,
            connect_timeout=LOCAL_CONNECT_TIMEOUT,
            read_timeout=LOCAL_READ_TIMEOUT,
        )

    def _peer_failed(self, site: str, exc: SiteUnreachable) -> None:
        breaker = self.breakers.get(site)
        if breaker is not None:
            breaker.record_failure(now=time.monotonic(), reason=exc.reason)
            self.metrics.set_breaker(site, breaker.state)

    @staticmethod
    def _small(call: Call, response: aiohttp.ClientResponse) -> bool:
        """An answer small enough to read whole before answering."""
        size = response.content_length
        return size is not None and size <= SMALL_BODY and call.request.method != "HEAD"

    async def _stream_back(
        self,
        call: Call,
        response: aiohttp.ClientResponse,
        site: str,
        extra: dict[str, str],
        body: bytes | None = None,
    ) -> web.StreamResponse:
        if (
            call.is_validation
            and call.request.method == "GET"
            and site != self.config.site
            and self.tokens is not None
        ):
            return await self._with_local_catalog(call, response, site, extra)
        headers = end_to_end(response.headers)
        headers.update(extra)
        if REQUEST_ID_HEADER not in headers:
            headers[REQUEST_ID_HEADER] = call.request_id
        if body is None and self._small(call, response):
            # Most API answers are small: one write of headers and body saves a syscall.
            try:
                body = await read_body(response, site, SMALL_BODY)
            except SiteUnreachable as exc:
                return error_response(
                    ErrorCode.SITE_UNREACHABLE,
                    f"{call.service}: {exc}",
                    request_id=call.request_id,
                    site=site,
                )
        if body is not None:
            headers.popall("Content-Length", None)
            return web.Response(
                status=response.status, reason=response.reason, body=body, headers=headers
            )
        out = web.StreamResponse(status=response.status, reason=response.reason, headers=headers)
        await out.prepare(call.request)
        try:
            async for chunk in iter_body(response, site):
                await out.write(chunk)
        except SiteUnreachable:
            # Headers are gone already: the only honest signal left is a cut connection.
            if call.request.transport is not None:
                call.request.transport.close()
            return out
        await out.write_eof()
        return out

    async def _with_local_catalog(
        self, call: Call, response: aiohttp.ClientResponse, site: str, extra: dict[str, str]
    ) -> web.StreamResponse:
        """A validation answered by a remote identity site, with this site's catalog in it:
        the caller (a service here) must find *this* site's endpoints, not ``site``'s."""
        assert self.tokens is not None
        headers = end_to_end(response.headers)
        headers.update(extra)
        headers.setdefault(REQUEST_ID_HEADER, call.request_id)
        headers.popall("Content-Length", None)
        try:
            body = await localise_catalog(response, site, self.tokens)
        except SiteUnreachable as exc:
            return error_response(
                ErrorCode.SITE_UNREACHABLE,
                f"{call.service}: {exc}",
                request_id=call.request_id,
                site=exc.site,
            )
        return web.Response(
            status=response.status, reason=response.reason, body=body, headers=headers
        )
