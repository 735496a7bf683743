"""Loopback attacks of 2026-12-08b on the directory's endpoints that anyone may reach (a
revocation, a newcomer's sync): a body that stalls. docs/attacks/20261208b.md."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgescope.directory import gossip

EdgeFactory = Any


@pytest.mark.parametrize(
    "head",
    [
        "POST /edgescope/directory/revoke HTTP/1.1\r\n",
        "POST /edgescope/directory/sync HTTP/1.1\r\nX-Edgescope-Peer: Newcomer\r\n",
    ],
)
async def test_a_stalled_body_to_an_open_directory_endpoint_is_answered(
    make_edge: EdgeFactory, monkeypatch: pytest.MonkeyPatch, head: str
) -> None:
    """Anyone may hand a revocation, and a site not known yet may offer its entry: each
    body is read whole, within its size bound, but it waited for the client for ever (a
    connection held per stalled client, ``max_connections`` of them lock the listener).
    A body that pauses past ``gossip.BODY_IDLE`` is answered 408."""
    monkeypatch.setattr(gossip, "BODY_IDLE", 0.5, raising=False)
    edge = await make_edge("Paris")
    host, port = edge.url("Paris").removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"{head}Host: p\r\nContent-Length: 100\r\n\r\n{{".encode())
        await writer.drain()
        # the bound only keeps the old code from hanging the test: the answer comes in ~0.5 s
        status_line = await asyncio.wait_for(reader.readline(), 15)
    finally:
        writer.close()
    assert status_line.split()[1] == b"408", status_line
