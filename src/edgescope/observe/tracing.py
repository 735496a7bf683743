"""OpenTelemetry traces of the proxy: one span per call, one per branch, across sites.

A proxy extension (``[tracing]`` in the site's TOML): for each call a SERVER span (site,
service, scope, carrier, status, the route), and for each branch a CLIENT span (the branch's
site, its status or error, the peer's breaker state when sent, whether the breaker refused
it). The branch's ``traceparent`` (W3C trace context) goes with the branch, to the peer proxy
(whose call span is then its child) or to the local service. So a call that crosses sites is
one trace: Paris's image call, its branch to Corte, Corte's call, Corte's branch to glance.

``traceparent`` is an ordinary end-to-end header, outside the hop signature: it grants
nothing, and a forged one can only mislabel spans, as any client can with its own.

OpenStack services do not pass ``traceparent`` on; nova passes the request id on instead.
So a call that arrives with no ``traceparent`` but with a request id this proxy made (or a
peer sent) for an earlier call becomes a child of that call's span: nova's image call joins
the user's boot. Remembered ids are bounded (``remember``, oldest forgotten first).

Spans are exported by the OpenTelemetry SDK (batched, off the event loop) with OTLP over HTTP
to ``otlp_endpoint``; past ``max_queue`` waiting spans, new ones are dropped, never waited on.

    [tracing]
    otlp_endpoint = "http://127.0.0.1:4318/v1/traces"
    service_name = "edgescope-proxy"      # resource service.name; edgescope.site = the site
    sample_ratio = 1.0                    # share of traces kept (decided where one starts)

Who decides whether a trace is kept: this proxy, for a call from a client (its
``sample_ratio``, drawn at random: a client's ``traceparent`` gives the trace id and the
parent, never the decision, nor can a chosen trace id steer it); the proxy where the trace
started, for a call from a signed peer (its ``traceparent``'s sampled flag is followed).
"""

from __future__ import annotations

import asyncio
import importlib
import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from edgescope.errors import ConfigError
from edgescope.proxy.call import BranchReply, BranchRequest, BranchTrace, Call
from edgescope.proxy.carriers import REQUEST_ID_HEADER
from edgescope.proxy.config import http_url
from edgescope.proxy.extension import (
    Finished,
    ProxyServices,
    Recorded,
    SendBranch,
    StatusSource,
)
from edgescope.proxy.metrics import Bound
from edgescope.proxy.route import Plan

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, SpanContext, Tracer

NS = 1_000_000_000
_EXTRA_MODULES = (
    "opentelemetry.trace.propagation.tracecontext",
    "opentelemetry.sdk.trace",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
)
"""What the ``tracing`` extra brings (pyproject.toml) and this module imports lazily."""
_SPANS = "edgescope.tracing.spans"
"""Where a call's open spans wait for :meth:`Tracing.observe` (``call.notes``, dies with the
call)."""


