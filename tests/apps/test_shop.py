"""A scope given to the frontend at Paris reaches Corte's catalog through W3C baggage,
with no scope code in the application."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from shop import catalog_app, frontend_app, instrumented_servers

import sitekeys
from edgescope.proxy.config import parse_config
from edgescope.proxy.server import SiteProxy


def bound() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


async def serve(app: web.Application, sock: socket.socket, runners: list[web.AppRunner]) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    runners.append(runner)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
async def shop() -> AsyncIterator[dict[str, Any]]:
    """Paris and Corte, each: proxy + frontend + catalog; the frontend calls its own proxy."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    names = ("Paris", "Corte")
    proxy_socks = {name: bound() for name in names}
    proxy_url = {name: f"http://127.0.0.1:{proxy_socks[name].getsockname()[1]}" for name in names}
    runners: list[web.AppRunner] = []
    proxies = []
    for name in names:
        with instrumented_servers(provider):
            apps = frontend_app(name, proxy_url[name] + "/catalog", provider), catalog_app(name)
        frontend = await serve(apps[0], bound(), runners)
        catalog = await serve(apps[1], bound(), runners)
        config = parse_config(
            {
                "site": name,
                "listen": "127.0.0.1:0",
                "private_key": sitekeys.private(name),
                "services": [
                    {"type": "frontend", "prefix": "/frontend", "backend": frontend},
                    {"type": "catalog", "prefix": "/catalog", "backend": catalog},
                ],
                "peers": [
                    {"name": other, "url": proxy_url[other], "public_key": sitekeys.public(other)}
                    for other in names
                    if other != name
                ],
                "breaker": {"probe_interval": 0},
            }
        )
        proxy = SiteProxy(config)
        await proxy.start(sockets={"main": proxy_socks[name]})
        proxies.append(proxy)
    yield {"url": proxy_url, "spans": exporter}
    for proxy in proxies:
        await proxy.stop()
    for runner in runners:
        await runner.cleanup()


async def test_baggage_scope_reaches_cortes_catalog(shop: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        baggage = {"baggage": "scope=%7Bcatalog%3A%20Corte%7D"}  # {catalog: Corte}
        async with session.get(
            shop["url"]["Paris"] + "/frontend/products", headers=baggage
        ) as response:
            assert response.status == 200
            body = await response.json()
        assert body == {
            "frontend": "Paris",
            "catalog": {"site": "Corte", "products": ["corte-cheese"]},
        }
        async with session.get(shop["url"]["Paris"] + "/frontend/products") as response:
            body = await response.json()
        assert body["catalog"]["site"] == "Paris"  # no scope: everything local
    # The hop really went through the instrumented client (a client span per call).
    assert any(span.kind.name == "CLIENT" for span in shop["spans"].get_finished_spans())
