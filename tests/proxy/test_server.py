"""Sites on loopback collaborate through their proxies: local, remote, carriers, scope."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.carriers import attach_piggyback, baggage_scope, split_piggyback

SitesFactory = Any


async def test_no_scope_is_served_locally_untouched(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, headers, body = await paris.get("/image/echo?x=1", headers={"X-Auth-Token": "tok"})
    assert status == 200 and body["site"] == "Paris" and body["path"] == "/image/echo?x=1"
    assert body["headers"]["X-Auth-Token"] == "tok" and "X-Scope" not in body["headers"]
    assert headers["x-openstack-request-id"].startswith("req-")
    assert not corte.seen


async def test_x_scope_routes_to_the_peer_with_the_branch_scope(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    status, _, body = await paris.get("/image/echo", headers={"X-Scope": "{glance: Corte}"})
    assert status == 200 and body["site"] == "Corte"
    assert body["headers"]["X-Scope"] == "{image: Corte, identity: Paris}"
    assert "X-Edgescope-Signature" not in body["headers"]  # markers stop at the peer proxy
    assert not paris.seen


async def test_token_piggyback_is_rewritten_downstream(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    token = attach_piggyback("user-token", "{image: Corte}")
    _, _, body = await paris.get("/image/echo", headers={"X-Auth-Token": token})
    assert body["site"] == "Corte"
    plain, scope = split_piggyback(body["headers"]["X-Auth-Token"])
    assert (plain, scope) == ("user-token", "{image: Corte, identity: Paris}")


async def test_baggage_carrier(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    _, _, body = await paris.get(
        "/compute/echo", headers={"baggage": "user=ann,scope=%7Bnova%3A%20Corte%7D"}
    )
    assert body["site"] == "Corte" and body["service"] == "compute"
    assert body["headers"]["baggage"].startswith("user=ann,")
    assert baggage_scope(body["headers"]["baggage"]) == "{compute: Corte, identity: Paris}"


async def test_request_id_correlation_carries_the_scope_to_downstream_calls(
    sites: SitesFactory,
) -> None:
    paris, _corte = await sites("Paris", "Corte")
    _, _, body = await paris.get(
        "/compute/echo", headers={"X-Scope": "{compute: Paris, image: Corte}"}
    )
    request_id = body["headers"]["X-OpenStack-Request-ID"]
    assert body["site"] == "Paris" and request_id.startswith("req-")
    # nova -> glance: only the global request id travels, yet glance is Corte's.
    _, _, body = await paris.get("/image/echo", headers={"X-OpenStack-Request-ID": request_id})
    assert body["site"] == "Corte"


async def test_status_health_and_metrics(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    await paris.get("/image/echo", headers={"X-Scope": "{image: Paris & Corte}"})
    status, _, body = await paris.get("/edgescope/status")
    assert status == 200 and body["peers"][0]["name"] == "Corte"
    assert body["peers"][0]["breaker"] == "closed"
    status, _, metrics = await paris.get("/metrics")
    text = metrics.decode()
    assert 'edgescope_peer_request_seconds_count{peer="Corte"} 1.0' in text
    assert 'edgescope_breaker_state{peer="Corte"} 0.0' in text
    assert "edgescope_fanout_width_count 1.0" in text


async def test_unknown_prefix_lists_the_services(sites: SitesFactory) -> None:
    (paris,) = await sites("Paris")
    status, _, body = await paris.get("/volume/v3")
    assert status == 404 and "/image" in body["error"]["message"]
