"""``trust_forwarded``: behind a TLS-terminating HAProxy the services must build ``https``
links to the client's host, so the proxy keeps the ``X-Forwarded-*`` it was given; by
default it says what it saw itself (a client cannot make it lie)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web

import sitekeys
from edgescope.errors import ConfigError
from edgescope.proxy.config import parse_config

FROM_HAPROXY = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "api.paris.example:8774"}


def raw(trust: object = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "site": "Paris",
        "listen": "127.0.0.1:0",
        "private_key": sitekeys.private("Paris"),
        "services": [{"type": "compute", "prefix": "/compute", "backend": "http://127.0.0.1:9"}],
        "breaker": {"probe_interval": 0},
    }
    if trust is not None:
        config["trust_forwarded"] = trust
    return config


@pytest.fixture
async def proxy_with() -> AsyncIterator[Callable[[bool], Any]]:
    from edgescope.proxy.server import SiteProxy

    cleanups: list[Any] = []

    async def seen(request: web.Request) -> web.Response:
        names = ("X-Forwarded-Proto", "X-Forwarded-Host")
        return web.json_response({name: request.headers.get(name) for name in names})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", seen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    backend_port = runner.addresses[0][1]
    cleanups.append(runner.cleanup)

    async def make(trust: bool) -> str:
        config = raw(trust)
        config["services"][0]["backend"] = f"http://127.0.0.1:{backend_port}"
        proxy = SiteProxy(parse_config(config))
        await proxy.start()
        cleanups.append(proxy.stop)
        return f"http://127.0.0.1:{proxy.addresses['main'][1]}/compute/v2.1/servers"

    yield make
    for cleanup in reversed(cleanups):
        await cleanup()


async def get(url: str, headers: dict[str, str]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as answer:
        assert answer.status == 200
        body: dict[str, Any] = await answer.json()
        return body


async def test_the_proxy_keeps_forwarded_headers_only_when_told_to_trust_them(
    proxy_with: Callable[[bool], Any],
) -> None:
    trusting, default = await proxy_with(True), await proxy_with(False)
    assert await get(trusting, FROM_HAPROXY) == FROM_HAPROXY
    own = await get(default, FROM_HAPROXY)
    assert own["X-Forwarded-Proto"] == "http" and own["X-Forwarded-Host"].startswith("127.0.0.1:")
    bare = await get(trusting, {})  # nothing given: what the proxy saw, as before
    assert bare["X-Forwarded-Proto"] == "http" and bare["X-Forwarded-Host"].startswith("127.0.")


def test_trust_forwarded_must_be_a_boolean() -> None:
    assert parse_config(raw()).trust_forwarded is False
    with pytest.raises(ConfigError, match="trust_forwarded: expected true or false"):
        parse_config(raw("yes"))
