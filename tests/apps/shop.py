"""A composed sample application with NO scope code: a "frontend" that calls a "catalog".

Both are plain aiohttp services instrumented with OpenTelemetry
(opentelemetry-instrumentation-aiohttp-server on the way in, -aiohttp-client on the way
out). OpenTelemetry's default propagators (W3C tracecontext + baggage) copy the incoming
``baggage`` header onto the frontend's outgoing call, and that is all edgescope needs: the
``scope`` baggage entry reaches the proxy in front of the catalog, which routes by it.
(One generic OpenTelemetry middleware, :func:`keep_baggage`, works around the server
instrumentation dropping incoming baggage; it has no notion of scopes.)

    with instrumented_servers(provider):   # OpenTelemetry's documented instrumentor
        frontend = frontend_app("Paris", "http://paris-proxy/catalog", provider)
        catalog = catalog_app("Paris")
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

import aiohttp
from aiohttp import web
from opentelemetry import baggage, context, propagate
from opentelemetry.instrumentation.aiohttp_client import create_trace_config
from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
from opentelemetry.sdk.trace import TracerProvider

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def keep_baggage(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Generic OpenTelemetry plumbing (knows nothing of scopes): keep incoming W3C baggage.

    opentelemetry-instrumentation-aiohttp-server extracts only the parent span, and drops
    the rest of the incoming context (upstream: open-telemetry/opentelemetry-python-contrib
    pull request 2510). This re-adds the incoming baggage to the current context, as the
    Flask and Django instrumentations already do.
    """
    ctx = context.get_current()
    for key, value in baggage.get_all(propagate.extract(request.headers)).items():
        ctx = baggage.set_baggage(key, value, ctx)
    token = context.attach(ctx)
    try:
        return await handler(request)
    finally:
        context.detach(token)


CATALOG_URL = web.AppKey("catalog_url", str)
SESSION = web.AppKey("session", aiohttp.ClientSession)


@contextmanager
def instrumented_servers(tracer_provider: TracerProvider) -> Iterator[None]:
    """Applications created inside are traced (and propagate context) by OpenTelemetry.

    The instrumentor patches ``web.Application`` process-wide, so it is undone on exit: the
    edgescope proxies of the test, created later in the same process, stay uninstrumented.
    """
    instrumentor = AioHttpServerInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider)
    try:
        yield
    finally:
        instrumentor.uninstrument()


def frontend_app(site: str, catalog_url: str, tracer_provider: TracerProvider) -> web.Application:
    """GET /products: the catalog's products, as the frontend of ``site`` sees them."""

    async def products(request: web.Request) -> web.Response:
        async with request.app[SESSION].get(f"{request.app[CATALOG_URL]}/products") as response:
            catalog = await response.json()
        return web.json_response({"frontend": site, "catalog": catalog})

    async def session_context(app: web.Application):  # type: ignore[no-untyped-def]
        trace_config = create_trace_config(tracer_provider=tracer_provider)
        app[SESSION] = aiohttp.ClientSession(trace_configs=[trace_config])
        yield
        await app[SESSION].close()

    app = web.Application(middlewares=[keep_baggage])
    app[CATALOG_URL] = catalog_url
    app.cleanup_ctx.append(session_context)
    app.router.add_get("/products", products)
    return app


def catalog_app(site: str) -> web.Application:
    """GET /products: this site's products."""

    async def products(request: web.Request) -> web.Response:
        return web.json_response({"site": site, "products": [f"{site.lower()}-cheese"]})

    app = web.Application()
    app.router.add_get("/products", products)
    return app
