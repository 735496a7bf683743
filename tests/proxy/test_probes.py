"""Probes go only to the peers in use: probe traffic grows with the peers a site talks to."""

from __future__ import annotations

import asyncio
from typing import Any

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
