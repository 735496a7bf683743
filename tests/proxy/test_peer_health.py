"""Probes go only to the peers in use: probe traffic grows with the peers a site talks to."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from typing import Any

import pytest

from edgescope.aio import spawn
from edgescope.proxy import forward

SitesFactory = Any


async def test_only_peers_in_use_are_probed(sites: SitesFactory) -> None:
    paris, _, _ = await sites("Paris", "Corte", "Marseille", breaker={"probe_recent": 60.0})
    prober = paris.proxy.prober
    assert await prober.round() == []  # nobody used yet: no probe at all
    status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 200
    assert await prober.round() == ["Corte"]
    assert prober.rtt_ms["Corte"] > 0 and "Marseille" not in prober.rtt_ms
    _, _, status_doc = await paris.get("/edgescope/status")
    rows = {p["name"]: p for p in status_doc["peers"]}
    assert rows["Marseille"]["breaker"] == "unused" and rows["Corte"]["rtt_ms"] > 0


async def test_a_peer_falls_out_of_use_and_a_troubled_one_stays_probed(
    sites: SitesFactory, refused_url: str
) -> None:
    paris, _ = await sites(
        "Paris",
        "Corte",
        extra_peers={"Paris": {"Lyon": {"url": refused_url}}},
        breaker={"probe_recent": 0.2, "failure_threshold": 1},
    )
    await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})  # fails: breaker opens
    await asyncio.sleep(0.3)
    assert await paris.proxy.prober.round() == ["Lyon"]  # Corte no longer in use; Lyon is down


async def test_silent_peers_in_use_are_all_probed_in_one_round(
    sites: SitesFactory, black_hole: str
) -> None:
    silent = {name: {"url": black_hole, "connect_timeout": 0.3} for name in ("A", "B", "C")}
    paris, _ = await sites(
        "Paris", "Corte", extra_peers={"Paris": silent}, breaker={"probe_concurrency": 2}
    )
    for name in silent:
        paris.proxy.peers.used(name)
    assert await paris.proxy.prober.round() == ["A", "B", "C"]
    for name in silent:
        assert "timed out" in paris.proxy.peers.breaker(name).last_error


async def test_a_peer_with_every_slot_taken_fails_the_branch_not_its_breaker(
    sites: SitesFactory, black_hole: str
) -> None:
    slow = {"Lyon": {"url": black_hole, "connect_timeout": 0.3, "read_timeout": 30.0}}
    paris, _ = await sites(
        "Paris", "Corte", extra_peers={"Paris": slow}, limits={"max_per_peer": 1}
    )
    hung = spawn(paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"}))
    await asyncio.sleep(0.2)  # the first call holds Lyon's only slot
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
    assert status == 503 and "max_per_peer" in str(body)
    breaker = paris.proxy.peers.breaker("Lyon")
    try:
        assert breaker.state == "closed" and breaker.failures == 0
        status, _, _ = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
        assert status == 200  # other peers have their own slots
        _, _, metrics = await paris.get("/metrics")
        assert b'edgescope_bound_size{bound="peer_slots"} 1.0' in metrics  # Lyon's is full
        assert b'edgescope_bound_refused_total{bound="peer_slots"} 1.0' in metrics
    finally:
        hung.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await hung


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Right after the proxies' first connect starts, the event loop is held 1.5 s (more than
    the peers' 1 s connect timeout), as a wide fan-out holds it; the list notes that it was."""
    held: list[float] = []
    real_socket = forward.abortive_socket

    def socket_then_busy(addr_info: forward.AddrInfo) -> socket.socket:
        sock = real_socket(addr_info)
        if not held:
            held.append(1.5)
            asyncio.get_running_loop().call_soon(time.sleep, 1.5)
        return sock

    monkeypatch.setattr(forward, "abortive_socket", socket_then_busy)
    return held


async def test_a_connection_made_while_this_proxy_was_busy_is_not_blamed_on_the_peer(
    sites: SitesFactory, busy: list[float]
) -> None:
    """A wide fan-out can keep a proxy's loop busy past a connect timeout although the peer
    accepted the connection at once: the connect is tried again, the peer's breaker is not
    told (before, a 999-site & failed on a few healthy sites and opened their breakers)."""
    paris, _ = await sites("Paris", "Corte", breaker={"failure_threshold": 1})
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert busy and status == 200, body
    breaker = paris.proxy.peers.breaker("Corte")
    assert breaker.state == "closed" and breaker.failures == 0
    assert b"edgescope_own_lag_retries_total 1.0" in paris.proxy.metrics.render()


async def test_a_peer_that_does_not_take_connections_still_times_out_once(
    sites: SitesFactory,
) -> None:
    with socket.socket() as full:  # a listener whose queue is full: SYNs go unanswered
        full.bind(("127.0.0.1", 0))
        full.listen(0)
        fillers = [socket.socket() for _ in range(4)]
        for filler in fillers:
            filler.setblocking(False)
            filler.connect_ex(full.getsockname())
        silent = {"Lyon": {"url": f"http://127.0.0.1:{full.getsockname()[1]}",
                           "connect_timeout": 0.3}}  # fmt: skip
        paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": silent})
        started = time.monotonic()
        status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
        for filler in fillers:
            filler.close()
    assert status == 503 and "timed out connecting" in str(body)
    assert time.monotonic() - started < 1.0  # one connect timeout: the proxy was not busy
    assert b"edgescope_own_lag_retries_total 0.0" in paris.proxy.metrics.render()


async def test_a_probe_that_failed_while_this_proxy_was_busy_is_no_evidence(
    sites: SitesFactory, busy: list[float]
) -> None:
    paris, _ = await sites("Paris", "Corte", breaker={"failure_threshold": 1})
    assert await paris.proxy.prober.probe("Corte") is False and busy
    breaker = paris.proxy.peers.breaker("Corte")
    assert breaker.state == "closed" and breaker.failures == 0
    assert await paris.proxy.prober.probe("Corte") is True
