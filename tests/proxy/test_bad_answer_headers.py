"""An answer header with a control character (from a peer or the site's own backend) is a
clear 502 "Bad Answer From Site", logged; under ``|`` the next site answers. aiohttp refuses
to write such a header, which used to drop the client's connection with a traceback."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.proxy.conftest import SitesFactory

from edgescope.proxy.config import parse_config

KEY = "ed25519:" + "A" * 43 + "="


@pytest.fixture
async def hostile_url() -> AsyncIterator[str]:
    """A raw HTTP server answering 200 with ``X-Thing: a<ESC>b`` (and a DEL in another)."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"Content-Length: 2\r\nX-Thing: a\x1bb\r\nX-Other: c\x7fd\r\n\r\n{}"
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()


async def test_a_peers_control_character_is_a_502_and_or_falls_over(
    sites: SitesFactory, hostile_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": hostile_url}}})
    with caplog.at_level(logging.WARNING):
        status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Evil}"})
    assert status == 502, body
    assert body["error"]["title"] == "Bad Answer From Site"
    assert "Evil" in body["error"]["message"] and "control character" in body["error"]["message"]
    assert "X-Thing" in caplog.text and "Traceback" not in caplog.text
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Evil | Corte}"})
    assert status == 200 and body["site"] == "Corte"
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte & Evil}"})
    assert status >= 500 and "Evil" in str(body)  # an & fails clearly, connection kept


async def test_the_sites_own_backend_with_a_control_character_is_a_502(hostile_url: str) -> None:
    from edgescope.proxy.server import SiteProxy

    config = parse_config(
        {
            "site": "Paris",
            "listen": "127.0.0.1:0",
            "private_key": KEY,
            "services": [{"type": "image", "prefix": "/image", "backend": hostile_url}],
            "breaker": {"probe_interval": 0},
        }
    )
    proxy = SiteProxy(config)
    await proxy.start()
    try:
        url = proxy.url
        async with aiohttp.ClientSession() as session:
            for _ in range(2):  # the connection stays usable after the refusal
                async with session.get(f"{url}/image/v2/images") as answer:
                    body: Any = await answer.json()
                    assert answer.status == 502, body
                    assert "X-Thing" in body["error"]["message"]
    finally:
        await proxy.stop()
