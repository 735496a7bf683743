"""Clients cannot forge replica traffic: their internal headers are dropped, record pushes
need a signed peer."""

from __future__ import annotations

import json
from typing import Any

import aiohttp

from edgescope.proxy.protocol import HLC_HEADER, REPLICA_HEADER
from edgescope.proxy.protocol import IDEMPOTENCY_KEY_HEADER as KEY_HEADER
from edgescope.proxy.protocol import REPLICA_SETS_PATH as SETS_PATH

SitesFactory = Any


async def test_client_replica_headers_are_dropped_at_ingress(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    for header in (REPLICA_HEADER, HLC_HEADER, KEY_HEADER):
        status, _, body = await paris.call(
            "PATCH", "/things/x", "{image: Corte}", json={}, headers={header: "9" * 13}
        )
        assert status == 404, (header, body)  # served as a plain call: Corte has no 'x'
    assert corte.seen == [("PATCH", "/image/things/x")] * 3
    assert corte.replicas.registry.applied("9" * 13) is None


async def test_a_forged_far_future_stamp_does_not_block_later_writes(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    both = "{image: Paris & Corte}"
    _, _, body = await paris.call("POST", "/things", both, json={"thing": {"name": "a"}})
    handle = body["thing"]["id"]
    forged = {HLC_HEADER: "999999999999999.000000.Zzz", REPLICA_HEADER: handle}
    status, _, _ = await paris.call(
        "PATCH", f"/things/{handle}", both, json={"thing": {"v": 1}}, headers=forged
    )
    assert status == 200
    status, _, body = await paris.call("PATCH", f"/things/{handle}", both, json={"thing": {"v": 2}})
    assert status == 200, body
    assert [i["v"] for i in (*paris.items.values(), *corte.items.values())] == [2, 2]


async def test_unsigned_record_push_is_refused(replica_sites: SitesFactory) -> None:
    (paris,) = await replica_sites("Paris")
    record = {"handle": "h", "service": "image", "collection": "/things", "members": []}
    async with (
        aiohttp.ClientSession() as session,
        session.post(paris.proxy.url + SETS_PATH, json={"set": record}) as response,
    ):
        assert response.status == 403
        assert "signed peer proxies" in (await response.json())["error"]["message"]
    assert paris.replicas.registry.sets() == []


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
    assert paris.replicas.registry.sets() == []
    status, _, body = await paris.call(
        "POST", "/things", "{image: Paris & Corte}", json={"thing": {"name": "ok"}}
    )
    assert status == 201 and json.dumps(body)
