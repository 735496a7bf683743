"""The registry: lookups by any id, versions, and durability across reopening, on the
embedded SQLite file and on a real MariaDB server (the same tests, both back ends)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import sqlalchemy as sa

from edgescope.replicas import database as db
from edgescope.replicas.model import Hlc, Member, MemberState, PendingOp, ReplicaSet
from edgescope.replicas.peers import APPLIED_RETENTION, Replayer
from edgescope.replicas.registry import Registry
from replicas.pair import ALICE


def age(registry: Registry, table: sa.Table, seconds: float) -> None:
    """Move every row's time back by ``seconds`` (the tables store when things happened)."""
    with registry.engine.begin() as connection:
        connection.execute(table.update().values(at=table.c.at - seconds))


def op(
    key: str, target: str, handle: str | None = "aa0000000001", method: str = "PATCH"
) -> PendingOp:
    return PendingOp(
        key=key,
        handle=handle,
        target=target,
        service="identity",
        method=method,
        path=f"/v3/users/{handle}",
        body=b'{"user": {}}',
        headers={"X-Auth-Token": "t"},
        hlc=Hlc(11, 0, "Paris"),
    )


def test_lookup_by_handle_or_member_and_versions(location: str) -> None:
    registry = Registry(location)
    assert registry.put_set(ALICE)
    assert registry.lookup("aa0000000001") == registry.lookup("cc0000000001") == ALICE
    members = (Member("Paris", "aa0000000001"), Member("Corte", "cc0000000002"))
    older = ReplicaSet("aa0000000001", "identity", "/v3/users", members, Hlc(9, 0, "P"))
    assert not registry.put_set(older)  # an older record never overwrites a newer one
    gone = registry.mark_gone("aa0000000001", "Corte", Hlc(12, 0, "P"))
    assert gone is not None and gone.member("Corte") == Member(
        "Corte", "cc0000000001", MemberState.GONE
    )
    registry.set_last_write("aa0000000001", Hlc(20, 0, "P"))
    registry.set_last_write("aa0000000001", Hlc(15, 0, "P"))  # never moves back
    assert registry.last_write("aa0000000001") == Hlc(20, 0, "P")
    registry.delete_set("aa0000000001")
    assert registry.lookup("cc0000000001") is None and registry.sets() == []
    registry.close()


def test_everything_survives_reopening(location: str) -> None:
    registry = Registry(location)
    registry.put_set(ALICE)
    seqs = [registry.enqueue(op(f"k{i}", "Corte")) for i in range(5)]
    registry.enqueue(op("n1", "Nice", handle=None, method="POST"))
    assert registry.enqueue(op("k0", "Corte")) == seqs[0]  # same key: queued once
    registry.finish("k1")
    registry.record_applied("applied-1", 201, b'{"id": "x"}', {"Location": "/x"})
    registry.close()

    reopened = Registry(location)
    assert reopened.lookup("cc0000000001") == ALICE
    assert [p.key for p in reopened.pending("Corte")] == ["k0", "k2", "k3", "k4"]
    assert reopened.targets() == ["Corte", "Nice"]
    [done] = [p for p in reopened.pending(include_done=True) if p.state == "done"]
    assert done.key == "k1" and done.attempts == 1
    [nice] = reopened.pending("Nice")
    assert nice.body == b""  # listings read no body (issue 20): load() reads one op whole
    loaded = reopened.load(nice.key)
    assert loaded is not None and loaded.body == b'{"user": {}}'
    assert reopened.applied("applied-1") == (201, b'{"id": "x"}', {"Location": "/x"})
    assert reopened.applied("nope") is None
    reopened.close()

    read_only = Registry(location, read_only=True)
    assert len(read_only.pending()) == 5
    read_only.close()


def test_old_applied_keys_are_pruned_recent_ones_kept(location: str) -> None:
    registry = Registry(location)
    registry.record_applied("old:Corte", 201, b"{}", {})
    registry.record_applied("new:Corte", 201, b"{}", {})
    with registry.engine.begin() as connection:  # age one key
        c = db.applied.c
        connection.execute(db.applied.update().where(c.key == "old:Corte").values(at=c.at - 100))
    assert registry.prune_applied(before=time.time() - 50) == 1
    assert registry.applied("old:Corte") is None
    assert registry.applied("new:Corte") == (201, b"{}", {})


async def test_the_replayer_prunes_past_the_retention_at_most_hourly(location: str) -> None:
    registry = Registry(location)
    registry.record_applied("k:Corte", 201, b"{}", {})
    link = SimpleNamespace(registry=registry, clock=SimpleNamespace(site="Paris"))
    replayer = Replayer(link, interval=0)  # type: ignore[arg-type]
    now = time.time()
    assert await replayer.prune_applied(now) == 0  # 30 days not over
    assert registry.applied("k:Corte") is not None
    later = now + APPLIED_RETENTION + 1
    assert await replayer.prune_applied(later) == 1
    assert registry.applied("k:Corte") is None
    registry.record_applied("k2:Corte", 201, b"{}", {})
    age(registry, db.applied, 2 * APPLIED_RETENTION)
    assert await replayer.prune_applied(later + 60) == 0  # pruned less than an hour ago
    assert registry.applied("k2:Corte") is not None
    assert await replayer.prune_applied(later + 3601) == 1
