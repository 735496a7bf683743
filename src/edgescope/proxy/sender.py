"""Open one branch of a call: to the local backend, or to a peer proxy with a signed hop.

The :class:`Sender` puts the branch's scope in every carrier, drops every internal header
before a backend, signs hops (:mod:`protocol`), keeps each peer's breaker informed and
gives up on a call as soon as that breaker opens (:class:`~breaker.BreakerWatch`). It also
serves the extensions (:class:`~extension.ProxyServices`): signed calls to peers and the
check of a peer's signature.

    response = await sender.send(call, plan, BranchRequest("Corte", call.path, None), body)
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
)
from typing import Any, TypeVar

from aiohttp import web
from multidict import CIMultiDict
from prometheus_client import CollectorRegistry
from yarl import URL

from edgescope.aio import loop_lag
from edgescope.errors import CONNECT_TIMED_OUT, ClientBodyFailed, SiteUnreachable
from edgescope.lang import Scope, unparse
from edgescope.proxy.batchsign import BatchSigner
from edgescope.proxy.body import ClientBody
from edgescope.proxy.breaker import Breaker, BreakerWatch
from edgescope.proxy.call import BranchReply, BranchRequest, BranchTrace, Call
from edgescope.proxy.carriers import (
    REMEMBERED_CARRIERS,
    REQUEST_ID_HEADER,
    SERVICE_TOKEN_HEADER,
    handle_of,
    is_correlation_id,
    new_request_id,
    rewrite_carriers,
    split_piggyback_lenient,
)
from edgescope.proxy.config import PeerConfig, ProxyConfig, TlsConfig
from edgescope.proxy.delegation import Delegation
from edgescope.proxy.forward import Upstream, base_url, end_to_end, read_body
from edgescope.proxy.identity import (
    VALIDATION_BODY_LIMIT,
    ServiceToken,
    is_identity,
    is_validation_call,
    token_document,
    token_roles,
)
from edgescope.proxy.keys import Ed25519PublicKey
from edgescope.proxy.listener import FOR_PEERS
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.peerbook import PeerBook
from edgescope.proxy.protocol import (
    PEER_PATH,
    PROOF_HEADER,
    SIGNATURE_HEADER,
    ForgedHop,
    HopMarker,
    NotTrusted,
    hop_marker,
    hop_message,
    strip_internal,
    verify_hop,
)
from edgescope.proxy.route import Plan, branch_scope
from edgescope.proxy.siteclient import SiteAnswer, SiteClient
from edgescope.proxy.trust import REPLICA_MARKERS, decide

_T = TypeVar("_T")
LOCAL_CONNECT_TIMEOUT = 5.0
LOCAL_READ_TIMEOUT = 300.0
OWN_LAG_SHARE = 0.25
"""A connect timeout is this proxy's own when its loop was late by this share of it."""
RESENT_METHODS = frozenset({"GET", "HEAD"})
"""Calls to a peer sent once more, on a fresh connection, when the peer heals while they
wait (:meth:`~breaker.BreakerWatch.resend_on_heal`): idempotent ones without a body."""
PEER_ANSWER_LIMIT = 64 * 1024 * 1024
"""Largest answer :meth:`Sender.send_to_peer` reads for an extension."""


def client_tls(tls: TlsConfig | None) -> ssl.SSLContext | None:
    """The TLS context of this proxy as a client of its peers."""
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    return context


def server_tls(tls: TlsConfig) -> ssl.SSLContext:
    """The TLS context of the peer listener: this site's certificate; with
    ``require_client_cert``, only peers with a certificate from ``ca_file`` get in."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.ca_file is not None:
        context.load_verify_locations(cafile=str(tls.ca_file))
    if tls.require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def keep_credentials_home(headers: CIMultiDict[str], validation: bool) -> None:
    """A site's service credentials never leave it: no ``X-Service-Token`` on a hop to a
    peer, nor the calling service's ``X-Auth-Token`` on a token validation (the identity
    site's proxy validates with its own service token)."""
    headers.popall(SERVICE_TOKEN_HEADER, None)
    if validation:
        headers.popall("X-Auth-Token", None)


