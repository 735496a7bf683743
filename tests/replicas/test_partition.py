"""Partitions on loopback (a cut TCP relay between proxies): strict, eventual, LWW, restarts."""

from __future__ import annotations

import asyncio
from typing import Any

from edgescope.proxy.protocol import PENDING_HEADER, REPLAYED_HEADER, SITES_HEADER
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.extension import Replicas
from edgescope.replicas.model import Hlc, PendingOp
from edgescope.replicas.registry import Registry
from replicas.pair import BOTH, EVENTUAL, eventually

SitesFactory = Any


def posts(site: Any) -> int:
    return sum(1 for method, _ in site.seen if method == "POST")


async def test_strict_mode_reports_each_site(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await paris.links["Corte"].cut()
    status, headers, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "alice"}}
    )
    assert status == 503
    assert headers[SITES_HEADER] == "Paris=201, Corte=unreachable"
    assert {s["site"]: s["ok"] for s in body["error"]["sites"]} == {"Paris": True, "Corte": False}
    assert paris.items == {} and corte.items == {}  # all or nothing: Paris's create undone
    assert (
        "undone: Paris: " in body["error"]["message"]
        and "deleted again" in body["error"]["message"]
    )
    assert paris.replicas.registry.pending() == []  # strict: nothing queued


async def test_eventual_reads_answer_from_the_reachable_members(
    replica_sites: SitesFactory,
) -> None:
    """What lets OSC look a name up under a partition (it reads before it writes)."""
    paris, _corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "al"}})
    assert status == 201
    handle = body["thing"]["id"]
    await paris.links["Corte"].cut()
    # strict: a read missing a member fails with the report
    status, headers, _ = await paris.call("GET", "/things?name=al", BOTH)
    assert status == 503 and headers[SITES_HEADER] == "Paris=200, Corte=unreachable"
    # eventual: Paris answers; the set is still one item, named by its handle
    status, headers, body = await paris.call("GET", "/things?name=al", BOTH, headers=EVENTUAL)
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=unreachable"
    assert [t["id"] for t in body["things"]] == [handle]
    assert PENDING_HEADER not in headers  # a read queues nothing
    # a miss where reachable is that miss (404), not "unreachable", so lookups go on
    status, headers, body = await paris.call("GET", "/things/nope", BOTH, headers=EVENTUAL)
    assert status == 404, body
    assert headers[SITES_HEADER] == "Paris=404, Corte=unreachable"
    assert paris.replicas.registry.pending() == []


async def test_a_member_refusing_a_write_fails_it_even_in_eventual_mode(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    assert corte.items == {}
    status, headers, body = await paris.call(
        "POST",
        "/things",
        BOTH,
        json={"thing": {"name": "alice", "refuse_at": "Corte"}},
        headers=EVENTUAL,
    )
    assert status == 403 and headers[SITES_HEADER] == "Paris=201, Corte=403"
    assert "refused at Corte" in body["error"]["message"]
    registry = paris.replicas.registry
    assert registry.sets() == [] and registry.pending() == []  # answered: nothing to replay


async def test_eventual_create_replays_exactly_once_after_heal(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await paris.links["Corte"].cut()
    status, headers, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "alice"}}, headers=EVENTUAL
    )
    assert status == 201, body
    assert headers[PENDING_HEADER] == "Corte"
    assert headers[SITES_HEADER] == "Paris=201, Corte=pending"
    handle = body["thing"]["id"]
    registry = paris.replicas.registry
    [op] = registry.pending()
    assert (op.target, op.method, op.handle) == ("Corte", "POST", handle)
    # an update by handle while Corte is still cut queues behind the create
    status, _, _ = await paris.call(
        "PATCH", f"/things/{handle}", BOTH, json={"thing": {"email": "a@x"}}, headers=EVENTUAL
    )
    assert status == 200 and len(registry.pending("Corte")) == 2
    await asyncio.sleep(0.5)  # replay rounds run meanwhile and must not lose anything
    assert corte.items == {} and len(registry.pending("Corte")) == 2

    await paris.links["Corte"].heal()
    await eventually(lambda: not registry.pending())
    [corte_item] = corte.items.values()
    assert corte_item["name"] == "alice" and corte_item["email"] == "a@x"
    assert posts(corte) == 1
    for site in (paris, corte):
        record = site.replicas.registry.lookup(handle)
        assert record is not None and record.member_id("Corte") == corte_item["id"]
    # a further round, or the same op sent again, applies nothing twice
    assert await paris.replicas.replayer.replay_once() == 0
    [done] = [p for p in registry.pending(include_done=True) if p.method == "POST"]
    reply = await paris.replicas.replayer.send(done)
    assert reply.status == 201 and reply.headers[REPLAYED_HEADER] == "1"
    assert posts(corte) == 1 and len(corte.items) == 1