@dataclass(frozen=True, slots=True)
class TracingConfig:
    """The ``[tracing]`` table of a site's proxy config."""

    otlp_endpoint: str
    service_name: str = "edgescope-proxy"
    max_queue: int = 4096
    export_timeout: float = 5.0
    remember: int = 10_000
    sample_ratio: float = 1.0
    """Share of traces kept, decided by the proxy where a trace enters (a client's own
    sampled flag is not followed) and followed by every proxy it crosses (a signed peer's
    ``traceparent`` flag): the SDK costs ~0.15 ms per call of two spans."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> TracingConfig:
        known = {
            "otlp_endpoint",
            "service_name",
            "max_queue",
            "export_timeout",
            "remember",
            "sample_ratio",
        }
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(
                f"[tracing]: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}"
            )
        endpoint = raw.get("otlp_endpoint")
        try:
            http_url(endpoint, "otlp_endpoint")
        except ConfigError:
            raise ConfigError(
                "[tracing]: otlp_endpoint must be an http(s) URL such as "
                f"http://127.0.0.1:4318/v1/traces, got {endpoint!r}"
            ) from None
        name = raw.get("service_name", "edgescope-proxy")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"tracing.service_name: expected a name, got {name!r}")
        values: dict[str, Any] = {}
        for key, default in (("max_queue", 4096), ("remember", 10_000)):
            value = raw.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"tracing.{key}: expected a positive integer, got {value!r}")
            values[key] = value
        timeout = raw.get("export_timeout", 5.0)
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < math.inf  # nan fails this too
        ):
            raise ConfigError(f"tracing.export_timeout: expected seconds, got {timeout!r}")
        values["export_timeout"] = float(timeout)
        ratio = raw.get("sample_ratio", 1.0)
        if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0 < ratio <= 1:
            raise ConfigError(f"tracing.sample_ratio: expected a number in (0, 1], got {ratio!r}")
        return cls(str(endpoint), name, sample_ratio=float(ratio), **values)


@dataclass(slots=True)
class _CallSpans:
    call: Span
    branches: list[tuple[str, Span]] = field(default_factory=list)


class Tracing:
    """OpenTelemetry spans per call and per branch: the proxy extension."""

    name = "tracing"
    events = ("join", "observe", "site_call", "bind_status", "bounds", "closing")

    def __init__(self, site: str, config: TracingConfig) -> None:
        for module in _EXTRA_MODULES:  # start() imports them; a clean install has none
            try:
                importlib.import_module(module)
            except ImportError as exc:  # shown by .ci/check-install
                raise ConfigError(
                    f"[tracing] needs the OpenTelemetry SDK and its OTLP exporter ({exc.name} "
                    "is not installed): pip install 'edgescope[tracing]'"
                ) from None
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.site = site
        self.config = config
        self.propagator = TraceContextTextMapPropagator()
        self.provider: TracerProvider | None = None
        self.tracer: Tracer | None = None
        self._remembered: OrderedDict[str, SpanContext] = OrderedDict()
        self.forgotten = 0
        """Remembered request ids forgotten to stay within ``remember``."""

    # -- Extension and Observer --------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return []

    def bind_status(self, status: StatusSource) -> None:
        return None

    def bounds(self) -> Sequence[Bound]:
        """The request ids remembered to join a service's call to its user's trace."""
        return (
            Bound(
                "trace_request_ids",
                self._remembered.__len__,
                self.config.remember,
                lambda: self.forgotten,
            ),
        )

    def closing(self) -> None:
        return None

    async def start(self, proxy: ProxyServices) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        from edgescope.observe._sampling import RemoteParent as _RemoteParent

        resource = Resource.create(
            {"service.name": self.config.service_name, "edgescope.site": self.site}
        )
        remote = _RemoteParent(self.config.sample_ratio)
        sampler = ParentBased(
            TraceIdRatioBased(self.config.sample_ratio),
            remote_parent_sampled=remote,
            remote_parent_not_sampled=remote,
        )
        self.provider = TracerProvider(resource=resource, sampler=sampler)
        exporter = OTLPSpanExporter(
            endpoint=self.config.otlp_endpoint, timeout=self.config.export_timeout
        )
        self.provider.add_span_processor(
            BatchSpanProcessor(
                exporter,
                max_queue_size=self.config.max_queue,
                max_export_batch_size=min(512, self.config.max_queue),
                schedule_delay_millis=500,
            )
        )
        self.tracer = self.provider.get_tracer("edgescope.proxy")

    async def stop(self) -> None:
        if self.provider is not None:
            await asyncio.to_thread(self.provider.shutdown)  # flushes what is queued
            self.provider = self.tracer = None

    def join(self, call: Call, plan: Plan, body: bytes | None) -> _TraceHooks | None:
        if self.tracer is None:
            return None
        spans = _CallSpans(self._call_span(call, None))
        call.notes[_SPANS] = spans
        return _TraceHooks(self, call, spans)

    def observe(self, call: Call, status: int, seconds: float) -> None:
        if self.tracer is None:
            return
        from opentelemetry.trace import Status, StatusCode

        found = call.notes.get(_SPANS)
        spans = (
            found if isinstance(found, _CallSpans) else _CallSpans(self._call_span(call, seconds))
        )
        _end_branches(spans.branches, call.branches)
        span = spans.call
        route = ", ".join(f"{b.site}={b.status or 'unreachable'}" for b in call.branches)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("edgescope.route", route)
        span.set_attribute("edgescope.sites", [b.site for b in call.branches])
        if call.resolved is not None:  # what around()/nearest() were at the entry proxy
            span.set_attribute("edgescope.resolved", call.resolved)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"answered {status}"))
        span.end()

    def site_call(self, origin: str, method: str, path: str, trace: BranchTrace) -> None:
        """An extension's own call (a record push, an undo, a replay, a directory sync): a
        CLIENT span of its own, as long as the call took."""
        if self.tracer is None:
            return
        import time

        from opentelemetry import trace as otel
        from opentelemetry.trace import Status, StatusCode

        seconds = trace.seconds or 0.0
        end = time.time_ns()
        span = self.tracer.start_span(
            f"{origin} → {trace.site}",
            kind=otel.SpanKind.CLIENT,
            start_time=end - int(seconds * NS),
            attributes={
                "edgescope.site": self.site,
                "edgescope.peer": trace.site,
                "edgescope.origin": origin,
                "edgescope.breaker": trace.breaker,
                "http.request.method": method,
                "url.path": path[:200],
            },
        )
        if trace.status is not None:
            span.set_attribute("http.response.status_code", trace.status)
        if trace.error:
            span.set_attribute("error.type", trace.error[:200])
            span.set_status(Status(StatusCode.ERROR, trace.error[:200]))
        elif trace.status is not None and trace.status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"answered {trace.status}"))
        span.end(end_time=end)

    # -- spans ------------------------------------------------------------------------------

    def _call_span(self, call: Call, seconds: float | None) -> Span:
        """The call's SERVER span, child of the incoming ``traceparent``, else of the call
        whose request id it carries; ``seconds`` ago when the call is already answered."""
        import time

        from opentelemetry import trace

        assert self.tracer is not None
        headers = call.request.headers
        parent: Context | None = self.propagator.extract(headers)
        if not trace.get_current_span(parent).get_span_context().is_valid:
            remembered = self._remembered.get(headers.get(REQUEST_ID_HEADER, ""))
            parent = (
                trace.set_span_in_context(trace.NonRecordingSpan(remembered))
                if remembered is not None
                else None
            )
        start = None if seconds is None else time.time_ns() - int(seconds * NS)
        span = self.tracer.start_span(
            f"{call.service} {call.method}",
            context=parent,
            kind=trace.SpanKind.SERVER,
            start_time=start,
            attributes={
                "edgescope.site": self.site,
                "edgescope.service": call.service,
                "edgescope.scope": call.scope_text or "",
                "edgescope.carrier": call.carrier,
                "edgescope.mode": call.mode,
                "edgescope.from_peer": call.from_peer or "",
                "edgescope.request_id": call.request_id,
                "http.request.method": call.method,
                "url.path": call.path.split("?", 1)[0][:200],
            },
        )
        if call.from_peer is not None or call.request_id != headers.get(REQUEST_ID_HEADER):
            self._remember(call.request_id, span.get_span_context())  # an id we or a peer made
        return span

    def _remember(self, request_id: str, context: SpanContext) -> None:
        self._remembered[request_id] = context
        self._remembered.move_to_end(request_id)
        while len(self._remembered) > self.config.remember:
            self._remembered.popitem(last=False)
            self.forgotten += 1

    def branch_span(self, call: Call, spans: _CallSpans, request: BranchRequest) -> None:
        """Open the branch's CLIENT span and put its ``traceparent`` on the branch."""
        from opentelemetry import trace

        assert self.tracer is not None
        span = self.tracer.start_span(
            f"{call.service} → {request.site}",
            context=trace.set_span_in_context(spans.call),
            kind=trace.SpanKind.CLIENT,
            attributes={"edgescope.site": request.site, "edgescope.service": call.service},
        )
        spans.branches.append((request.site, span))
        self.propagator.inject(request.headers, context=trace.set_span_in_context(span))


