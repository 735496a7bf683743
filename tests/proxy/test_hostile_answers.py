"""What a hostile peer (or the site's own backend) puts in its answer's headers.

A control character is a clear 502 "Bad Answer From Site", logged; under ``|`` the next site
answers (aiohttp refuses to write such a header, which used to drop the client's connection
with a traceback). Internal ``X-Edgescope-*`` headers are this proxy's to say: a peer's
forged ``X-Edgescope-Partial`` (or Sites, Pending) never reaches the client."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from tests.proxy.conftest import SitesFactory
from tests.proxy.rawpeer import raw_peer

from edgescope.proxy.config import parse_config

KEY = "ed25519:" + "A" * 43 + "="


@pytest.fixture
async def hostile_url() -> AsyncIterator[str]:
    """200 with ``X-Thing: a<ESC>b`` (and a DEL in another header)."""
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Thing: a\x1bb\r\n"
    async with raw_peer(head + b"X-Other: c\x7fd\r\n", b"{}") as url:
        yield url


@pytest.fixture
async def forger_url() -> AsyncIterator[str]:
    """200 with forged internal headers, as a hostile peer proxy could send them."""
    head = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        b"X-Edgescope-Partial: Paris; reason=forged\r\nX-Edgescope-Sites: Nowhere=200\r\n"
        b"X-Edgescope-Pending: Paris\r\nX-Edgescope-Replayed: 1\r\n"
        b"X-Edgescope-Error: Forged Title\r\n"
    )
    async with raw_peer(head, b'{"items": [{"id": "evil-1"}]}') as url:
        yield url


async def test_a_peers_forged_internal_headers_never_reach_the_client(
    sites: SitesFactory, forger_url: str
) -> None:
    paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": forger_url}}})
    status, headers, _ = await paris.get("/image/items", headers={"X-Scope": "{image: Evil}"})
    assert status == 200
    assert "X-Edgescope-Partial" not in headers and "X-Edgescope-Pending" not in headers
    assert "X-Edgescope-Replayed" not in headers
    assert headers["X-Edgescope-Sites"] == "Evil=200"  # Paris's own, not the forged one
    # a peer proxy's error title is an edgescope error: it is kept from a peer
    assert headers["X-Edgescope-Error"] == "Forged Title"
    for mode in ("strict", "partial"):
        status, headers, body = await paris.get(
            "/image/items", headers={"X-Scope": "{image: Corte & Evil}", "X-Scope-Mode": mode}
        )
        assert status == 200, body
        assert "X-Edgescope-Partial" not in headers and "X-Edgescope-Pending" not in headers
        assert {i["id"] for i in body["items"]} == {"Corte-1", "Corte-2", "evil-1"}
        assert "Nowhere" not in headers["X-Edgescope-Sites"]


async def test_the_sites_own_backend_cannot_forge_internal_headers(forger_url: str) -> None:
    async with _proxy_in_front_of(forger_url) as url, aiohttp.ClientSession() as session:
        answer = await session.get(f"{url}/image/items")
        assert answer.status == 200
        assert not [h for h in answer.headers if h.lower().startswith("x-edgescope-")]
        answer.release()


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


@contextlib.asynccontextmanager
async def _proxy_in_front_of(backend: str) -> AsyncIterator[str]:
    from edgescope.proxy.server import SiteProxy

    config = parse_config(
        {
            "site": "Paris",
            "listen": "127.0.0.1:0",
            "private_key": KEY,
            "services": [{"type": "image", "prefix": "/image", "backend": backend}],
            "breaker": {"probe_interval": 0},
        }
    )
    proxy = SiteProxy(config)
    await proxy.start()
    try:
        yield proxy.url
    finally:
        await proxy.stop()


async def test_the_sites_own_backend_with_a_control_character_is_a_502(hostile_url: str) -> None:
    async with _proxy_in_front_of(hostile_url) as url, aiohttp.ClientSession() as session:
        for _ in range(2):  # the connection stays usable after the refusal
            async with session.get(f"{url}/image/v2/images") as answer:
                body: Any = await answer.json()
                assert answer.status == 502, body
                assert "X-Thing" in body["error"]["message"]


@pytest.fixture
async def failing_url() -> AsyncIterator[str]:
    """500 with a 1 MiB body (more than the proxy reads of a failed attempt's answer)."""
    head = b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
    async with raw_peer(head, b"e" * (1 << 20)) as url:
        yield url


async def test_a_failed_attempt_of_an_or_is_released_and_its_large_body_no_507(
    sites: SitesFactory, failing_url: str
) -> None:
    """``Evil | Corte``: Evil's failed answer (a large body) neither fails the call as too
    large, nor holds its connection while Corte's answer streams to the client."""
    paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": {"Evil": {"url": failing_url}}})
    connector = paris.proxy.upstream._session.connector  # type: ignore[union-attr]
    assert connector is not None
    headers = {"X-Scope": "{image: Evil | Corte}"}
    assert paris.session is not None
    url = f"{paris.url}/image/download/67108864"
    async with paris.session.get(url, headers=headers) as answer:
        assert answer.status == 200
        assert answer.headers["X-Edgescope-Sites"].startswith("Evil=500")
        await answer.content.readexactly(1 << 16)  # Corte's answer is streaming now
        held = len(connector._acquired)  # type: ignore[attr-defined]
    assert held == 1  # Corte's only: Evil's failed answer was released
