"""B9 of the 2026-12-07 review: a key rotation spreads by anti-entropy whatever its version,
and nothing else moves a site's key (real in-process proxies on loopback, real syncs).

A site's rotation (an entry under its new key, with a handover its previous key signed) may
carry a *lower* version than what a receiver holds under the previous key (the old key had
published a high version; a clock went back). The digest of sync format 2 lists the key id of
each entry with a handover (``keys``), so a peer that holds another key for that site is sent
the rotation; the receiver still admits it only by :func:`model.succeeds` (the handover must
verify under the key it holds). The attacks: a hostile but correctly signed peer gossiping a
rollback, a replay of an older rotation, a flood of digests, and a peer of format 1.
"""

from __future__ import annotations

import base64
import logging
import time
from typing import Any

import pytest

from edgescope.directory import model
from edgescope.directory.gossip import MAX_OFFER_ENTRIES
from edgescope.proxy import keys

EdgeFactory = Any
HIGH = 2**52  # what an old key published before the rotation (finding 5's attacker, or skew)


def lyon(
    edge: Any,
    key: keys.Ed25519PrivateKey,
    version: int,
    *,
    previous: keys.Ed25519PrivateKey | None = None,
    url: str = "http://127.0.0.1:9",
) -> model.Entry:
    """Lyon's entry under ``key`` (endorsed by the edge's authority), a handover from
    ``previous`` when given: what only Lyon (or whoever holds its keys) can sign."""
    cert = model.endorse(edge.authority, "Lyon", key.public_key(), expires=time.time() + 3600)
    return model.advertise(key, cert, url, ["image"], version=version, previous=previous)


def key_of(entry: model.Entry | None) -> str:
    assert entry is not None
    return entry.endorsement.public_key


async def rotated_at_corte_only(edge: Any, version: int) -> tuple[Any, Any, model.Entry]:
    """Corte and Marseille hold Lyon's entry under K1 at version HIGH; Corte alone then
    takes Lyon's rotation to K2 at ``version``."""
    k1, k2 = keys.generate(), keys.generate()
    old = lyon(edge, k1, HIGH)
    for site in ("Corte", "Marseille"):
        status, _ = await edge.offer(site, {"entries": [old.to_json()]}, sender="Paris")
        assert status == 200
        assert key_of(edge.directories[site].entries.get("Lyon")) == key_of(old)
    rotation = lyon(edge, k2, version, previous=k1)
    status, _ = await edge.offer("Corte", {"entries": [rotation.to_json()]}, sender="Paris")
    assert status == 200 and key_of(edge.directories["Corte"].entries["Lyon"]) == key_of(rotation)
    return k1, k2, rotation


@pytest.mark.parametrize("direction", ["push", "pull"])
async def test_a_rotation_to_a_lower_version_spreads(
    make_edge: EdgeFactory, direction: str
) -> None:
    """Before the fix: Marseille kept K1 for ever (its version is higher), whoever synced."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    _, _, rotation = await rotated_at_corte_only(edge, HIGH - 1000)
    corte, marseille = edge.directories["Corte"], edge.directories["Marseille"]
    if direction == "push":  # Corte starts the sync, Marseille answers with its versions
        assert await corte.sync_with(edge.url("Marseille"))
    else:  # Marseille starts: Corte's answer to its push carries the rotation
        assert await marseille.sync_with(edge.url("Corte"))
    held = marseille.entries["Lyon"]
    assert key_of(held) == key_of(rotation) and held.version == HIGH - 1000
    assert marseille.keyed_fingerprint() == corte.keyed_fingerprint()
    exchanges = corte.exchanges + marseille.exchanges
    await corte.sync_with(edge.url("Marseille"))
    await marseille.sync_with(edge.url("Corte"))
    assert corte.exchanges + marseille.exchanges == exchanges  # converged: fingerprints only


async def test_a_rotation_at_the_same_version_spreads(make_edge: EdgeFactory) -> None:
    """Before the fix the two directories had the same fingerprint (versions only): 'same'."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    _, _, rotation = await rotated_at_corte_only(edge, HIGH)
    corte, marseille = edge.directories["Corte"], edge.directories["Marseille"]
    assert corte.fingerprint() == marseille.fingerprint()  # format 1 cannot tell them apart
    assert corte.keyed_fingerprint() != marseille.keyed_fingerprint()
    await edge.gossip(rounds=2)
    for site in ("Paris", "Corte", "Marseille"):
        assert key_of(edge.directories[site].entries["Lyon"]) == key_of(rotation), site


