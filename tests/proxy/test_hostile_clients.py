"""Hostile clients cannot disturb a peer or the proxy (issue 11): each test drives an attack,
then checks that legitimate calls keep succeeding.

Aborted and slow uploads are the client's failure, never the peer's (the breaker stays
closed); see also the merge, spool, label, head and path tests below.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

SitesFactory = Any
CORTE = {"X-Scope": "{image: Corte}"}


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def aborted_upload(url: str, scope: str, sent: int = 64 * 1024) -> None:
    """Start a 10 MB upload, send ``sent`` bytes, then drop the connection (RST)."""
    _reader, writer = await asyncio.open_connection(*host_port(url))
    head = (
        f"PUT /image/echo HTTP/1.1\r\nHost: x\r\nX-Scope: {scope}\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    ).encode()
    writer.write(head + b"x" * sent)
    await writer.drain()
    await asyncio.sleep(0.1)
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    writer.close()
    await writer.wait_closed()


async def breaker_of(site: Any, peer: str) -> str:
    _, _, status = await site.get("/edgescope/status")
    return str(next(p["breaker"] for p in status["peers"] if p["name"] == peer))


async def test_aborted_uploads_do_not_open_the_peers_breaker(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    for _ in range(6):  # twice the breaker's failure threshold
        await aborted_upload(paris.url, "{image: Corte}")
        await asyncio.sleep(0.2)
    assert await breaker_of(paris, "Corte") == "closed"
    status, _, body = await paris.get("/image/echo", headers=CORTE)
    assert status == 200 and body["site"] == "Corte"


async def test_a_slow_upload_is_the_clients_timeout_not_the_peers(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte", read_timeout=0.5, limits={"client_idle_timeout": 0.3})
    for _ in range(4):
        reader, writer = await asyncio.open_connection(*host_port(paris.url))
        writer.write(
            b"PUT /image/echo HTTP/1.1\r\nHost: x\r\nX-Scope: {image: Corte}\r\n"
            b"Content-Length: 100\r\nConnection: close\r\n\r\nx"
        )
        await writer.drain()
        for _ in range(3):  # one byte every 0.4 s: slower than Corte's read timeout
            await asyncio.sleep(0.4)
            writer.write(b"x")
            await writer.drain()
        answer = await asyncio.wait_for(reader.read(4096), timeout=5)
        writer.close()
        await writer.wait_closed()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert await breaker_of(paris, "Corte") == "closed"
    status, _, body = await paris.get("/image/echo", headers=CORTE)
    assert status == 200 and body["site"] == "Corte"


async def test_an_aborted_upload_under_or_is_never_resent_truncated(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    await aborted_upload(paris.url, "{image: Paris | Corte}")
    await asyncio.sleep(0.3)
    complete = [h for h in paris.seen + corte.seen if h.get("size") == 10 * 1024 * 1024]
    truncated = [h for h in paris.seen + corte.seen if "size" in h and h["size"] < 10 * 1024 * 1024]
    assert complete == [] and [h["site"] for h in truncated] in ([], ["Paris"])
    assert await breaker_of(paris, "Corte") == "closed"
