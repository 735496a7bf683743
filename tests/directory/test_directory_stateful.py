"""The directory's merge under any sequence of offers (Hypothesis, stateful): no key but the
one a site holds (or one it handed over to) takes the site's entry, versions stay below
2^53, garbage is refused without an exception, and memory stays within ``max_sites``."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

import sitekeys
from edgescope.directory import model
from edgescope.directory.gossip import Directory, DirectoryConfig
from edgescope.proxy import keys

AUTHORITY = keys.generate()
ROGUE_AUTHORITY = keys.generate()
MAX_SITES = 6
SITES = [f"S{i}" for i in range(10)]
KEYS = {name: keys.load_private(sitekeys.private(name)) for name in [*SITES, "Paris", "Corte"]}
PARIS_KEYS = [keys.load_private(sitekeys.private(f"Paris-{i}")) for i in range(3)]
"""Keys endorsed for Paris over time: the first is its key at the start; none is revoked."""
VERSIONS = st.one_of(st.integers(0, 2**53 - 1), st.integers(2**53, 2**64), st.integers(-5, -1))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


def signed_entry(
    key: keys.Ed25519PrivateKey,
    site: str,
    version: int,
    *,
    authority: keys.Ed25519PrivateKey = AUTHORITY,
    previous: keys.Ed25519PrivateKey | None = None,
) -> dict[str, Any]:
    """An entry signed by ``key``, whatever its version (a peer may send anything)."""
    cert = model.endorse(authority, site, key.public_key(), expires=time.time() + 3600)
    handover = ""
    if previous is not None:
        body = model.handover_body(site, keys.public_text(key.public_key()))
        handover = base64.b64encode(previous.sign(model.canonical(body))).decode()
    unsigned = model.Entry(
        site, f"http://{site}.{version}", (), version, "up", cert, "", "", handover
    )
    signature = base64.b64encode(key.sign(model.canonical(unsigned.body()))).decode()
    return {**unsigned.body(), "signature": signature}


class DirectoryMerge(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        config = DirectoryConfig(
            Path("/nonexistent"), "http://corte", Path("/nonexistent"),
            (AUTHORITY.public_key(),), max_sites=MAX_SITES,
        )  # fmt: skip
        self.directory = Directory("Corte", KEYS["Corte"], config, ["image"])
        self.owner = 0  # index in PARIS_KEYS of the key Paris holds
        self.version = 0

    def offer(self, *entries: dict[str, Any]) -> None:
        self.directory.take_now({"entries": list(entries)}, "a peer")

    @initialize()
    def paris_is_known(self) -> None:
        self.offer(signed_entry(PARIS_KEYS[0], "Paris", 1))
        self.version = 1

    @rule(version=VERSIONS)
    def paris_publishes(self, version: int) -> None:
        self.offer(signed_entry(PARIS_KEYS[self.owner], "Paris", version))
        if self.version < version < 2**53:
            self.version = version

    @rule(version=VERSIONS, key=st.integers(0, len(PARIS_KEYS) - 1))
    def another_endorsed_key_publishes(self, version: int, key: int) -> None:
        if key != self.owner:  # an old, rotated but never revoked key; or one not yet used
            self.offer(signed_entry(PARIS_KEYS[key], "Paris", version))

    @rule(version=VERSIONS, key=st.integers(0, len(PARIS_KEYS) - 1))
    def a_handover_the_holder_did_not_sign(self, version: int, key: int) -> None:
        signer = PARIS_KEYS[(self.owner + 1) % len(PARIS_KEYS)]
        if key != self.owner:
            self.offer(signed_entry(PARIS_KEYS[key], "Paris", version, previous=signer))

    @rule(version=st.integers(0, 2**53 - 1))
    def paris_rotates(self, version: int) -> None:
        if self.owner + 1 < len(PARIS_KEYS):
            new, old = PARIS_KEYS[self.owner + 1], PARIS_KEYS[self.owner]
            self.offer(signed_entry(new, "Paris", version, previous=old))
            self.owner, self.version = self.owner + 1, version

    @rule(site=st.sampled_from(SITES), version=VERSIONS, rogue=st.booleans())
    def a_site_joins(self, site: str, version: int, rogue: bool) -> None:
        authority = ROGUE_AUTHORITY if rogue else AUTHORITY
        self.offer(signed_entry(KEYS[site], site, version, authority=authority))

    @rule(site=st.sampled_from(SITES))
    def an_authority_revokes(self, site: str) -> None:
        revocation = model.revoke(AUTHORITY, site, KEYS[site].public_key())
        self.directory.take_now({"revocations": [revocation.to_json()]}, "an authority")

    @rule(doc=JSON)
    def garbage(self, doc: Any) -> None:
        self.directory.take_now(doc if isinstance(doc, dict) else {"entries": doc}, "a peer")

    @invariant()
    def paris_is_held_by_its_key_at_its_highest_version(self) -> None:
        held = self.directory.entries["Paris"]
        assert held.endorsement.public_key == keys.public_text(PARIS_KEYS[self.owner].public_key())
        assert held.version == self.version

    @invariant()
    def memory_is_bounded(self) -> None:
        directory = self.directory
        assert len(directory.entries) <= MAX_SITES
        assert len(directory.revocations) <= MAX_SITES
        assert len(directory._endorsed) <= 2 * MAX_SITES + 1
        assert all(0 <= e.version < 2**53 for e in directory.entries.values())


DirectoryMerge.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDirectoryMerge = DirectoryMerge.TestCase


CHAIN = [keys.load_private(sitekeys.private(f"Lyon-{i}")) for i in range(4)]
"""Lyon's keys in rotation order; none revoked, so every old one can still sign."""