async def test_a_hostile_signed_peer_cannot_roll_a_rotation_back(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Marseille, a correctly signed peer, holds Lyon's old keys and gossips what it likes."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    k1, k2, rotation = await rotated_at_corte_only(edge, HIGH - 1000)
    corte = edge.directories["Corte"]
    k0 = keys.generate()
    attempts = [
        lyon(edge, k1, HIGH + 1000, url="http://attacker"),  # the old key, higher still
        lyon(edge, k1, HIGH + 2000, previous=k0, url="http://attacker"),  # an older handover
        lyon(edge, k0, 2**53 - 1, url="http://attacker"),  # another endorsed key
    ]
    for attempt in attempts:
        mine = {"Lyon": keys.key_id(attempt.public_key)}  # it claims the key it pushes
        offer = {"versions": {"Lyon": attempt.version}, "keys": mine,
                 "entries": [attempt.to_json()]}  # fmt: skip
        status, answer = await edge.offer("Corte", offer, sender="Marseille")
        assert status == 200, answer
        sent = [e["site"] for e in answer["entries"]]
        assert "Lyon" in sent  # Corte sends it the rotation back: public, harmless
        held = corte.entries["Lyon"]
        assert held == rotation and held.url == "http://127.0.0.1:9"
    refusals = [r.getMessage() for r in caplog.records if "directory sync with" in r.getMessage()]
    assert any("signed with another key" in line for line in refusals), refusals
    assert any("handover: the signature does not verify" in line for line in refusals), refusals
    assert key_of(corte.entries["Lyon"]) == keys.public_text(k2.public_key())


async def test_a_replayed_older_rotation_or_version_is_refused_and_the_edge_converges(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Lyon rotates K1 -> K2 -> K3 (each rotation at a lower version). Replays of the first
    rotation and of K3's older versions change nothing at Corte; Paris and Marseille, which
    hold K2, get K3 by gossip and keep it, although Marseille offers K2 on its way."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    _, k2, first = await rotated_at_corte_only(edge, HIGH - 1000)
    await edge.offer("Paris", {"entries": [first.to_json()]}, sender="Corte")
    await edge.offer("Marseille", {"entries": [first.to_json()]}, sender="Corte")
    k3 = keys.generate()
    second = lyon(edge, k3, 5, previous=k2)  # lower still
    newest = lyon(edge, k3, 6)  # the site dropped previous_key_file: no handover
    await edge.offer("Corte", {"entries": [second.to_json()]}, sender="Paris")
    await edge.offer("Corte", {"entries": [newest.to_json()]}, sender="Paris")
    corte = edge.directories["Corte"]
    assert corte.entries["Lyon"] == newest
    for replay in (second, first, lyon(edge, k3, 4, previous=k2)):
        status, _ = await edge.offer("Corte", {"entries": [replay.to_json()]}, sender="Marseille")
        assert status == 200 and corte.entries["Lyon"] == newest
    lines = [r.getMessage() for r in caplog.records if "directory sync with" in r.getMessage()]
    assert any("handover: the signature does not verify" in line for line in lines), lines
    # K3 at 6 carries no handover: it cannot move a site holding K2; the rotation K2 -> K3
    # must reach one of them (here Paris), and then gossip spreads it, at its lower version.
    await edge.offer("Paris", {"entries": [second.to_json()]}, sender="Corte")
    await edge.gossip(rounds=3)
    for site in ("Paris", "Corte", "Marseille"):
        assert key_of(edge.directories[site].entries["Lyon"]) == keys.public_text(k3.public_key())
        assert edge.directories[site].entries["Lyon"].version == 6, site


async def test_an_entry_under_another_key_without_handover_costs_no_signature_check(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """It cannot succeed, so it is refused before its (here forged) signatures are checked."""
    edge = await make_edge("Paris", "Corte")
    await edge.gossip(rounds=3)
    corte = edge.directories["Corte"]
    held = corte.entries["Paris"]
    other = lyon(edge, keys.generate(), 2**52).to_json()
    forged_cert = {**other["endorsement"], "site": "Paris",
                   "signature": base64.b64encode(b"x" * 64).decode()}  # fmt: skip
    forged = {**other, "site": "Paris", "endorsement": forged_cert}
    with caplog.at_level(logging.INFO, logger="edgescope.directory"):
        status, _ = await edge.offer("Corte", {"entries": [forged]}, sender="Paris")
    assert status == 200 and corte.entries["Paris"] is held
    lines = [r.getMessage() for r in caplog.records if "directory sync with" in r.getMessage()]
    assert "signed with another key" in lines[-1] and "endorsement" not in lines[-1], lines


async def test_a_flood_of_digests_is_bounded(make_edge: EdgeFactory) -> None:
    """Digests naming 12,000 made-up sites and key ids, 20 times: each answered within the
    bound, nothing changes; a malformed digest is a clear 400, taken before anything."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    corte = edge.directories["Corte"]
    before = dict(corte.entries)
    fake = {f"Site{i}": 2**52 for i in range(12_000)}
    tags = {f"Site{i}": "f" * 16 for i in range(12_000)}
    tags.update({site: "0" * 16 for site in before})  # every key "differs"
    for _ in range(20):
        status, answer = await edge.offer(
            "Corte", {"versions": fake, "keys": tags, "entries": []}, sender="Marseille"
        )
        assert status == 200 and len(answer["entries"]) <= MAX_OFFER_ENTRIES
        assert {e["site"] for e in answer["entries"]} == set(before)  # versions: it lacks them
    assert corte.entries == before
    for bad, words in [
        ({"versions": {"Paris": "x"}}, "is not an integer"),
        ({"versions": {"Paris": True}}, "is not an integer"),
        ({"versions": {"Paris": -5}}, "is not an integer"),
        ({"versions": [], "entries": []}, "'versions' is not an object"),
        ({"versions": {}, "keys": ["Paris"]}, "'keys' is not an object"),
        ({"versions": {}, "keys": {"Paris": 7}}, "is not a key id"),
        ({"versions": {}, "keys": {"Paris": "k" * 65}}, "is not a key id"),
    ]:
        stolen = lyon(edge, keys.generate(), 1).to_json()
        status, answer = await edge.offer("Corte", {**bad, "entries": [stolen]}, sender="Marseille")
        assert status == 400 and "bad digest" in answer["error"] and words in answer["error"], bad
        assert "Lyon" not in corte.entries  # refused whole: nothing taken
    async with edge.session.get(edge.url("Corte") + "/edgescope/health") as health:
        assert health.status == 200


async def test_a_peer_of_sync_format_1_interoperates_versions_only(make_edge: EdgeFactory) -> None:
    """A peer that sends no ``keyed`` fingerprint and no ``keys`` gets the sync it had: the
    format-1 fingerprint compared, versions only (a lower rotation is not sent to it)."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    await rotated_at_corte_only(edge, HIGH - 1000)
    corte, marseille = edge.directories["Corte"], edge.directories["Marseille"]
    status, answer = await edge.offer(
        "Corte", {"from": "Marseille", "fingerprint": corte.fingerprint()}, sender="Marseille"
    )
    assert (status, answer) == (200, {"same": True})
    status, answer = await edge.offer(
        "Corte", {"from": "Marseille", "fingerprint": "old"}, sender="Marseille"
    )
    assert status == 200 and all(isinstance(v, int) for v in answer["versions"].values())
    versions = model.digest(marseille.entries)
    status, answer = await edge.offer(
        "Corte", {"from": "Marseille", "versions": versions, "entries": []}, sender="Marseille"
    )
    assert status == 200 and "Lyon" not in [e["site"] for e in answer["entries"]]
    status, answer = await edge.offer(  # the same digest in format 2: the rotation is sent
        "Corte",
        {"from": "Marseille", "versions": versions, "keys": marseille.rotations(), "entries": []},
        sender="Marseille",
    )
    assert status == 200 and "Lyon" in [e["site"] for e in answer["entries"]]


async def test_a_rotation_back_to_an_earlier_key_converges_and_is_not_replayed(
    make_edge: EdgeFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Lyon rotates K1 -> K2, then back K2 -> K1 (its operator undid the rotation, K1 not
    revoked). Both rotations' handovers verify under the other key: without a rule the
    gossip of format 2 swapped them for ever (Corte took the older rotation back from
    Marseille). The higher version wins between two keys handed over to each other."""
    edge = await make_edge("Paris", "Corte", "Marseille")
    await edge.gossip(rounds=3)
    k1, k2 = keys.generate(), keys.generate()
    start, there = lyon(edge, k1, 10), lyon(edge, k2, 20, previous=k1)
    back = lyon(edge, k1, 30, previous=k2)
    for site in ("Corte", "Marseille"):
        for step in (start, there):
            await edge.offer(site, {"entries": [step.to_json()]}, sender="Paris")
        assert edge.directories[site].entries["Lyon"] == there
    await edge.offer("Corte", {"entries": [back.to_json()]}, sender="Paris")
    corte, marseille = edge.directories["Corte"], edge.directories["Marseille"]
    assert corte.entries["Lyon"] == back
    assert await marseille.sync_with(edge.url("Corte"))  # Marseille pushes K2's rotation
    assert corte.entries["Lyon"] == back and marseille.entries["Lyon"] == back
    status, _ = await edge.offer("Corte", {"entries": [there.to_json()]}, sender="Marseille")
    assert status == 200 and corte.entries["Lyon"] == back  # a replay of the older rotation
    lines = [r.getMessage() for r in caplog.records if "directory sync with" in r.getMessage()]
    assert any("an older rotation (version 20)" in line for line in lines), lines
    await edge.gossip(rounds=3)
    for site in ("Paris", "Corte", "Marseille"):
        assert edge.directories[site].entries["Lyon"] == back, site
