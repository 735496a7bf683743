"""Loopback attacks on the changes of 2026-12-08 (a call's ClientRequest and its body read
once, the undo by name, the replayer): real proxies, raw client sockets on 127.0.0.1.
docs/attacks/20261208b.md says what each pins."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
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


SMUGGLED = [
    "x-EDGESCOPE-undo-of: smuggled",
    "X-Edgescope-Undo-Of: smuggled\r\nX-Edgescope-Undo-Of: smuggled",
    "X-Edgescope-Undo-Name: smuggled\r\nx-edgescope-undo-name: smuggled",
    "X-Thing: a\r\n X-Edgescope-Undo-Of: smuggled",  # obs-fold
    "X-Edgescope-Undo-Of : smuggled",
    "X-Edgescope-Undo-Of:\tsmuggled",
    "Connection: X-Thing\r\nX-Thing: a\r\nX-Edgescope-Undo-Of: smuggled",
    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\nX-Edgescope-Undo-Of: smuggled",
]


@pytest.mark.parametrize("smuggled", SMUGGLED)
async def test_no_client_header_reaches_a_peer_as_an_internal_one(
    sites: SitesFactory, smuggled: str
) -> None:
    """Holds: a client's ``X-Edgescope-*`` header, in any case, repeated, folded or oddly
    spaced, is dropped at ingress or the request refused: none is signed into the hop to
    the peer (which would trust it). The peer records each hop's head as received."""
    heads: list[bytes] = []

    async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        (paris,) = await sites("Paris", extra_peers={"Paris": {"Evil": {"url": url}}})
        host, port = paris.proxy.url.removeprefix("http://").rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        head = f"GET /image/echo HTTP/1.1\r\nHost: p\r\nX-Scope: {{image: Evil}}\r\n{smuggled}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 15)
        writer.close()
    finally:
        server.close()
    status = int(answer.split()[1])
    assert (status == 200 and len(heads) == 1) or (status == 400 and not heads), answer[:200]
    assert not [head for head in heads if b"smuggled" in head.lower()]
