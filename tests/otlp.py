"""A real OTLP/HTTP trace receiver, in process: what a collector (Jaeger, the OpenTelemetry
Collector) receives, decoded with the official protobuf types (opentelemetry-proto).

    collector = Collector()
    url = await collector.start(sock)           # POST <url> with ExportTraceServiceRequest
    spans = await collector.wait(lambda spans: len(spans) >= 4)
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

PATH = "/v1/traces"


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as received, with its resource's ``edgescope.site``."""

    site: str
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_id: str
    attributes: dict[str, Any]
    status_code: int
    start_ns: int
    end_ns: int


def _value(any_value: Any) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return [_value(v) for v in any_value.array_value.values]
    return getattr(any_value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs}


class Collector:
    """Receives OTLP/HTTP protobuf exports; keeps every span."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.runner: web.AppRunner | None = None

    async def start(self, sock: socket.socket) -> str:
        app = web.Application()
        app.router.add_post(PATH, self._export)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.SockSite(self.runner, sock).start()
        host, port = sock.getsockname()[:2]
        return f"http://{host}:{port}{PATH}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        for resource_spans in message.resource_spans:
            site = _attributes(resource_spans.resource.attributes).get("edgescope.site", "")
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(
                        ReceivedSpan(
                            site,
                            span.name,
                            span.kind,
                            span.trace_id.hex(),
                            span.span_id.hex(),
                            span.parent_span_id.hex(),
                            _attributes(span.attributes),
                            span.status.code,
                            span.start_time_unix_nano,
                            span.end_time_unix_nano,
                        )
                    )
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def wait(
        self, enough: Callable[[list[ReceivedSpan]], bool], timeout: float = 20.0
    ) -> list[ReceivedSpan]:
        """The spans received, once ``enough`` says so; fails after ``timeout`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not enough(self.spans):
            if loop.time() > deadline:
                names = [(s.site, s.name) for s in self.spans]
                raise AssertionError(f"not enough spans within {timeout:.0f} s: {names}")
            await asyncio.sleep(0.1)
        return list(self.spans)
