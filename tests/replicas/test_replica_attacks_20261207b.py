"""Loopback attacks on the replica write paths fixed for the fault campaign: the undo of a
failed strict create by its key (``X-Edgescope-Undo-Of``) cannot be forged by a client."""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa

import sitekeys
from edgescope.proxy.keys import load_private
from edgescope.proxy.protocol import PEER_PATH, sign_hop
from edgescope.replicas import database as db

SitesFactory = Any
BOTH = "{image: Paris & Corte}"


def applied_keys(site: Any) -> list[str]:
    registry = site.replicas.registry
    query = sa.select(db.applied.c.key)
    return [row[0] for row in registry._run(lambda c: c.execute(query).all(), write=False)]


async def test_a_client_cannot_undo_anothers_create_by_its_key(
    replica_sites: SitesFactory,
) -> None:
    """A client that learned the key of a create (it is no secret to the members) sends
    the undo's headers itself, to the site and through a peer: they are dropped at
    ingress, the DELETE of the bare collection reaches no guard, nothing is deleted."""
    paris, corte = await replica_sites("Paris", "Corte")
    status, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "vm"}})
    assert status in (200, 201, 202), body
    [key] = applied_keys(corte)
    forged = {
        "X-Edgescope-Undo-Of": key,
        "X-Edgescope-Hlc": "0000000001000.000005.Paris",
        "X-Edgescope-Idempotency-Key": "forged:Corte",
    }
    for entry, scope in ((corte, "{image: Corte}"), (paris, "{image: Corte}")):
        status, _, _ = await entry.call("DELETE", "/things", scope, headers=forged)
        assert status != 204
    assert len(corte.items) == 1 and len(paris.items) == 1
    assert not [m for m, p in corte.seen if m == "DELETE" and p != "/image/things"]

    # The control: the same headers signed by a peer with the replicas capability (any
    # [[peers]] entry by default) do delete, under the token that peer presents. A member
    # of the create knows the key (op key and site); the backend judges the token.
    path = PEER_PATH + "image/things"
    signed = sign_hop(
        load_private(sitekeys.private("Paris")), "DELETE", path, "Paris", "Corte", 1,
        now=time.time(), headers=forged,
    )  # fmt: skip
    async with corte.session.delete(
        corte.proxy.url + path, headers={**forged, **signed, "X-Scope": "{image: Corte}"}
    ) as response:
        assert response.status == 204, await response.text()
    assert corte.items == {}