def once(body: bytes | None) -> AsyncIterator[bytes] | None:
    """``body`` as a one-chunk stream (None for no body, so no chunked framing is sent)."""
    if not body:
        return None

    async def chunks() -> AsyncIterator[bytes]:
        yield body

    return chunks()


def _close(response: SiteAnswer) -> None:
    response.close()


@functools.lru_cache(maxsize=4096)
def scope_text(scope: Scope) -> str:
    """Canonical text of a (frozen, hashable) scope, cached: branches repeat."""
    return unparse(scope)


class Sender:
    """Sends branches; owns the per-peer breakers' bookkeeping."""

    def __init__(
        self,
        config: ProxyConfig,
        upstream: Upstream,
        metrics: ProxyMetrics,
        tokens: ServiceToken | None,
        delegation: Delegation,
        client: SiteClient | None = None,
    ) -> None:
        self.config = config
        self.upstream = upstream
        self.client: SiteClient = client if client is not None else upstream
        """The one way every request of the sender reaches a site (:mod:`siteclient`): the
        ``upstream`` pool, or an in-memory transport in unit tests (:mod:`memory`)."""
        self.metrics = metrics
        self.tokens = tokens
        self.delegation = delegation
        """Cross-site identity: what an identity call carries where (``delegation.py``)."""
        self.slot_refusals = 0
        """Branches that gave up waiting for one of a peer's ``max_per_peer`` slots."""
        self.watch = BreakerWatch()
        self.watch.on_resend = lambda site: metrics.resent_on_heal.labels(peer=site).inc()
        self.peers = PeerBook(
            config.peers, config.breaker, self._new_breaker, config.limits.max_per_peer
        )
        self.signer = BatchSigner(config.private_key)
        self.own_calls: Callable[[str, str, str, BranchTrace], None] | None = None
        """Told of every call an extension makes itself (origin, method, path, trace):
        the server hands it to the extensions' ``site_call`` event."""
        self.peer_ssl = client_tls(config.tls)
        """Verifies ``https`` peers against ``[tls] ca_file`` and presents this site's
        certificate (mutual TLS); None: the system's trust store."""

    @property
    def site(self) -> str:
        return self.config.site

    def _new_breaker(self, site: str, breaker: Breaker) -> None:
        self.watch.attach(site, breaker)
        self.metrics.set_breaker(site, breaker.state)

    async def send(
        self,
        call: Call,
        plan: Plan,
        branch: BranchRequest,
        body: AsyncIterable[bytes] | None,
    ) -> SiteAnswer:
        """Open ``branch``; returns once the answer's headers arrived (body unread)."""
        request = call.request
        scope = branch_scope(plan, call.service, branch.site)
        text = scope_text(scope) if scope is not None else None
        headers = call.forwardable_headers().copy()
        headers[REQUEST_ID_HEADER] = call.request_id
        method = request.method
        if branch.body is not None:
            headers["Content-Length"] = str(len(branch.body))
        headers.update(branch.headers)
        if branch.site == self.config.site:
            strip_internal(headers)  # markers are for peer proxies, never a backend
            return await self._send_local(call, branch, headers, text, body)
        rewrite_carriers(headers, text, piggyback_plain=call.carrier not in REMEMBERED_CARRIERS)
        keep_credentials_home(headers, call.is_validation)
        self.delegation.to_peer(call, headers)
        path = PEER_PATH + call.service + branch.path
        watch = call.client_body if branch.body is None else None
        return await self.open_peer(
            branch.site,
            method,
            path,
            headers,
            body,
            call.hops,
            watch=watch,
            give_up_on_open=call.gives_up_on_open,
        )

    async def open_peer(
        self,
        site: str,
        method: str,
        path: str,
        headers: CIMultiDict[str] | dict[str, str],
        body: AsyncIterable[bytes] | bytes | None,
        hops: int = 0,
        timeout: float | None = None,
        watch: ClientBody | None = None,
        give_up_on_open: bool = True,
    ) -> SiteAnswer:
        """A signed hop to ``site``'s proxy, through its breaker.

        ``watch`` is the client's body being streamed: a failure while it is incomplete or
        broken is the client's (:class:`ClientBodyFailed`), not counted against ``site``.
        ``give_up_on_open``: stop waiting as soon as ``site``'s breaker opens.
        """
        peer = self.peers.get(site)
        if peer is None:
            raise SiteUnreachable(site, "not a known peer", connecting=True)
        breaker = self.peers.breaker(site)
        self.peers.used(site)
        allowed = breaker.allow(now=time.monotonic())
        trial = breaker.state == "half-open"
        if not allowed:
            self.metrics.set_breaker(site, breaker.state)
            raise SiteUnreachable(
                site,
                "circuit breaker open"
                + (f" after: {breaker.last_error}" if breaker.last_error else ""),
                connecting=True,
            )
        await self._sign(headers, method, path, site, hops, body)
        started = time.monotonic()
        connect_timeout = min(peer.connect_timeout, timeout or peer.connect_timeout)
        gate = self.peers.gate(site)
        await self._take_slot(site, gate, connect_timeout)

        read_timeout = timeout or peer.read_timeout
        deadline = started + connect_timeout + read_timeout

        def opening(
            fresh: bool, read: float, marked: Mapping[str, str]
        ) -> Coroutine[Any, Any, SiteAnswer]:
            response = self.client.open(
                site,
                method,
                URL(base_url(peer.url) + path, encoded=True),
                headers=marked,
                body=body,
                connect_timeout=connect_timeout,
                read_timeout=read,
                ssl=self.peer_ssl,
                fresh=fresh,
            )
            return self.watch.unless_opened(site, response) if give_up_on_open else response

        async def attempt(fresh: bool = False, read: float = read_timeout) -> SiteAnswer:
            marked = headers
            if fresh:  # a resend may leave past the first marker's hop window: a new one
                marked = CIMultiDict(headers)
                await self._sign(marked, method, path, site, hops, body)
            lag, since = loop_lag(), asyncio.get_running_loop().time()
            try:
                return await opening(fresh, read, marked)
            except SiteUnreachable as exc:
                if exc.reason != CONNECT_TIMED_OUT or lag.worst_since(since) < (
                    connect_timeout * OWN_LAG_SHARE
                ):
                    raise
                # This proxy was too busy to see the connection made in time (a wide
                # fan-out): not the peer's fault. Nothing was sent yet, so once more.
                self.metrics.own_lag_retries.inc()
                return await opening(fresh, read, marked)

        def again() -> Coroutine[Any, Any, SiteAnswer] | None:
            """The read once more on a fresh connection, within the call's own bound."""
            left = deadline - time.monotonic() - connect_timeout
            return attempt(fresh=True, read=left) if left > 0 else None

        try:
            if method in RESENT_METHODS and body is None:
                response = await self.watch.resend_on_heal(site, attempt, again, discard=_close)
            else:
                response = await attempt()
        except SiteUnreachable as exc:
            if watch is not None and not exc.connecting and not watch.complete:
                if isinstance(watch.error, ClientBodyFailed):
                    raise watch.error from exc  # e.g. over the spool limit
                raise ClientBodyFailed(
                    "the request body broke off or did not arrive in time"
                    f" (while {site} waited for it)"
                ) from exc
            self.peer_failed(site, exc)
            raise
        except asyncio.CancelledError:  # a lost hedge race, a client gone: no outcome
            if trial:
                breaker.release_trial()
            raise
        finally:
            gate.release()
        if breaker.state != "closed":
            breaker.record_success()
            self.metrics.set_breaker(site, breaker.state)
        else:
            breaker.record_success()
        self.metrics.peer_latency(peer=site).observe(time.monotonic() - started)
        return response

    async def _sign(
        self,
        headers: CIMultiDict[str] | dict[str, str],
        method: str,
        path: str,
        site: str,
        hops: int,
        body: AsyncIterable[bytes] | bytes | None,
    ) -> None:
        """Mark ``headers`` as a hop to ``site``, signed now."""
        marker = hop_marker(
            self.config.private_key,
            self.config.site,
            hops + 1,
            now=time.time(),
            body=body if isinstance(body, bytes) else None,
        )
        headers.update(marker)
        # One signature for every hop signed in this turn of the loop (a fan-out's branches).
        signature, proof = await self.signer.sign(hop_message(headers, method, path, site))
        headers[SIGNATURE_HEADER] = signature
        headers[PROOF_HEADER] = proof

    async def _take_slot(self, site: str, gate: asyncio.Semaphore, wait: float) -> None:
        """A slot among the calls awaiting ``site``; waits at most ``wait`` seconds for one.
        A full gate is this proxy's load, not the peer's failure: its breaker is untouched."""
        if not gate.locked():
            await gate.acquire()  # free: returns at once, no timer (1,000-site fan-outs)
            return
        try:
            await asyncio.wait_for(gate.acquire(), wait)
        except TimeoutError:
            self.slot_refusals += 1
            raise SiteUnreachable(
                site,
                f"{self.config.limits.max_per_peer} calls are awaiting it already"
                " (max_per_peer); retry soon",
                connecting=True,
            ) from None

    async def _send_local(
        self,
        call: Call,
        branch: BranchRequest,
        headers: CIMultiDict[str],
        text: str | None,
        body: AsyncIterable[bytes] | None,
    ) -> SiteAnswer:
        request = call.request
        method = request.method
        service = self.config.service(call.service)
        assert service is not None
        rewrite_carriers(
            headers,
            text,
            strip_tokens=self.delegation.strips_tokens(call.service) or service.plain_token,
            piggyback_plain=call.carrier not in REMEMBERED_CARRIERS,
        )
        if is_correlation_id(call.request_id):
            for carrier in self.config.carriers:
                if carrier.write is not None and carrier.writes_to(call.service):
                    headers[carrier.write] = handle_of(call.request_id)
        await self.delegation.to_backend(call, branch.path, headers)
        if not self.config.trust_forwarded and "Forwarded" in headers:
            del headers["Forwarded"]  # RFC 7239's: oslo's http_proxy_to_wsgi prefers it
        if not (self.config.trust_forwarded and "X-Forwarded-Host" in headers):
            headers["X-Forwarded-Host"] = request.host
        if not (self.config.trust_forwarded and "X-Forwarded-Proto" in headers):
            headers["X-Forwarded-Proto"] = request.scheme
        if call.prefix:
            headers["X-Forwarded-Prefix"] = call.prefix
        url = URL(base_url(service.backend) + branch.path, encoded=True)
        return await self.client.open(
            self.config.site,
            method,
            url,
            headers=headers,
            body=body,
            connect_timeout=LOCAL_CONNECT_TIMEOUT,
            read_timeout=LOCAL_READ_TIMEOUT,
        )

    def peer_failed(self, site: str, exc: SiteUnreachable) -> None:
        if site in self.peers:
            breaker = self.peers.breaker(site)
            breaker.record_failure(now=time.monotonic(), reason=exc.reason)
            self.metrics.set_breaker(site, breaker.state)

    # -- ProxyServices: what extensions may ask ------------------------------------------

    def is_peer(self, site: str) -> bool:
        return site in self.peers

    def learn_peer(self, peer: PeerConfig) -> None:
        self.peers.update(peer)

    def forget_peer(self, name: str) -> None:
        self.peers.remove(name)

    async def _seen(
        self, origin: str, site: str, method: str, path: str, sending: Awaitable[_T]
    ) -> _T:
        """``sending``, an extension's own call, traced as a branch is and told to
        :attr:`own_calls`, whatever its end."""
        if self.own_calls is None:
            return await sending
        if site == self.config.site:
            breaker = "local"
        else:
            breaker = self.peers.breaker(site).state if site in self.peers else "unknown"
        trace = BranchTrace(site, time.monotonic(), breaker)
        try:
            result = await sending
        except SiteUnreachable as exc:
            trace.done(None, exc.reason)
            raise
        except asyncio.CancelledError:
            trace.done(None, "cancelled")
            raise
        except Exception as exc:
            trace.done(None, type(exc).__name__)
            raise
        else:
            trace.done(result.status if isinstance(result, BranchReply) else 200)
        finally:
            self.own_calls(origin, method, path.partition("?")[0], trace)
        return result

    async def fetch_json(
        self,
        url: str,
        payload: Any,
        *,
        timeout: float,
        headers: Mapping[str, str] | None = None,
        loads: Callable[[bytes], Any] = json.loads,
    ) -> Any:
        target = URL(url)
        opening = self._fetch_json(target, url, payload, timeout, headers, loads)
        return await self._seen("fetch_json", target.host or url, "POST", target.path, opening)

    async def _fetch_json(
        self,
        target: URL,
        url: str,
        payload: Any,
        timeout: float,
        headers: Mapping[str, str] | None,
        loads: Callable[[bytes], Any],
    ) -> Any:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        out = {"Content-Type": "application/json", REQUEST_ID_HEADER: new_request_id()}
        response = await self.client.open(
            target.host or url,
            "POST",
            target,
            headers={**out, **(headers or {})},
            body=data,
            connect_timeout=timeout,
            read_timeout=timeout,
            ssl=self.peer_ssl,
        )
        body = await read_body(response, target.host or url, PEER_ANSWER_LIMIT)
        if response.status >= 300:
            raise SiteUnreachable(target.host or url, f"answered {response.status}")
        try:
            return loads(body)
        except (ValueError, RecursionError) as exc:  # not JSON, numbers ``loads`` refuses
            raise SiteUnreachable(target.host or url, f"answered bad JSON: {exc}") from exc

    async def call_site(
        self,
        site: str,
        service: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        scope: str | None,
        body: bytes | None = None,
    ) -> BranchReply:
        opening = self._call_site(site, service, method, path, headers, scope, body)
        return await self._seen("call_site", site, method, path, opening)

    async def _call_site(
        self,
        site: str,
        service: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        scope: str | None,
        body: bytes | None,
    ) -> BranchReply:
        out: CIMultiDict[str] = CIMultiDict(headers)
        strip_internal(out)
        out.setdefault(REQUEST_ID_HEADER, new_request_id())
        if body:
            out["Content-Length"] = str(len(body))
        if site == self.config.site:
            local = self.config.service(service)
            if local is None:
                raise SiteUnreachable(site, f"no {service!r} service here", connecting=True)
            rewrite_carriers(out, scope, strip_tokens=self.delegation.strips_tokens(service))
            response = await self.client.open(
                site,
                method,
                URL(str(local.backend).rstrip("/") + path, encoded=True),
                headers=out,
                body=body or None,
                connect_timeout=LOCAL_CONNECT_TIMEOUT,
                read_timeout=LOCAL_READ_TIMEOUT,
            )
        else:
            rewrite_carriers(out, scope)
            keep_credentials_home(
                out,
                is_identity(service) and is_validation_call(method, path, "X-Subject-Token" in out),
            )
            self.delegation.own_call_to_peer(service, out)
            response = await self.open_peer(site, method, PEER_PATH + service + path, out, body)
        data = await read_body(response, site, PEER_ANSWER_LIMIT)
        return BranchReply(site, response.status, dict(end_to_end(response.headers)), data)

    async def token_roles(self, token: str) -> frozenset[str]:
        if self.config.identity is None or self.tokens is None:
            return frozenset()  # no [identity]: this site validates no token for itself
        status, data = await self._validate_locally(token)
        token_doc = token_document(data) if status == 200 else None
        return frozenset(token_roles(token_doc)) if token_doc is not None else frozenset()

    async def validation_status(self, token: str) -> int:
        """The local Keystone's answer to validating ``token`` (with this proxy's own service
        token): 200 when it accepts it. Needs ``[identity]``."""
        status, _ = await self._validate_locally(token)
        return status

    async def _validate_locally(self, token: str) -> tuple[int, bytes]:
        identity = self.config.identity
        assert identity is not None and self.tokens is not None
        headers = {
            "X-Auth-Token": await self.tokens.get(),
            "X-Subject-Token": split_piggyback_lenient(token)[0],
        }
        url = URL(str(identity.auth_url).rstrip("/") + "/auth/tokens?nocatalog", encoded=True)
        response = await self.client.open(
            self.config.site,
            "GET",
            url,
            headers=headers,
            body=None,
            connect_timeout=LOCAL_CONNECT_TIMEOUT,
            read_timeout=LOCAL_CONNECT_TIMEOUT,
        )
        return response.status, await read_body(response, self.config.site, VALIDATION_BODY_LIMIT)

    async def send_to_peer(
        self,
        site: str,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None = None,
    ) -> BranchReply:
        opening = self._send_to_peer(site, method, path, headers, body, timeout)
        return await self._seen("send_to_peer", site, method, path, opening)

    async def _send_to_peer(
        self,
        site: str,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: float | None,
    ) -> BranchReply:
        out: dict[str, str] = dict(headers)
        out.setdefault(REQUEST_ID_HEADER, new_request_id())
        if body:
            out["Content-Length"] = str(len(body))
        response = await self.open_peer(site, method, path, out, body or None, timeout=timeout)
        data = await read_body(response, site, PEER_ANSWER_LIMIT)
        return BranchReply(site, response.status, dict(end_to_end(response.headers)), data)

    def verify(
        self,
        request: web.Request,
        *,
        destination: str | None = None,
        newcomer: PeerConfig | None = None,
    ) -> HopMarker | None:
        """The request's hop marker (None when it has none), once the peer may make this
        request here: the one place where peers are authenticated and the site's trust
        policy (:mod:`trust`) is applied. Raises ForgedHop (or its :class:`NotTrusted`).

        ``destination`` replaces this site's name in the signed message (directory syncs
        are signed for ``*``); ``newcomer`` is a site not yet known, whose directory entry
        an extension admitted: its key may sign the request, as a learned site's."""
        known = self.peers.get(newcomer.name) if newcomer is not None else None

        def keys(peer: str) -> tuple[Ed25519PublicKey, ...]:
            if newcomer is not None and known is None and peer == newcomer.name:
                return newcomer.public_keys
            return self.peers.public_keys(peer)

        marker = verify_hop(
            request.headers,
            request.method,
            request.raw_path,
            destination or self.config.site,
            keys,
            now=time.time(),
            window=self.config.limits.hop_window,
        )
        if marker is None:
            return None
        if self.config.peer_listen is not None and not request.app.get(FOR_PEERS, False):
            raise ForgedHop("peer hops are accepted on this site's peer listener only")
        decision = decide(
            self.config.trust,
            marker.peer,
            configured=self.peers.is_configured(marker.peer),
            path=request.raw_path,
            replicated=any(name in request.headers for name in REPLICA_MARKERS),
        )
        if not decision.allowed:
            self.metrics.untrusted.labels(needs=decision.needs).inc()
            raise NotTrusted(decision.reason)
        return marker

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    def verify_peer(
        self,
        request: web.Request,
        *,
        destination: str | None = None,
        newcomer: PeerConfig | None = None,
    ) -> HopMarker:
        marker = self.verify(request, destination=destination, newcomer=newcomer)
        if marker is None:
            raise ForgedHop(f"{request.path[:100]} is for signed peer proxies only")
        return marker
