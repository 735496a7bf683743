"""A peer's health answer is read with bounds (a hostile peer found them missing, 2026-12-07):
an answer over the size limit, one trickled byte by byte, or one that is not JSON is the
peer's failure, never a huge read nor a probe held open."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from yarl import URL

from edgescope.errors import SiteUnreachable
from edgescope.proxy.forward import SMALL_JSON_MAX_BYTES, Upstream, get_json


async def _huge(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"services": ["' + b"a" * (8 * SMALL_JSON_MAX_BYTES))
    return response


async def _trickle(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    for _ in range(200):
        await response.write(b" ")
        await asyncio.sleep(0.1)
    await response.write(b"{}")
    return response


async def _json(_request: web.Request) -> web.Response:
    return web.json_response({"site": "Corte", "services": ["image"]})


async def _not_json(_request: web.Request) -> web.Response:
    return web.Response(body=b"[" * 30_000)  # nested too deep, under the limit


@pytest.fixture
async def peer() -> AsyncIterator[URL]:
    app = web.Application()
    for path, handler in (("/huge", _huge), ("/trickle", _trickle), ("/ok", _json)):
        app.router.add_get(path, handler)
    app.router.add_get("/nested", _not_json)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield URL(f"http://127.0.0.1:{port}")
    await runner.cleanup()


async def test_a_good_answer_is_read(peer: URL) -> None:
    async with Upstream() as upstream:
        answer = await get_json(upstream, "Corte", peer / "ok", timeout=5)
    assert answer == {"site": "Corte", "services": ["image"]}


async def test_an_answer_over_the_limit_is_the_peers_failure(peer: URL) -> None:
    async with Upstream() as upstream:
        with pytest.raises(SiteUnreachable, match="over"):
            await get_json(upstream, "Corte", peer / "huge", timeout=5)


async def test_a_trickled_answer_ends_within_twice_the_timeout(peer: URL) -> None:
    started = time.monotonic()
    async with Upstream() as upstream:
        with pytest.raises(SiteUnreachable, match="no whole answer"):
            await get_json(upstream, "Corte", peer / "trickle", timeout=0.5)
    assert time.monotonic() - started < 15  # a hang guard: the peer trickles for 20 s


async def test_an_answer_that_is_not_json_is_the_peers_failure(peer: URL) -> None:
    async with Upstream() as upstream:
        with pytest.raises(SiteUnreachable, match="not JSON"):
            await get_json(upstream, "Corte", peer / "nested", timeout=5)
