"""Loopback attacks on the changes of 2026-12-08 (a call's ClientRequest and its body read
once, the undo by name, the replayer): real proxies, raw client sockets on 127.0.0.1.
FINDINGS-20261208b.md (branch atk6) says what each pins."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.proxy.conftest import SitesFactory

BOTH = "{image: Paris & Corte}"


async def _status_of_stalled(url: str, head: str, first: bytes) -> bytes:
    """Send ``head`` and the first bytes of its body on a connection of its own, no more;
    the status of the answer. The bound only keeps the old code from hanging the test."""
    host, port = url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode() + b"\r\n" + first)
        await writer.drain()
        return (await asyncio.wait_for(reader.readline(), 15)).split()[1]
    finally:
        writer.close()


async def test_a_stalled_small_json_body_is_answered_after_the_idle_timeout(
    sites: SitesFactory, tmp_path: Path
) -> None:
    """An ``&`` call's small JSON body is read whole before dispatch (replica ids are
    translated in it). A client that declares 100 bytes and sends 10 must get a 408 once
    ``client_idle_timeout`` passes, as a streamed body does: else each such client holds
    a connection and a handler for ever (``max_connections`` of them lock the listener)."""
    paris, _corte = await sites(
        "Paris", "Corte", limits={"client_idle_timeout": 0.5}, replicas_dir=tmp_path
    )
    head = (
        "POST /image/echo HTTP/1.1\r\nHost: paris\r\nContent-Type: application/json\r\n"
        f"X-Scope: {BOTH}\r\nContent-Length: 100\r\n"
    )
    assert await _status_of_stalled(paris.proxy.url, head, b'{"thing": ') == b"408"
