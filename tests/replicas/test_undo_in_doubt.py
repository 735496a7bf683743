"""The undo by key of a failed strict create finds what a dead proxy made there by the
create's name, and deletes it only when it is sure (issue 24, campaign row E: the restarted
proxy took the dead proxy's claim over, answered 409 "check by hand" and left the image).

Paris's branch to Corte is swallowed (sent, never answered): the strict create fails and
Paris queues an undo of Corte's key. Corte's dead proxy is played by its leftovers: an
expired ``applying`` claim of that key in Corte's registry and, in Corte's real loopback
backend, what it made (dated as a backend dates it). Then the link heals and the undo runs.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from edgescope.proxy.protocol import UNDO_NAME_HEADER, UNDO_OF_HEADER
from replicas.pair import BOTH, eventually

SitesFactory = Any


def iso(when: float) -> str:
    """A creation time as glance writes it (whole seconds, UTC)."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def undo_queued_for_corte(paris: Any, corte: Any, name: str) -> tuple[str, str]:
    """A strict create at Paris whose Corte branch got no answer: its undo by key queued;
    returns (the undo's key in Paris's queue, the create's key at Corte)."""
    await paris.links["Corte"].swallow()
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": name}})
    assert status == 503, body
    assert "Corte: no answer, its create to be undone by key" in body["error"]["message"]
    [queued] = paris.replicas.registry.pending("Corte")
    undo = paris.replicas.registry.load(queued.key)
    assert undo.headers[UNDO_NAME_HEADER] == name.replace(" ", "%20")
    assert not corte.made  # nothing reached Corte's proxy
    return undo.key, undo.headers[UNDO_OF_HEADER]


def dead_proxy_claimed(corte: Any, key: str) -> float:
    """Corte's proxy died applying ``key``: its claim is left, expired; returns its time."""
    claim = corte.replicas.registry.claim_apply(key, "Corte/dead/1/aaaaaa", 0)
    assert claim.state.value == "mine"
    return time.time()


def undo_finished(paris: Any, undo: str) -> Any:
    """The undo's row in Paris's queue once it is finished, else None."""
    row = paris.replicas.registry.load(undo)
    return row if row is not None and row.state != "queued" else None


async def test_an_undo_by_key_deletes_what_a_dead_proxy_made(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    undo, key = await undo_queued_for_corte(paris, corte, "web 1")
    at = dead_proxy_claimed(corte, key)
    corte.items["d0d0"] = {"id": "d0d0", "name": "web 1", "created_at": iso(at + 1)}
    await asyncio.sleep(0.01)  # the claim's time (0 s) is past
    await paris.links["Corte"].heal()
    await eventually(lambda: undo_finished(paris, undo) is not None)
    assert undo_finished(paris, undo).state == "done"
    assert corte.items == {}
    assert ("DELETE", "/image/things/d0d0") in corte.seen
    assert not [p for m, p in corte.seen if m == "POST"]
    assert paris.items == {} and paris.replicas.registry.sets() == []


async def test_an_undo_in_doubt_deletes_nothing_it_cannot_be_sure_of(
    replica_sites: SitesFactory,
) -> None:
    """Things named alike are left: one older than the create (someone's own, or an
    attacker's made in advance) is not a candidate; two new ones are ambiguous; one that
    shows no creation time may be older. Each undo ends, and deletes nothing."""
    paris, corte = await replica_sites("Paris", "Corte")
    undo, key = await undo_queued_for_corte(paris, corte, "db")
    at = dead_proxy_claimed(corte, key)
    corte.items["01d"] = {"id": "01d", "name": "db", "created_at": iso(at - 3600)}
    await asyncio.sleep(0.01)
    await paris.links["Corte"].heal()
    await eventually(lambda: undo_finished(paris, undo) is not None)
    assert undo_finished(paris, undo).state == "done"  # nothing made since: nothing to undo
    for twins in (
        [{"id": "a1", "created_at": iso(at + 1)}, {"id": "a2", "created_at": iso(at + 2)}],
        [{"id": "b1"}],  # no creation time
    ):
        undo, key = await undo_queued_for_corte(paris, corte, "db")
        at = dead_proxy_claimed(corte, key)
        for twin in twins:
            corte.items[twin["id"]] = {**twin, "name": "db"}
        await asyncio.sleep(0.01)
        await paris.links["Corte"].heal()
        await eventually(lambda u=undo: undo_finished(paris, u) is not None)  # type: ignore[misc]
        row = undo_finished(paris, undo)
        assert row.state == "failed" and "check by hand" in row.last_error, row.last_error
        assert all(t["id"] in row.last_error for t in twins)
    assert sorted(corte.items) == ["01d", "a1", "a2", "b1"]
    assert not [p for m, p in corte.seen if m in ("DELETE", "POST")]


async def test_an_undo_whose_lookup_cannot_tell_stays_in_doubt(
    replica_sites: SitesFactory,
) -> None:
    """Corte's listing answers 503, then 401: the undo is retried (never "nothing made"),
    and deletes the dead proxy's item once the listing answers."""
    paris, corte = await replica_sites("Paris", "Corte")
    undo, key = await undo_queued_for_corte(paris, corte, "cache")
    at = dead_proxy_claimed(corte, key)
    corte.items["c0c0"] = {"id": "c0c0", "name": "cache", "created_at": iso(at)}
    corte.listing_answers.extend([503, 401])
    await asyncio.sleep(0.01)
    await paris.links["Corte"].heal()
    await eventually(lambda: undo_finished(paris, undo) is not None)
    assert not corte.listing_answers  # both were answered, and the undo went on
    assert undo_finished(paris, undo).state == "done"
    assert corte.items == {}
