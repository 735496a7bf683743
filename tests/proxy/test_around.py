"""around()/nearest() through real proxies on loopback: the entry proxy resolves them from its
own RTT table (injected here: the fixtures' probes are off) before routing."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.protocol import SITES_HEADER

SitesFactory = Any


async def test_around_and_nearest_route_by_the_entry_proxys_rtts(sites: SitesFactory) -> None:
    paris, corte, marseille = await sites("Paris", "Corte", "Marseille")
    paris.proxy.prober.rtt_ms.update({"Marseille": 10.0, "Corte": 20.0})
    status, headers, _ = await paris.get(
        "/image/items", headers={"X-Scope": "{image: around(Paris, 15ms)}"}
    )
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Marseille=200"
    assert marseille.seen[0]["headers"]["X-Scope"] == "{image: Marseille, identity: Paris}"
    assert not corte.seen

    paris.proxy.prober.rtt_ms["Corte"] = 5.0  # a delay changed: so does the answer
    status, headers, _ = await paris.get(
        "/image/items", headers={"X-Scope": "{image: around(Paris, 15ms)}"}
    )
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200, Marseille=200"

    status, headers, body = await paris.get(
        "/image/echo", headers={"X-Scope": "{image: nearest(Marseille, Corte)}"}
    )
    assert status == 200 and body["site"] == "Corte"


async def test_around_another_site_is_a_400_naming_why(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, _, body = await paris.get(
        "/image/items", headers={"X-Scope": "{image: around(Corte, 15ms)}"}
    )
    assert status == 400
    assert "no RTT measured from Corte is known at Paris" in body["error"]["message"]
    assert not corte.seen and not paris.seen
