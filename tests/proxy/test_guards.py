"""Guards: scope size, fan-out width, misrouted and forged hop markers."""

from __future__ import annotations

import time
from typing import Any

import sitekeys
from edgescope.proxy.keys import load_private
from edgescope.proxy.protocol import sign_hop

SitesFactory = Any


async def test_scope_header_size_limit_is_431(sites: SitesFactory) -> None:
    (paris,) = await sites("Paris", limits={"max_scope_bytes": 64})
    scope = "{image: " + " | ".join(["Paris"] * 20) + "}"
    status, headers, body = await paris.get("/image/echo", headers={"X-Scope": scope})
    assert status == 431 and "limit is 64" in body["error"]["message"]
    assert headers["x-openstack-request-id"].startswith("req-")
    assert not paris.seen


async def test_fanout_width_limit(sites: SitesFactory) -> None:
    paris, _, _ = await sites("Paris", "Corte", "Marseille", limits={"max_fanout": 2})
    status, _, body = await paris.get(
        "/image/items", headers={"X-Scope": "{image: Paris & Corte & Marseille}"}
    )
    assert status == 400 and body["error"]["title"] == "Fan-out Too Wide"
    assert "fan-out limit is 2" in body["error"]["message"]
    assert not paris.seen


async def test_a_hop_sent_to_the_wrong_proxy_is_refused(sites: SitesFactory) -> None:
    """Misconfiguration: Paris thinks Corte lives at Marseille's proxy. The hop is signed for
    Corte, so Marseille refuses it rather than serving or relaying it (no loop can start)."""
    paris, corte, marseille = await sites(
        "Paris", "Corte", "Marseille", peer_urls={"Paris": {"Corte": "@Marseille"}}
    )
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    assert status == 403 and "does not verify" in body["error"]["message"]
    assert not corte.seen and not paris.seen and not marseille.seen


async def test_forged_hop_marker_is_403_and_grants_nothing(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    forged = sign_hop(
        load_private(sitekeys.private("Lyon")), "GET", "/image/echo", "Corte", "Paris", 1,
        now=time.time(),
    )  # fmt: skip
    status, _, body = await paris.get("/image/echo", headers=forged)
    assert status == 403 and "a key Paris does not know" in body["error"]["message"]
    status, _, _ = await paris.get("/image/echo", headers={"X-Edgescope-Hop": "1"})
    assert status == 403
    status, _, body = await paris.get("/edgescope/svc/image/echo")  # peer path, no marker
    assert status == 403 and "peer proxies only" in body["error"]["message"]
    assert not paris.seen and not corte.seen


async def test_replayed_marker_on_another_path_is_403(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    corte_key = load_private(sitekeys.private("Corte"))
    path = "/edgescope/svc/image/echo"
    good = sign_hop(corte_key, "GET", path, "Corte", "Paris", 1, now=time.time())
    status, _, body = await paris.get(path, headers=good)
    assert status == 200 and body["site"] == "Paris"  # a genuine marker is served here
    status, _, _ = await paris.get("/edgescope/svc/compute/echo", headers=good)
    assert status == 403
