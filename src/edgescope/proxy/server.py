"""The site proxy's aiohttp application: every socket and clock of the proxy lives here.

Neighbours: for each call, :mod:`carriers` finds the scope, scope-lang parses it,
:mod:`protocol` checks the hop marker (the sending site's Ed25519 signature, through
:mod:`sender`), :mod:`route` decides, :mod:`dispatch` runs the decision (with scope-lang's
evaluator) through :mod:`sender` and :mod:`forward`, and :mod:`responses` shapes errors.
:mod:`peerbook`, :mod:`breaker` and :mod:`metrics` hold the per-peer state.

Listeners: the main one (``listen``) serves every prefix-based service, the proxy's own
``/edgescope/health``, ``/edgescope/status``, ``/metrics``, and peer hops on
``/edgescope/svc/<service-type>/...``; each port-based service gets its own listener. With
``peer_listen``, peer hops come only on a peer listener of their own, with ``[tls]`` over TLS
(mutual by default: only clients with a certificate of ``ca_file`` get in).

    proxy = SiteProxy(load_config("paris.toml"))
    await proxy.start()          # or start(sockets={...}) with pre-bound sockets (tests)
    ...
    await proxy.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import secrets
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from edgescope.aio import spawn
from edgescope.errors import EdgescopeError, ErrorCode, ScopeError
from edgescope.lang import ServiceRegistry, parse_scope
from edgescope.lang.network import NetworkView, consulted, needs_network
from edgescope.lang.registry import DEFAULT_REGISTRY
from edgescope.lang.unparse import unparse_expr
from edgescope.proxy.call import Call, ClientRequest
from edgescope.proxy.carriers import (
    MODE_HEADER,
    REQUEST_ID_HEADER,
    CorrelationIds,
    ScopeMemory,
    is_request_id,
    new_request_id,
    read_scope_text,
)
from edgescope.proxy.config import ProxyConfig, ServiceConfig
from edgescope.proxy.delegation import Delegation
from edgescope.proxy.dispatch import Dispatcher
from edgescope.proxy.extension import (
    BindStatus,
    Bounds,
    Closing,
    Extension,
    ExtensionSet,
    Observe,
    SiteCall,
)
from edgescope.proxy.forward import Upstream, short_backoff
from edgescope.proxy.identity import ServiceToken
from edgescope.proxy.ingress import (
    check_path,
    check_scope_width,
    mode_of,
    without_internal_headers,
)
from edgescope.proxy.listener import FOR_PEERS, GuardedSite
from edgescope.proxy.metrics import ProxyMetrics
from edgescope.proxy.probes import Prober
from edgescope.proxy.protocol import (
    HEALTH_PATH,
    PEER_PATH,
    STATUS_PATH,
    ForgedHop,
)
from edgescope.proxy.responses import error_body, error_response, json_error
from edgescope.proxy.route import plan_route
from edgescope.proxy.sender import Sender, scope_text, server_tls

access_log = logging.getLogger("edgescope.proxy.access")
log = logging.getLogger("edgescope.proxy")
_REQUEST_ID_KEY = web.RequestKey("edgescope_request_id", str)


class SiteProxy:
    """One site's proxy: config in, listeners out."""

    def __init__(self, config: ProxyConfig, *, extensions: Sequence[Extension] = ()) -> None:
        self.config = config
        self.extensions = ExtensionSet(extensions)
        """The extensions, each event's handlers looked up (and checked) here, at load."""
        self.upstream = Upstream()
        self.metrics = ProxyMetrics(config.site)
        # This process's own key: a site may run several proxies behind one front (the loopback
        # testbed's replica tests do), and an id another one minted is not forgotten here,
        # only unknown (local, as before); so is an id minted before a restart.
        self.memory = ScopeMemory(
            config.limits.scope_memory,
            ids=CorrelationIds(secrets.token_bytes(32)),
            horizon=config.limits.scope_memory_horizon,
        )
        registry = DEFAULT_REGISTRY
        for service in config.services:
            if registry.canonical(service.type) is None:
                registry = registry.with_service(service.type)
        self.registry: ServiceRegistry = registry
        # Parsing is pure and scopes repeat (one per user command), so cache the results.
        self._parse = functools.lru_cache(maxsize=4096)(
            functools.partial(parse_scope, registry=registry)
        )
        tokens = (
            ServiceToken(config.identity, self.upstream, config.site) if config.identity else None
        )
        self.delegation = Delegation(config, tokens)
        """Cross-site identity, in one component (its points: ``delegation.py``)."""
        self.sender = Sender(config, self.upstream, self.metrics, tokens, self.delegation)
        if self.extensions.handles(SiteCall):
            self.sender.own_calls = self.extensions.site_call
        self.peers = self.sender.peers
        self.dispatcher = Dispatcher(
            config,
            self.sender,
            self.metrics,
            self.delegation,
            self.memory,
            self.extensions,
        )
        self._runners: list[web.AppRunner] = []
        self._prefixes = sorted(
            (s for s in config.services if s.prefix),
            key=lambda s: len(s.prefix or ""),
            reverse=True,
        )
        self.addresses: dict[str, tuple[str, int]] = {}
        """Bound (host, port) per listener: ``"main"`` and each port-based service type."""
        self.prober = Prober(self.sender, config.breaker)
        self._stop_probing = asyncio.Event()
        self._probe_task: asyncio.Task[None] | None = None

    async def start(self, sockets: Mapping[str, socket.socket] | None = None) -> None:
        """Listen; ``sockets`` maps ``"main"``/service type to pre-bound sockets (port 0 tests)."""
        try:
            await self._start(sockets)
        except BaseException:
            await self.stop()  # nothing half-started is left behind
            raise

    async def _start(self, sockets: Mapping[str, socket.socket] | None) -> None:
        await self.upstream.start()
        for _ in self.extensions.each(BindStatus(self.status_document)):
            pass
        for extension in self.extensions:
            await extension.start(self.sender)
        host = self.config.host
        listeners: list[tuple[str, web.Application, str, int]] = [
            ("main", self._main_app(), host, self.config.port)
        ]
        if self.config.peer_listen is not None:
            listeners.append(("peer", self._main_app(peers=True), *self.config.peer_listen))
        for service in self.config.services:
            if service.port is not None:
                listeners.append((service.type, self._service_app(service), host, service.port))
        limits = self.config.limits
        for name, app, host, port in listeners:
            runner = web.AppRunner(
                app,
                access_log=None,
                handle_signals=False,
                keepalive_timeout=limits.client_idle_timeout,  # also bounds a slow head
            )
            await runner.setup()
            self._runners.append(runner)
            sock = (sockets or {}).get(name) or _listening(host, port)
            short_backoff(sock)  # answers caught in a cut go through soon after the heal
            tls = server_tls(self.config.tls) if name == "peer" and self.config.tls else None
            site = GuardedSite(
                runner, sock, max_connections=limits.max_connections, ssl_context=tls
            )
            await site.start()
            self._report_connections(name, runner, site)
            bound = sock.getsockname()
            self.addresses[name] = (bound[0], bound[1])
        self._report_bounds()
        if self.config.breaker.probe_interval > 0:
            self._probe_task = spawn(
                self.prober.run(self._stop_probing), name=f"edgescope-probes-{self.config.site}"
            )

    def _report_connections(self, name: str, runner: web.AppRunner, site: GuardedSite) -> None:
        def open_now() -> int:
            return len(runner.server.connections) if runner.server is not None else 0

        limit = self.config.limits.max_connections
        self.metrics.bound(f"connections_{name}", open_now, limit, lambda: site.refused)

    def _report_bounds(self) -> None:
        """Every bounded map and cache of the proxy and its extensions, at ``/metrics``."""
        memory, parse = self.memory, self._parse
        self.metrics.bound("scope_memory", memory.__len__, memory.capacity, lambda: memory.evicted)
        self.metrics.bound(
            "scope_parse_cache",
            lambda: parse.cache_info().currsize,
            parse.cache_info().maxsize or 0,
        )
        sender = self.sender
        self.metrics.bound(
            "peer_slots",  # size: peers at their bound now; refused: branches that gave up
            sender.peers.full_gates,
            self.config.limits.max_per_peer,
            lambda: sender.slot_refusals,
        )
        info = scope_text.cache_info
        self.metrics.bound("scope_text_cache", lambda: info().currsize, info().maxsize or 0)
        for bounds in self.extensions.each(Bounds()):
            for bound in bounds:
                self.metrics.bound(bound.name, bound.size, bound.limit, bound.refused)

    async def stop(self) -> None:
        for _ in self.extensions.each(Closing()):
            pass
        self._stop_probing.set()
        if self._probe_task is not None:
            self._probe_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe_task
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        for extension in reversed(self.extensions.all):
            await extension.stop()
        await self.upstream.close()

    @property
    def url(self) -> str:
        host, port = self.addresses["main"]
        return f"http://{host}:{port}"

    @property
    def peer_url(self) -> str:
        """Where peers reach this proxy: the peer listener if any, else the main one."""
        if "peer" not in self.addresses:
            return self.url
        host, port = self.addresses["peer"]
        return f"{'https' if self.config.tls else 'http'}://{host}:{port}"

    def _main_app(self, *, peers: bool = False) -> web.Application:
        """The main listener's app; with ``peers``, the peer listener's (peer hops only)."""
        app = web.Application(client_max_size=1024**4)
        app[FOR_PEERS] = peers
        app.router.add_get(HEALTH_PATH, self._health)
        app.router.add_get(STATUS_PATH, self._status)
        app.router.add_get("/metrics", self._metrics)
        for extension in self.extensions:
            app.router.add_routes(extension.routes())
        app.router.add_route("*", "/{tail:.*}", self._handle_main)
        return app

    def _service_app(self, service: ServiceConfig) -> web.Application:
        app = web.Application(client_max_size=1024**4)
        app[FOR_PEERS] = False

        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._handle(request, service.type, request.raw_path, "")

        app.router.add_route("*", "/{tail:.*}", handle)
        return app

    async def _handle_main(self, request: web.Request) -> web.StreamResponse:
        raw = request.raw_path
        if raw.startswith(PEER_PATH):
            service_type, _, rest = raw[len(PEER_PATH) :].partition("/")
            service_type = service_type.split("?", 1)[0]
            return await self._handle(request, service_type, "/" + rest, "", peer_path=True)
        for service in self._prefixes:
            prefix = service.prefix or ""
            if raw == prefix or raw.startswith((prefix + "/", prefix + "?")):
                rest = raw[len(prefix) :]
                return await self._handle(
                    request, service.type, rest if rest.startswith("/") else "/" + rest, prefix
                )
        known = ", ".join(s.prefix or "" for s in self._prefixes) or "(none)"
        return error_response(
            ErrorCode.UNKNOWN_SERVICE,
            f"no service of site {self.config.site} is exposed at "
            f"{request.path[:100]!r}; prefixes: {known}",
            request_id=_request_id(request),
        )

    async def _handle(
        self, request: web.Request, service: str, path: str, prefix: str, *, peer_path: bool = False
    ) -> web.StreamResponse:
        started = time.monotonic()
        request_id = _request_id(request)
        call = Call(
            request=_client_request(request),
            service=service,
            path=path,
            prefix=prefix,
            request_id=request_id,
        )
        try:
            response = await self._route(call, request, peer_path)
        except (ConnectionResetError, asyncio.CancelledError):
            raise  # the client went away: nothing to answer
        except Exception as exc:
            response = self._answer(call, exc)
        status = response.status
        label = service if self.config.service(service) is not None else "unknown"
        self.metrics.requests.labels(service=label, status=str(status)).inc()
        if access_log.isEnabledFor(logging.INFO):
            self._log_access(call, status, started)
        if self.extensions.handles(Observe):
            self._observe(call, status, time.monotonic() - started)
        return response

    def _observe(self, call: Call, status: int, seconds: float) -> None:
        for extension, observe in self.extensions.handlers(Observe):
            try:
                observe(call, status, seconds)
            except Exception:  # an observer's bug never fails the call it watches
                log.exception("observer %s failed", type(extension).__name__)

    def _log_access(self, call: Call, status: int, started: float) -> None:
        """One structured line per hop (JSON, logger ``edgescope.proxy.access``)."""
        request, request_id, service, path = (
            call.request,
            call.request_id,
            call.service,
            call.path,
        )
        access_log.info(
            json.dumps(
                {
                    "site": self.config.site,
                    "request_id": request_id,
                    "method": request.method,
                    "service": service,
                    "path": path[:200],
                    "scope": call.scope_text,
                    "carrier": call.carrier,
                    "from_peer": call.from_peer,
                    "resolved": call.resolved,
                    "sites": call.chosen,
                    "status": status,
                    "latency_ms": round((time.monotonic() - started) * 1000, 3),
                }
            )
        )

    async def _route(self, call: Call, raw: web.Request, peer_path: bool) -> web.StreamResponse:
        hop = self.sender.verify(raw)  # and the trust policy (proxy/trust.py)
        if peer_path and hop is None:
            raise ForgedHop(f"{PEER_PATH}... is for peer proxies only (no hop marker)")
        if hop is None and raw.app[FOR_PEERS]:
            raise ForgedHop("this listener is for peer proxies only; clients use the main one")
        if hop is None:
            call.request = without_internal_headers(call.request)
        request = call.request
        check_path(call.path)
        call.mode = mode_of(request.headers.get(MODE_HEADER))
        if self.config.service(call.service) is None:
            return self._error(
                ErrorCode.UNKNOWN_SERVICE,
                f"site {self.config.site} has no {call.service!r} service; it has "
                f"{', '.join(s.type for s in self.config.services)}",
                call.request_id,
            )
        call.from_peer = hop.peer if hop else None
        found = read_scope_text(
            request.headers, self.config.limits.max_scope_bytes, self.memory, self.config.carriers
        )
        scope = None
        if found is not None:
            call.carrier, call.scope_text = found.carrier, found.text
            if found.request_id is not None:  # a handle: the call goes on under its id
                call.request_id = found.request_id
            check_scope_width(found.text, self.config.limits.max_scope_sites)
            scope = self._parse(found.text)
        network = None
        if scope is not None and needs_network(scope):
            network = self.network_view()
            for site in consulted(scope, network):  # probed from now on: RTTs stay fresh
                self.peers.used(site)
        plan = plan_route(
            scope,
            call.service,
            self.config.site,
            self.peers.names(),
            hops=hop.hops if hop else 0,
            max_hops=self.config.limits.max_hops,
            max_fanout=self.config.limits.max_fanout,
            ingress=hop is None,
            network=network,
        )
        call.hops = hop.hops if hop else 0
        if network is not None:
            call.resolved = unparse_expr(plan.expr)
        return await self.dispatcher.run(call, plan, _Connection(raw))

    def network_view(self) -> NetworkView:
        """What around()/nearest() resolve from: this proxy's RTTs (the least of each peer's
        last probes), the services each peer's health answer named, and open breakers. A
        peer not probed yet has neither: it is inside no ``around`` until it is measured."""
        breakers = self.peers.breakers()
        services = dict(self.prober.services)
        services[self.config.site] = frozenset(s.type for s in self.config.services)
        return NetworkView(
            self.config.site,
            (self.config.site, *(p.name for p in self.peers.peers())),
            {self.config.site: self.prober.path_rtt_ms()},
            frozenset(name for name, b in breakers.items() if b.state == "open"),
            services,
        )

    def _answer(self, call: Call, exc: Exception) -> web.Response:
        """The one place an error becomes the answer to a call: an edgescope error answers
        with its own code (or a refusal's status); anything else is a bug of the proxy, a
        500 logged with its traceback (the client still gets a clean OpenStack body)."""
        answer = exc.answer() if isinstance(exc, EdgescopeError) else None
        if answer is None:
            log.error("internal error serving %s %s", call.method, call.path[:200], exc_info=exc)
            message = f"edgescope proxy error: {type(exc).__name__}"
            return self._error(ErrorCode.INTERNAL_ERROR, message, call.request_id)
        status, title, message = answer
        details = None
        if isinstance(exc, ScopeError) and exc.code is ErrorCode.BAD_SCOPE:
            message = f"bad scope in {call.carrier}: {message}"
            details = exc.context() if exc.source else None
        return json_error(error_body(status, title, message, details), status, call.request_id)

    def _error(
        self, code: ErrorCode, message: str, request_id: str, details: str | None = None
    ) -> web.Response:
        return error_response(code, message, request_id=request_id, details=details)

    async def _health(self, request: web.Request) -> web.Response:
        """Alive, and the services run here (what peers' ``around`` choose from)."""
        services = [s.type for s in self.config.services]
        return web.json_response({"site": self.config.site, "status": "ok", "services": services})

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(self.status_document())

    def status_document(self) -> dict[str, Any]:
        """What ``/edgescope/status`` answers: peers (breaker, failures, last error, RTT, the
        RTT around()/nearest() use, the services their health answer named) and services."""
        breakers = self.peers.breakers()
        path_rtt = self.prober.path_rtt_ms()
        peers = [
            {
                "name": p.name,
                "url": str(p.url),
                "breaker": breakers[p.name].state if p.name in breakers else "unused",
                "failures": breakers[p.name].failures if p.name in breakers else 0,
                "last_error": breakers[p.name].last_error if p.name in breakers else "",
                "rtt_ms": self.prober.rtt_ms.get(p.name),
                "path_rtt_ms": path_rtt.get(p.name),
                "services": sorted(self.prober.services.get(p.name, ())),
            }
            for p in self.peers.peers()
        ]
        services = [
            {"type": s.type, "prefix": s.prefix, "port": s.port, "backend": str(s.backend)}
            for s in self.config.services
        ]
        return {"site": self.config.site, "peers": peers, "services": services}

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self.metrics.render(), headers={"Content-Type": self.metrics.content_type}
        )


def _listening(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, reuse_port=False)


def _client_request(request: web.Request) -> ClientRequest:
    """What the client sent, as the engine sees it: no copy of the headers or the body."""
    return ClientRequest(
        method=request.method,
        raw_path=request.raw_path,
        headers=request.headers,
        body=request.content,
        has_body=request.body_exists,
        content_length=request.content_length,
        host=request.host,
        scheme=request.scheme,
        remote=request.remote,
    )


class _Connection:
    """The client's connection, where an answer streams back (:class:`replies.ClientLink`)."""

    __slots__ = ("request",)

    def __init__(self, request: web.Request) -> None:
        self.request = request

    async def prepare(self, answer: web.StreamResponse) -> None:
        await answer.prepare(self.request)

    def cut(self) -> None:
        if self.request.transport is not None:
            self.request.transport.close()


def _request_id(request: web.Request) -> str:
    value = request.headers.get(REQUEST_ID_HEADER)
    if is_request_id(value):
        return str(value)
    request_id = request.get(_REQUEST_ID_KEY) or new_request_id()
    request[_REQUEST_ID_KEY] = request_id
    return request_id
