"""A write queued for the proxy's own site is applied there, once (campaign cause A).

An eventual ``&`` write whose own site's branch failed before any answer (the backend's port
closed while it restarts) is queued for that very site. It must be applied locally, through
the guard with the live branch's key, not sent as a hop to a "peer" that does not exist (which
left it, and every write queued behind it, in the queue forever).
"""

from __future__ import annotations

from typing import Any

from edgescope.proxy.protocol import PENDING_HEADER
from replicas.pair import BOTH, EVENTUAL, eventually

SitesFactory = Any


async def test_a_create_queued_for_the_own_site_is_applied_there_once(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte", replay_interval=3600)
    registry = paris.replicas.registry
    await paris.backend_down()
    status, headers, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "vm"}}, headers=EVENTUAL
    )
    assert status == 201, body
    assert headers[PENDING_HEADER] == "Paris"
    assert paris.items == {} and len(corte.items) == 1
    [op] = registry.pending("Paris")
    assert op.method == "POST"
    await paris.backend_up()
    await paris.replicas.replayer.replay_once()  # or the round woken by the enqueue
    await eventually(lambda: not registry.targets())
    assert [i["name"] for i in paris.items.values()] == ["vm"]
    assert registry.pending() == []
    [replica_set] = registry.sets()
    assert replica_set.member("Paris") is not None
    assert replica_set.member("Paris").id == next(iter(paris.items))  # type: ignore[union-attr]
    # a second round finds nothing to do: the key was applied once
    assert await paris.replicas.replayer.replay_once() == 0
    assert len(paris.items) == 1


async def test_a_write_queued_for_the_own_site_does_not_block_the_writes_behind_it(
    replica_sites: SitesFactory,
) -> None:
    """Two creates and a delete queued for Paris, while its backend was down, all land."""
    paris, corte = await replica_sites("Paris", "Corte", replay_interval=3600)
    registry = paris.replicas.registry
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "old"}})
    assert status == 201, body
    handle = body["thing"]["id"]
    await paris.backend_down()
    for name in ("a", "b"):
        status, headers, body = await paris.call(
            "POST", "/things", BOTH, json={"thing": {"name": name}}, headers=EVENTUAL
        )
        assert status == 201 and headers[PENDING_HEADER] == "Paris"
    status, headers, body = await paris.call("DELETE", f"/things/{handle}", BOTH, headers=EVENTUAL)
    print(status, dict(headers), body)
    assert status == 204 and headers[PENDING_HEADER] == "Paris"
    assert len(registry.pending("Paris")) == 3
    await paris.backend_up()
    await paris.replicas.replayer.replay_once()
    await eventually(lambda: not registry.targets())
    assert sorted(i["name"] for i in paris.items.values()) == ["a", "b"]
    assert sorted(i["name"] for i in corte.items.values()) == ["a", "b"]
    assert registry.pending() == [] and registry.targets() == []
