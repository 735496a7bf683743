"""Fresh connections race their connects (forward.RacingConnector): a lost SYN does not cost
the kernel's one-second retransmission, and a dead address still fails within one
connect timeout. A real listener on loopback whose accept queue is full drops every SYN, as
a lossy or cut link does; the sockets made are counted, no clock is asserted."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from edgescope.errors import SiteUnreachable
from edgescope.proxy import forward
from edgescope.proxy.forward import RACE_COPIES, Upstream, get_json


@pytest.fixture
def made(monkeypatch: pytest.MonkeyPatch) -> list[socket.socket]:
    """Every client socket the upstream makes from now on."""
    sockets: list[socket.socket] = []
    real = forward.abortive_socket

    def counted(addr_info: Any) -> socket.socket:
        sock = real(addr_info)
        sockets.append(sock)
        return sock

    monkeypatch.setattr(forward, "abortive_socket", counted)
    return sockets


@pytest.fixture
def black_hole() -> Iterator[URL]:
    """A listener that drops every SYN: its accept queue (one place) is full."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    host, port = listener.getsockname()
    yield URL(f"http://{host}:{port}/edgescope/health")
    filler.close()
    listener.close()


async def _get(upstream: Upstream, url: URL, *, fresh: bool) -> Any:
    return await upstream.open(
        "Corte", "GET", url, headers={}, body=None, connect_timeout=1.0, read_timeout=1.0,
        fresh=fresh,
    )  # fmt: skip


async def test_a_fresh_connection_races_its_connects_and_a_dead_address_fails_once(
    made: list[socket.socket], black_hole: URL
) -> None:
    async with Upstream() as upstream:
        with pytest.raises(SiteUnreachable) as caught:
            await _get(upstream, black_hole, fresh=True)
    assert caught.value.connecting
    # raced together within the one connect timeout, not tried in turn (that would be 3+2+1)
    assert len(made) == RACE_COPIES


async def test_a_pooled_connection_connects_once(
    made: list[socket.socket], black_hole: URL
) -> None:
    async with Upstream() as upstream:
        with pytest.raises(SiteUnreachable):
            await _get(upstream, black_hole, fresh=False)
    assert len(made) == 1  # the pool's connections, to every peer, are not raced


async def test_a_raced_connection_carries_the_call_and_a_refused_one_fails() -> None:
    app = web.Application()
    app.router.add_get("/edgescope/health", lambda _r: web.json_response({"site": "Corte"}))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with Upstream() as upstream:
            url = URL(f"http://127.0.0.1:{port}/edgescope/health")
            assert await get_json(upstream, "Corte", url, timeout=2.0, fresh=True) == {
                "site": "Corte"
            }
            await runner.cleanup()  # nobody listens there any more: refused
            with pytest.raises(SiteUnreachable) as caught:
                await _get(upstream, url, fresh=True)
            assert caught.value.connecting
    finally:
        await runner.cleanup()