def _sync(a: Directory, b: Directory) -> None:
    """One format-2 push-pull between ``a`` and ``b``, the pure part of ``sync_with``."""
    theirs, keys_ = model.digest(b.entries), b.rotations()
    push = model.wanted_by(theirs, a.entries, keys_, a.rotations())
    b.take_now({"entries": [e.to_json() for e in push]}, "a")
    back = model.wanted_by(model.digest(a.entries), b.entries, a.rotations(), b.rotations())
    a.take_now({"entries": [e.to_json() for e in back]}, "b")


class RotationGossip(RuleBasedStateMachine):
    """Two directories, Lyon rotating along ``CHAIN`` at any versions (lower ones too) while
    its old keys publish what they like: gossip never moves either directory back along the
    chain, and one sync brings them to the same key when they are one rotation apart and the
    side ahead still holds that rotation's handover (B9).
    Two apart, a rotation's handover was never seen by one side: revoking the old key is
    the way (docs/security.md)."""

    def __init__(self) -> None:
        super().__init__()
        self.sides = []
        for name in ("Corte", "Paris"):
            config = DirectoryConfig(
                Path("/nonexistent"), f"http://{name}", Path("/nonexistent"),
                (AUTHORITY.public_key(),), max_sites=MAX_SITES,
            )  # fmt: skip
            self.sides.append(Directory(name, KEYS[name], config, ["image"]))
        self.owner = 0
        self.held = [0, 0]

    def index(self, side: int) -> int:
        held = self.sides[side].entries["Lyon"].endorsement.public_key
        return [keys.public_text(k.public_key()) for k in CHAIN].index(held)

    @initialize()
    def lyon_is_known(self) -> None:
        for side in self.sides:
            side.take_now({"entries": [signed_entry(CHAIN[0], "Lyon", 1)]}, "Lyon")

    @rule(version=st.integers(0, 2**53 - 1), side=st.integers(0, 1))
    def lyon_rotates_at_one_side(self, version: int, side: int) -> None:
        if self.owner + 1 < len(CHAIN):
            self.owner += 1
            new, old = CHAIN[self.owner], CHAIN[self.owner - 1]
            entry = signed_entry(new, "Lyon", version, previous=old)
            self.sides[side].take_now({"entries": [entry]}, "Lyon")

    @rule(version=st.integers(0, 2**53 - 1), key=st.integers(0, len(CHAIN) - 1),
          side=st.integers(0, 1), handover=st.booleans())  # fmt: skip
    def an_old_key_publishes(self, version: int, key: int, side: int, handover: bool) -> None:
        if key < self.owner:  # with the (replayed) handover of its own rotation, or none
            previous = CHAIN[key - 1] if handover and key > 0 else None
            entry = signed_entry(CHAIN[key], "Lyon", version, previous=previous)
            self.sides[side].take_now({"entries": [entry]}, "an old key")

    @rule(first=st.integers(0, 1))
    def they_sync(self, first: int) -> None:
        apart = abs(self.index(0) - self.index(1))
        ahead = 0 if self.index(0) > self.index(1) else 1
        spreading = bool(self.sides[ahead].entries["Lyon"].handover)
        _sync(self.sides[first], self.sides[1 - first])
        # A rotation one side missed entirely needs the old key revoked; and a rotation whose
        # handover the side ahead no longer holds (a later entry of the new key without it)
        # has stopped spreading: hence previous_key_file kept until it has spread.
        if apart == 0 or (apart == 1 and spreading):
            assert self.index(0) == self.index(1)

    @invariant()
    def never_back_along_the_chain(self) -> None:
        for side in (0, 1):
            if "Lyon" in self.sides[side].entries:
                now = self.index(side)
                assert now >= self.held[side]
                self.held[side] = now


RotationGossip.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRotationGossip = RotationGossip.TestCase
