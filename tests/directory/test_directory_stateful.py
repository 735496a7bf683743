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
