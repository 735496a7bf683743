"""Loopback attacks on the undo by name of a create taken over in doubt (issue 24): real
proxies, Paris's branch to Corte swallowed, Corte's dead proxy played by its leftovers (as
``test_undo_in_doubt.py``). docs/attacks/20261208b.md says what each pins."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import pytest

import sitekeys
from edgescope.proxy.keys import load_private
from edgescope.proxy.protocol import REPLICA_SETS_PATH, sign_hop
from edgescope.replicas import peers
from replicas.pair import BOTH, eventually
from replicas.test_undo_in_doubt import dead_proxy_claimed, iso, undo_finished

SitesFactory = Any


async def undo_of(paris: Any, name: str) -> tuple[str, str]:
    """A strict create of ``name`` at Paris whose Corte branch got no answer: (the key of
    its undo queued at Paris, the create's key at Corte)."""
    before = {op.key for op in paris.replicas.registry.pending("Corte")}
    await paris.links["Corte"].swallow()
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": name}})
    assert status == 503, body
    [queued] = [op for op in paris.replicas.registry.pending("Corte") if op.key not in before]
    undo = paris.replicas.registry.load(queued.key)
    return undo.key, undo.headers["X-Edgescope-Undo-Of"]


async def test_an_undo_in_doubt_leaves_what_was_made_after_the_dead_proxys_claim(
    replica_sites: SitesFactory,
) -> None:
    """Corte's proxy died applying a create of "web 1" and made nothing. The undo by key
    reaches Corte an hour later (a link cut for that long), when the user has made a "web 1"
    at Corte alone meanwhile (a retry, or a colleague's): the dead proxy could not have made
    it (its claim had expired long before), so it is no candidate and is left."""
    paris, corte = await replica_sites("Paris", "Corte")
    undo, key = await undo_of(paris, "web 1")
    at = dead_proxy_claimed(corte, key)
    corte.items["r1"] = {"id": "r1", "name": "web 1", "created_at": iso(at + 3600)}
    await asyncio.sleep(0.01)
    await paris.links["Corte"].heal()
    await eventually(lambda: undo_finished(paris, undo) is not None)
    assert "r1" in corte.items
    assert not [p for m, p in corte.seen if m == "DELETE"]


async def test_an_undo_in_doubt_that_cannot_tell_for_ever_holds_no_one_elses_undo(
    replica_sites: SitesFactory,
) -> None:
    """Alice's undo in doubt at Corte: her token is revoked (her lookups by name answer 401
    for ever), so it cannot tell and is retried (503). Bob's undo of his own failed create,
    queued after hers for the same collection, must still go (it held behind hers, F5's
    order per path, for ever); hers ends, left "check by hand", past the undo patience."""
    paris, corte = await replica_sites("Paris", "Corte")
    alice, key = await undo_of(paris, "alice-vm")
    dead_proxy_claimed(corte, key)
    bob, _ = await undo_of(paris, "bob-vm")
    corte.listing_answers.extend([401] * 10_000)
    await asyncio.sleep(0.01)
    await paris.links["Corte"].heal()
    await eventually(lambda: undo_finished(paris, bob) is not None, 20)
    assert undo_finished(paris, bob).state == "done"
    assert undo_finished(paris, alice) is None  # still retried, within the patience
    guard = corte.replicas.parts.guard
    guard.claims = replace(guard.claims, undo_patience=0.0)  # as if long after the create
    await eventually(lambda: undo_finished(paris, alice) is not None, 20)
    row = undo_finished(paris, alice)
    assert row.state == "failed" and "check by hand" in row.last_error, row.last_error
    assert not [p for m, p in corte.seen if m in ("DELETE", "POST")]


async def test_a_signed_peer_that_stalls_a_record_push_is_answered(
    replica_sites: SitesFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A correctly signed peer declares a record push's length and stops sending: its body
    was read with a size cap but no pause bound, holding the connection for ever."""
    monkeypatch.setattr(peers, "PUSH_IDLE", 0.5, raising=False)
    _paris, corte = await replica_sites("Paris", "Corte")
    body = b'{"set": {}}'
    signed = sign_hop(
        load_private(sitekeys.private("Paris")), "POST", REPLICA_SETS_PATH, "Paris", "Corte", 1,
        now=time.time(), body=body,
    )  # fmt: skip
    head = "".join(f"{name}: {value}\r\n" for name, value in signed.items())
    host, port = corte.proxy.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST {REPLICA_SETS_PATH} HTTP/1.1\r\nHost: c\r\n{head}"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body[:4]
        )
        await writer.drain()
        # the bound only keeps the old code from hanging the test: the answer comes in ~0.5 s
        status_line = await asyncio.wait_for(reader.readline(), 15)
    finally:
        writer.close()
    assert status_line.split()[1] == b"408", status_line
