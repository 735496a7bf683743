"""Clients cannot forge replica traffic: internal headers and record pushes need a peer."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from edgescope.replicas.peers import HLC_HEADER, KEY_HEADER, REPLICA_HEADER, SETS_PATH

SitesFactory = Any


async def test_client_cannot_send_replica_headers(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    for header in (REPLICA_HEADER, HLC_HEADER, KEY_HEADER):
        status, _, body = await paris.call(
            "PATCH", "/things/x", "{image: Corte}", json={}, headers={header: "9" * 13}
        )
        assert status == 403, header
        assert "peer proxies only" in body["error"]["message"]
    assert corte.seen == [] and paris.seen == []


async def test_unsigned_record_push_is_refused(replica_sites: SitesFactory) -> None:
    (paris,) = await replica_sites("Paris")
    record = {"handle": "h", "service": "image", "collection": "/things", "members": []}
    async with (
        aiohttp.ClientSession() as session,
        session.post(paris.proxy.url + SETS_PATH, json={"set": record}) as response,
    ):
        assert response.status == 403
        assert "signed peer proxies" in (await response.json())["error"]["message"]
    assert paris.proxy.replicas.registry.sets() == []


async def test_hostile_json_bodies_are_handled(replica_sites: SitesFactory) -> None:
    paris, _corte = await replica_sites("Paris", "Corte")
    deep = "[" * 100_000 + "]" * 100_000  # the walk is iterative: no RecursionError
    status, headers, body = await paris.call(
        "POST",
        "/things",
        "{image: Paris & Corte}",
        data=deep,
        headers={"Content-Type": "application/json"},
    )
    # the backends choke on it (500); the proxy still answers with the per-site report
    assert status == 500 and headers["X-Edgescope-Sites"] == "Paris=500, Corte=500"
    assert [s["site"] for s in body["error"]["sites"]] == ["Paris", "Corte"]
    assert paris.proxy.replicas.registry.sets() == []
    status, _, body = await paris.call(
        "POST", "/things", "{image: Paris & Corte}", json={"thing": {"name": "ok"}}
    )
    assert status == 201 and json.dumps(body)
