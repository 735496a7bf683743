"""Sites on loopback collaborate through their proxies: local, remote, carriers, scope."""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.carriers import attach_piggyback, baggage_scope, split_piggyback

SitesFactory = Any


async def test_no_scope_is_served_locally_untouched(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    status, headers, body = await paris.get("/image/echo?x=1", headers={"X-Auth-Token": "tok"})
    assert status == 200 and body["site"] == "Paris" and body["path"] == "/image/echo?x=1"
    assert body["headers"]["X-Auth-Token"] == "tok" and "X-Scope" not in body["headers"]
    assert headers["x-openstack-request-id"].startswith("req-")
    assert "X-Edgescope-Sites" not in headers  # a site with no scope sees its backend only
    assert not corte.seen


async def test_x_scope_routes_to_the_peer_with_the_branch_scope(sites: SitesFactory) -> None:
    paris, _corte = await sites("Paris", "Corte")
    status, headers, body = await paris.get("/image/echo", headers={"X-Scope": "{glance: Corte}"})
    assert status == 200 and body["site"] == "Corte"
    assert headers["X-Edgescope-Sites"] == "Corte=200"  # which site answered
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


async def test_request_id_correlation_never_piggybacks_a_local_service_token(
    sites: SitesFactory,
) -> None:
    """nova-scheduler -> placement at the same site: a service's own token, matched only by
    the global request id of a user's call. Its validation must stay at this site's Keystone,
    so the token reaches the backend plain (no ``identity`` of the user's site on it).
    """
    paris, _corte = await sites("Paris", "Corte")
    _, _, body = await paris.get("/compute/echo", headers={"X-Scope": "{compute: Paris}"})
    request_id = body["headers"]["X-OpenStack-Request-ID"]
    _, _, body = await paris.get(
        "/image/echo",
        headers={"X-OpenStack-Request-ID": request_id, "X-Auth-Token": "service-token"},
    )
    assert body["site"] == "Paris"
    assert body["headers"]["X-Auth-Token"] == "service-token"


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


async def test_access_log_has_one_line_per_hop(sites: SitesFactory, caplog: Any) -> None:
    import json
    import logging

    paris, _ = await sites("Paris", "Corte")
    with caplog.at_level(logging.INFO, logger="edgescope.proxy.access"):
        await paris.get("/image/echo", headers={"X-Scope": "{image: Corte}"})
    lines = [
        json.loads(r.getMessage()) for r in caplog.records if r.name == "edgescope.proxy.access"
    ]
    assert [(x["site"], x["from_peer"], x["sites"], x["status"]) for x in lines] == [
        ("Corte", "Paris", ["Corte"], 200),
        ("Paris", None, ["Corte"], 200),
    ]
    ingress = lines[1]
    assert ingress["service"] == "image" and ingress["scope"] == "{image: Corte}"
    assert ingress["request_id"] == lines[0]["request_id"] and ingress["latency_ms"] > 0


async def test_port_based_service(tmp_path: Any) -> None:
    import aiohttp
    from aiohttp import web

    import sitekeys
    from edgescope.proxy.config import parse_config
    from edgescope.proxy.server import SiteProxy

    async def hello(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path_qs})

    app = web.Application()
    app.router.add_get("/{tail:.*}", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    proxy = SiteProxy(
        parse_config(
            {
                "site": "Paris",
                "listen": "127.0.0.1:0",
                "private_key": sitekeys.private("Paris"),
                "services": [
                    {"type": "compute", "port": 0, "backend": f"http://127.0.0.1:{port}/v2.1"}
                ],
            }
        )
    )
    await proxy.start()
    try:
        host, compute_port = proxy.addresses["compute"]
        url = f"http://{host}:{compute_port}/servers?all=1"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert (await response.json()) == {"path": "/v2.1/servers?all=1"}
    finally:
        await proxy.stop()
        await runner.cleanup()


async def test_expect_100_continue_upload(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    status, _, body = await paris.request(
        "PUT",
        "/image/echo",
        data=b"z" * 100_000,
        expect100=True,
        headers={"X-Scope": "{image: Corte}"},
    )
    assert status == 200 and body["site"] == "Corte" and body["size"] == 100_000
    assert "Expect" not in body["headers"]


@pytest.mark.parametrize("scope", [None, "{image: Corte}"])
async def test_head_204_and_304_pass_through(sites: SitesFactory, scope: str | None) -> None:
    paris, _ = await sites("Paris", "Corte")
    headers = {"X-Scope": scope} if scope else {}
    status, _resp_headers, body = await paris.request("HEAD", "/image/echo", headers=headers)
    assert status == 200 and body == b""
    for code in (204, 304):
        status, _, body = await paris.get(f"/image/status/{code}", headers=headers)
        assert status == code and body == b""