async def test_concurrent_updates_converge_to_the_last_writer(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "alice"}})
    handle = body["thing"]["id"]
    await paris.links["Corte"].cut()
    await corte.links["Paris"].cut()
    first = await paris.call(
        "PATCH", f"/things/{handle}", BOTH, json={"thing": {"email": "paris@x"}}, headers=EVENTUAL
    )
    await asyncio.sleep(0.01)  # a later wall clock: Corte's write is the last writer
    second = await corte.call(
        "PATCH", f"/things/{handle}", BOTH, json={"thing": {"email": "corte@x"}}, headers=EVENTUAL
    )
    assert first[0] == second[0] == 200
    assert first[1][PENDING_HEADER] == "Corte" and second[1][PENDING_HEADER] == "Paris"
    [p_item] = paris.items.values()
    [c_item] = corte.items.values()
    assert (p_item["email"], c_item["email"]) == ("paris@x", "corte@x")  # diverged

    await paris.links["Corte"].heal()
    await corte.links["Paris"].heal()
    for site in (paris, corte):
        await eventually(lambda s=site: not s.replicas.registry.pending())
    assert p_item["email"] == c_item["email"] == "corte@x"
    [lost] = paris.replicas.registry.pending(include_done=True)
    assert lost.state == "superseded"  # Paris's older write was refused at Corte


async def test_restart_with_pending_operations_loses_none(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await paris.links["Corte"].cut()
    for name in ("alice", "bob", "carol"):
        status, _, _ = await paris.call(
            "POST", "/things", BOTH, json={"thing": {"name": name}}, headers=EVENTUAL
        )
        assert status == 201
    config = paris.proxy.config
    await paris.proxy.stop()
    reopened = Registry(paris.state_dir)
    assert [op.method for op in reopened.pending("Corte")] == ["POST"] * 3
    reopened.close()

    replicas = Replicas.open("Paris", paris.state_dir, replay_interval=0.2)
    restarted = SiteProxy(config, extensions=[replicas])
    await restarted.start()
    paris.proxy = restarted  # the fixture stops it at teardown
    await paris.links["Corte"].heal()
    await eventually(lambda: not replicas.registry.pending())
    assert sorted(i["name"] for i in corte.items.values()) == ["alice", "bob", "carol"]
    assert posts(corte) == 3


async def test_the_same_write_sent_twice_at_once_applies_once(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    op = PendingOp(
        key="op-1:Corte",
        handle=None,
        target="Corte",
        service="image",
        method="POST",
        path="/things",
        body=b'{"thing": {"name": "alice"}}',
        headers={"Content-Type": "application/json", "X-Scope": "{image: Corte}"},
        hlc=Hlc(1, 0, "Paris"),
    )
    send = paris.replicas.replayer.send
    first, second = await asyncio.gather(send(op), send(op))
    assert first.status == second.status == 201 and first.body == second.body  # the same answer
    assert posts(corte) == 1 and len(corte.items) == 1
    assert REPLAYED_HEADER in first.headers or REPLAYED_HEADER in second.headers


async def test_a_queued_write_carries_the_ids_of_the_site_it_waits_for(
    replica_sites: SitesFactory,
) -> None:
    """The write replayed to Corte names Corte's members, as the live branch would have."""
    paris, corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "al"}})
    assert status == 201
    record = paris.replicas.registry.lookup(body["thing"]["id"])
    assert record is not None
    at_paris, at_corte = record.member_id("Paris"), record.member_id("Corte")
    assert at_paris and at_corte and at_paris != at_corte
    await paris.links["Corte"].cut()
    friend = {"thing": {"name": "bo", "friend": at_paris}}
    status, headers, _ = await paris.call("POST", "/things", BOTH, json=friend, headers=EVENTUAL)
    assert status == 201 and headers[PENDING_HEADER] == "Corte"
    [queued] = paris.replicas.registry.pending("Corte")
    op = paris.replicas.registry.load(queued.key)
    assert op is not None and queued.body == b""  # a listing reads no body
    assert at_corte in op.body.decode() and at_paris not in op.body.decode()
    await paris.links["Corte"].heal()
    await eventually(lambda: not paris.replicas.registry.pending())
    [bo] = [i for i in corte.items.values() if i["name"] == "bo"]
    assert bo["friend"] == at_corte


async def test_a_replayed_write_names_the_target_sites_member_of_other_sets(
    replica_sites: SitesFactory,
) -> None:
    """A boot queued for Corte names a flavor by its handle: replayed, Corte gets its own
    flavor id, as a live branch would (the demo's eventual *-DC boot after the heal)."""
    paris, corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "tiny"}})
    assert status == 201, body
    flavor = body["thing"]["id"]
    [corte_flavor] = [i for i, item in corte.items.items() if item["name"] == "tiny"]
    await paris.links["Corte"].cut()
    status, _, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "vm", "flavor": flavor}}, headers=EVENTUAL
    )
    assert status == 201, body
    await paris.links["Corte"].heal()
    registry = paris.replicas.registry
    await eventually(lambda: not registry.pending())
    [vm] = [item for item in corte.items.values() if item["name"] == "vm"]
    assert vm["flavor"] == corte_flavor
