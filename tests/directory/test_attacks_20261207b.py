"""Loopback attacks on key rotation gossip (sync format 2, "the higher version wins between
two keys handed over to each other"): what a holder of a key rotated away from can still do,
pinned with its remedy (docs/security.md, "What is left")."""

from __future__ import annotations

from typing import Any

from tests.directory.test_rotation_gossip import key_of, lyon

from edgescope.directory import model
from edgescope.proxy import keys

EdgeFactory = Any


async def test_a_key_rotated_back_from_can_take_the_site_until_it_is_revoked(
    make_edge: EdgeFactory,
) -> None:
    """Lyon went K1 -> K2 -> back to K1 (say K2 leaked). The holder of K2 needs no key of
    Lyon's but K2: the handover K1 signed for K2 binds no version, so it is reused on an
    entry minted at any later time with the highest version, and every site takes it; K1
    can never publish above it. Revoking K2 is the remedy: the entry goes, K1's is taken."""
    edge = await make_edge("Paris", "Corte")
    await edge.gossip(rounds=2)
    k1, k2 = keys.generate(), keys.generate()
    there, back = lyon(edge, k2, 20, previous=k1), lyon(edge, k1, 30, previous=k2)
    for step in (lyon(edge, k1, 10), there, back):
        status, _ = await edge.offer("Corte", {"entries": [step.to_json()]}, sender="Paris")
        assert status == 200
    corte = edge.directories["Corte"]
    assert key_of(corte.entries["Lyon"]) == key_of(back)

    minted = lyon(edge, k2, model.MAX_VERSION - 1, previous=k1)
    assert minted.handover == there.handover  # the same bytes: K2's holder needs only them
    await edge.offer("Corte", {"entries": [minted.to_json()]}, sender="Paris")
    assert key_of(corte.entries["Lyon"]) == key_of(minted)  # the documented limit
    later = lyon(edge, k1, model.MAX_VERSION - 1, previous=k2)
    await edge.offer("Corte", {"entries": [later.to_json()]}, sender="Paris")
    assert key_of(corte.entries["Lyon"]) == key_of(minted)  # K1 cannot outbid it

    revocation = model.revoke(edge.authority, "Lyon", k2.public_key())
    async with edge.session.post(
        edge.url("Corte") + "/edgescope/directory/revoke",
        json={"revocations": [revocation.to_json()]},
    ) as answer:
        assert answer.status == 200, await answer.text()
    assert "Lyon" not in corte.entries or key_of(corte.entries["Lyon"]) != key_of(minted)
    await edge.offer("Corte", {"entries": [later.to_json()]}, sender="Paris")
    assert key_of(corte.entries["Lyon"]) == key_of(later)
    await edge.offer("Corte", {"entries": [minted.to_json()]}, sender="Paris")
    assert key_of(corte.entries["Lyon"]) == key_of(later)  # the revoked key stays out
