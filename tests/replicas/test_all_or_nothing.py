"""A strict ``&`` create is all or nothing; one resource read at its members is one answer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgescope.proxy.protocol import SITES_HEADER
from edgescope.replicas.members import DIVERGED_FIELD, MEMBERS_FIELD

SitesFactory = Any
BOTH = "{image: Paris & Corte}"


async def eventually(check: Any, timeout: float = 8.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_a_member_refusing_undoes_the_others(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    for refuser, other in ((corte, paris), (paris, corte)):
        status, headers, body = await paris.call(
            "POST", "/things", BOTH, json={"thing": {"name": "vm", "refuse_at": refuser.name}}
        )
        assert status == 403, body
        message = body["error"]["message"]
        assert f"undone: {other.name}: " in message and "deleted again" in message
        assert paris.items == {} and corte.items == {}
        assert ("DELETE", f"/image/things/{message.split(': ')[-1].split()[0]}") in other.seen
        assert headers[SITES_HEADER].startswith("Paris=")
    assert paris.replicas.registry.sets() == []


async def test_an_undo_waits_for_a_member_still_being_made(replica_sites: SitesFactory) -> None:
    """cinder refuses to delete a volume while it is 'creating' (400): the undo asks again."""
    paris, _ = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"refuse_at": "Corte", "busy_for": 2}}
    )
    assert status == 403
    assert "undone: Paris: " in body["error"]["message"]
    assert "deleted again" in body["error"]["message"]
    assert paris.items == {}
    assert [m for m, _ in paris.seen].count("DELETE") == 3


async def test_an_undo_that_cannot_reach_its_site_is_queued(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    create = asyncio.ensure_future(
        paris.call(
            "POST",
            "/things",
            BOTH,
            json={"thing": {"name": "vm", "refuse_at": "Paris", "slow_at": "Paris", "delay": 1}},
        )
    )
    await eventually(lambda: len(corte.items) == 1)  # Corte created it; Paris still thinking
    corte_id = next(iter(corte.items)).encode()
    # Corte's answer has crossed the link (cut before it, Paris would never learn of the create)
    await eventually(lambda: corte_id in paris.links["Corte"].answered)
    await paris.links["Corte"].cut()
    status, _, body = await create
    assert status == 403, body
    assert "to be deleted once reachable" in body["error"]["message"]
    [undo] = paris.replicas.registry.pending("Corte")
    assert undo.method == "DELETE" and undo.path == f"/things/{next(iter(corte.items))}"
    await paris.links["Corte"].heal()
    await eventually(lambda: not corte.items and not paris.replicas.registry.pending())


async def test_one_resource_read_at_its_members_is_one_answer(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"status": "BUILD"}})
    handle = body["thing"]["id"]
    corte_id = next(iter(corte.items))

    async def show() -> dict[str, Any]:
        status, _, body = await paris.call("GET", f"/things/{handle}", BOTH)
        assert status == 200, body
        return dict(body["thing"])

    await paris.call(
        "PATCH", f"/things/{handle}", "{image: Paris}", json={"thing": {"status": "ACTIVE"}}
    )
    thing = await show()  # one member still building: the resource is building
    assert thing["status"] == "BUILD" and thing["id"] == handle
    assert thing[MEMBERS_FIELD] == {
        "Paris": {"id": handle, "status": "ACTIVE"},
        "Corte": {"id": corte_id, "status": "BUILD"},
    }
    assert DIVERGED_FIELD not in thing
    await paris.call(
        "PATCH", f"/things/{handle}", "{image: Corte}", json={"thing": {"status": "ERROR"}}
    )
    thing = await show()  # an error anywhere shows at once, naming the sites
    assert thing["status"] == "ERROR"
    assert thing[DIVERGED_FIELD] == "status: Paris=ACTIVE, Corte=ERROR"
    await paris.call(
        "PATCH", f"/things/{handle}", "{image: Corte}", json={"thing": {"status": "active"}}
    )
    thing = await show()
    assert thing["status"].lower() == "active" and DIVERGED_FIELD not in thing


@pytest.mark.xfail(
    reason="passes alone (4 of 4), failed 2 of 2 inside the whole tests/replicas run on "
    "2026-12-07 (load 13-50): not diagnosed (h24, issue 24 cause E)",
    strict=False,
)
async def test_a_member_that_answers_too_late_is_undone_by_key(replica_sites: SitesFactory) -> None:
    """Corte creates after Paris stopped waiting (its 5 s read timeout): the strict create
    fails and Paris undoes its own copy; Corte's is undone by the create's key once Corte's
    proxy has applied it (campaign cause E: it was left, tracked by no set)."""
    paris, corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "vm", "slow_at": "Corte", "delay": 5.5}}
    )
    assert status == 503, body
    assert "Corte: no answer, its create to be undone by key" in body["error"]["message"]
    assert paris.items == {}
    # the late create lands, then the undo (retried while Corte applies it) removes it;
    # generous bounds: a loaded machine slows the replay rounds, not the outcome
    await eventually(lambda: len(corte.items) == 1, timeout=30)
    await eventually(lambda: not corte.items and not paris.replicas.registry.pending(), 30)
    assert paris.replicas.registry.sets() == []


async def test_an_undo_by_key_before_the_create_arrives_leaves_a_tombstone(
    replica_sites: SitesFactory,
) -> None:
    """The undo reaches Corte first: Corte's proxy remembers the key as undone, and the create
    arriving later is answered 409 without reaching the backend."""
    _paris, corte = await replica_sites("Paris", "Corte")
    key = "f00dfeed:Corte"
    guard = corte.replicas.parts.guard

    async def never(_id: str) -> Any:
        raise AssertionError("nothing to delete")

    reply = await guard.undo_create(key, never)
    assert reply.status == 204

    async def create() -> Any:
        raise AssertionError("the backend is not called")

    late = await guard.guarded_write(None, guard.clock.now(), key, create)
    assert late.status == 409 and b"undone" in late.body
    assert corte.items == {}