def _end_branches(spans: list[tuple[str, Span]], traces: list[BranchTrace]) -> None:
    """End each branch span with what its branch did (the n-th span of a site is its n-th
    branch); a span whose branch was never sent ends now."""
    from opentelemetry.trace import Status, StatusCode

    unused = list(spans)
    for trace in traces:
        match = next((i for i, (site, _) in enumerate(unused) if site == trace.site), None)
        if match is None:
            continue
        _, span = unused.pop(match)
        refused = trace.error.startswith("circuit breaker open")
        span.set_attribute("edgescope.breaker", trace.breaker)
        span.set_attribute("edgescope.breaker.refused", refused)
        if trace.status is not None:
            span.set_attribute("http.response.status_code", trace.status)
        if trace.error:
            span.set_attribute("error.type", trace.error[:200])
            span.set_status(Status(StatusCode.ERROR, trace.error[:200]))
        started = getattr(span, "start_time", None)
        end = None
        if isinstance(started, int) and trace.seconds is not None:
            end = started + int(trace.seconds * NS)
        span.end(end_time=end)
    for _, span in unused:
        span.set_attribute("edgescope.sent", False)
        span.end()


class _TraceHooks:
    """The tracing extension's part in one call: a span per branch, ``traceparent`` on it."""

    reads_replies = False
    queues_writes = False

    def __init__(self, tracing: Tracing, call: Call, spans: _CallSpans) -> None:
        self.tracing, self.call, self.spans = tracing, call, spans

    def branch(self, request: BranchRequest) -> BranchRequest:
        self.tracing.branch_span(self.call, self.spans, request)
        return request

    async def apply_local(self, request: BranchRequest, send: SendBranch) -> BranchReply:
        return await send()

    async def record(self, finished: Finished) -> Recorded:
        return Recorded()

    def collapse(self, body: bytes, replies: Sequence[BranchReply]) -> bytes:
        return body
