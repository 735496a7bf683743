"""Loopback attacks on key rotation gossip (sync format 2, "the higher version wins between
two keys handed over to each other"): what a holder of a key rotated away from can still do,
pinned with its remedy (docs/security.md, "What is left")."""

from __future__ import annotations

import time
from typing import Any

import pytest
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


@pytest.mark.parametrize(
    "name", ["Evil\r\nX-Injected: 1", '<img src=x onerror="alert(1)">', 'Corte="ok", Paris', ""]
)
async def test_an_endorsed_entry_with_a_name_no_config_would_take_is_refused(
    make_edge: EdgeFactory, name: str
) -> None:
    """A site name is what the [[peers]] of a config may hold (letters, digits, '_', '-'):
    it goes into headers (X-Edgescope-Sites, -Partial), scopes and the console. The
    directory took any string an authority endorsed, and learned it as a peer."""
    edge = await make_edge("Paris", "Corte")
    await edge.gossip(rounds=2)
    key = keys.generate()
    cert = model.endorse(edge.authority, name, key.public_key(), expires=time.time() + 3600)
    entry = model.advertise(key, cert, "http://127.0.0.1:9", ["image"], version=1)
    status, doc = await edge.offer("Corte", {"entries": [entry.to_json()]}, sender="Paris")
    assert status in (200, 400), doc
    assert name not in edge.directories["Corte"].entries
    assert name not in edge.proxies["Corte"].peers
