"""The signed site directory: what a site says about itself, who vouches for it. Pure.

An **endorsement** binds a site's name to its public key until a date; a directory
**authority** (a key the operators of the edge agree on, ``[directory] authorities``) signs
it, once, when the site joins. An **entry** is what the site then says about itself -- where
its proxy is, its services, whether it is up or has left -- with a version that grows, signed
with the endorsed key. A receiver admits an entry only when both signatures verify against an
authority it trusts, the endorsement is still valid and not revoked; the newer version wins,
but only under the key the receiver holds for that site (:func:`succeeds`): another key,
even one endorsed earlier and never revoked, takes a site's entry over only with a
**handover** that the current key signed (``[directory] previous_key_file`` at rotation).

    >>> from edgescope.proxy.keys import generate
    >>> authority, paris = generate(), generate()
    >>> cert = endorse(authority, "Paris", paris.public_key(), expires=2e9)
    >>> entry = advertise(paris, cert, "https://10.66.0.1:20191", ["compute"], version=1)
    >>> admit(entry, [authority.public_key()], now=1e9).site
    'Paris'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, MutableSet, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature

from edgescope.errors import EdgescopeError
from edgescope.proxy.config import is_site_name
from edgescope.proxy.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    load_public,
    public_text,
)

MAX_ENTRY_BYTES = 4096
STATES = ("up", "left")
MAX_VERSION = 2**53
"""Versions are integers below it (exact in every JSON reader)."""


class NotAdmitted(EdgescopeError, ValueError):
    """An entry, endorsement or revocation that is not admitted, and why (a verdict on data,
    not a refused request: that is :class:`~edgescope.errors.Refused`)."""


@dataclass(frozen=True, slots=True)
class Endorsement:
    site: str
    public_key: str
    expires: float
    authority: str
    """The key id of the authority that signed it."""
    signature: str

    def body(self) -> dict[str, Any]:
        return {"site": self.site, "public_key": self.public_key, "expires": self.expires,
                "authority": self.authority}  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}


@dataclass(frozen=True, slots=True)
class Entry:
    """One site's current word about itself."""

    site: str
    url: str
    services: tuple[str, ...]
    version: int
    state: str
    endorsement: Endorsement
    region: str = ""
    signature: str = field(default="", compare=False)
    handover: str = ""
    """The previous key's signature over :func:`handover_body` (a key rotation), or ''."""

    def body(self) -> dict[str, Any]:
        body = {
            "site": self.site,
            "url": self.url,
            "services": list(self.services),
            "version": self.version,
            "state": self.state,
            "region": self.region,
            "endorsement": self.endorsement.to_json(),
        }
        return {**body, "handover": self.handover} if self.handover else body

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}

    @property
    def public_key(self) -> Ed25519PublicKey:
        return load_public(self.endorsement.public_key)


@dataclass(frozen=True, slots=True)
class Revocation:
    """An authority's word that a site's key is no longer to be trusted."""

    site: str
    key: str
    """The revoked key's id."""
    authority: str
    signature: str

    def body(self) -> dict[str, Any]:
        return {"revoke": self.site, "key": self.key, "authority": self.authority}

    def to_json(self) -> dict[str, Any]:
        return {**self.body(), "signature": self.signature}


def canonical(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False).encode()


def _sign(key: Ed25519PrivateKey, doc: Mapping[str, Any]) -> str:
    return base64.b64encode(key.sign(canonical(doc))).decode()


def _verify(key: Ed25519PublicKey, signature: str, doc: Mapping[str, Any], what: str) -> None:
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        raise NotAdmitted(f"{what}: the signature does not verify") from None


def endorse(
    authority: Ed25519PrivateKey, site: str, site_key: Ed25519PublicKey, *, expires: float
) -> Endorsement:
    unsigned = Endorsement(site, public_text(site_key), expires, key_id(authority.public_key()), "")
    return Endorsement(**{**unsigned.body(), "signature": _sign(authority, unsigned.body())})


def advertise(
    key: Ed25519PrivateKey,
    endorsement: Endorsement,
    url: str,
    services: Sequence[str],
    *,
    version: int,
    state: str = "up",
    region: str = "",
    previous: Ed25519PrivateKey | None = None,
) -> Entry:
    """This site's entry; ``previous``: the key it rotates from, which hands the site over."""
    if not 0 <= version < MAX_VERSION:
        raise NotAdmitted(f"{endorsement.site}: version {version} is not below 2^53")
    handover = ""
    if previous is not None and public_text(previous.public_key()) != endorsement.public_key:
        handover = _sign(previous, handover_body(endorsement.site, endorsement.public_key))
    entry = Entry(
        endorsement.site, url, tuple(services), version, state, endorsement, region,
        handover=handover,
    )  # fmt: skip
    return Entry(**{**_fields(entry), "signature": _sign(key, entry.body())})


def handover_body(site: str, new_key: str) -> dict[str, Any]:
    """What a site's previous key signs to hand the site over to ``new_key``."""
    return {"handover": site, "to": new_key}


def succeeds(entry: Entry, current: Entry | None) -> bool:
    """Whether ``entry`` (admitted) replaces ``current``: under the same key, a higher
    version; under another key, only with a handover the current key signed (whatever the
    version: an old key's high version must not outlive the rotation). Raises NotAdmitted for
    another key without a valid handover. Two keys handed over to each other (a site rotated
    back to a key it had, not revoked) are a cycle: the higher version wins, or gossip would
    swap them for ever."""
    if current is None:
        return True
    if entry.endorsement.public_key == current.endorsement.public_key:
        return entry.version > current.version
    if not entry.handover:
        raise NotAdmitted(
            f"{entry.site}: signed with another key than the one this site holds for it, "
            "and no handover from that key"
        )
    body = handover_body(entry.site, entry.endorsement.public_key)
    _verify(current.public_key, entry.handover, body, f"{entry.site}'s handover")
    if current.handover and entry.version <= current.version:
        back = handover_body(current.site, current.endorsement.public_key)
        try:
            _verify(entry.public_key, current.handover, back, "")
        except NotAdmitted:
            return True  # no cycle: the rotation wins whatever its version
        raise NotAdmitted(
            f"{entry.site}: an older rotation (version {entry.version}) to a key this site "
            "was handed back from"
        )
    return True


def revoke(authority: Ed25519PrivateKey, site: str, site_key: Ed25519PublicKey) -> Revocation:
    unsigned = Revocation(site, key_id(site_key), key_id(authority.public_key()), "")
    signature = _sign(authority, unsigned.body())
    return Revocation(unsigned.site, unsigned.key, unsigned.authority, signature)


def admit(
    entry: Entry,
    authorities: Sequence[Ed25519PublicKey],
    *,
    now: float,
    revoked: frozenset[tuple[str, str]] = frozenset(),
    verified: MutableSet[Endorsement] | None = None,
) -> Entry:
    """``entry`` when it may be trusted; raises :class:`NotAdmitted` saying why not.

    ``verified`` keeps the endorsements whose signature already verified (a site's next
    versions carry the same one): each is checked once per receiver, not once per version.
    """
    cert = entry.endorsement
    trusted = {key_id(k): k for k in authorities}
    authority = trusted.get(cert.authority)
    if authority is None:
        raise NotAdmitted(f"{entry.site}: endorsed by an authority this site does not trust")
    if verified is None or cert not in verified:
        _verify(authority, cert.signature, cert.body(), f"{entry.site}'s endorsement")
        if verified is not None:
            verified.add(cert)
    if cert.site != entry.site:
        raise NotAdmitted(f"{entry.site}: the endorsement names {cert.site}")
    if cert.expires < now:
        raise NotAdmitted(f"{entry.site}: its endorsement expired")
    site_key = load_public(cert.public_key)
    if (entry.site, key_id(site_key)) in revoked:
        raise NotAdmitted(f"{entry.site}: its key was revoked")
    _verify(site_key, entry.signature, entry.body(), f"{entry.site}'s entry")
    if entry.state not in STATES:
        raise NotAdmitted(f"{entry.site}: unknown state {entry.state!r}")
    return entry


def admit_revocation(revocation: Revocation, authorities: Sequence[Ed25519PublicKey]) -> Revocation:
    trusted = {key_id(k): k for k in authorities}
    authority = trusted.get(revocation.authority)
    if authority is None:
        raise NotAdmitted(f"revocation of {revocation.site}: from an authority not trusted here")
    _verify(authority, revocation.signature, revocation.body(), "revocation")
    return revocation


def newer(entry: Entry, current: Entry | None) -> bool:
    """Worth checking: a higher version, or another key (a rotation, :func:`succeeds`)."""
    return (
        current is None
        or entry.version > current.version
        or entry.endorsement.public_key != current.endorsement.public_key
    )


def digest(entries: Mapping[str, Entry]) -> dict[str, int]:
    return {site: entry.version for site, entry in entries.items()}


MAX_KEY_ID = 64
"""Longest key id a peer's digest may give (ours are 16 hex digits)."""


def rotations(entries: Mapping[str, Entry]) -> dict[str, str]:
    """The key id of each entry that carries a handover (a rotation still spreading): the
    ``keys`` of a digest (sync format 2). Only such an entry can move a peer that holds
    another key for its site, so only these need comparing by key."""
    return {site: key_id(e.public_key) for site, e in entries.items() if e.handover}


def fingerprint(
    versions: Mapping[str, int],
    revoked: Iterable[tuple[str, str]] = (),
    keys: Mapping[str, str] | None = None,
) -> str:
    """One hash of a whole directory's versions and revocations (and, with ``keys``, its
    rotations: format 2): equal means nothing to exchange."""
    doc: dict[str, Any] = {"versions": dict(versions),
                           "revoked": sorted(f"{s}/{k}" for s, k in revoked)}  # fmt: skip
    if keys is not None:
        doc["keys"] = dict(keys)
    return hashlib.sha256(canonical(doc)).hexdigest()


def wanted_by(
    theirs: Mapping[str, int],
    entries: Mapping[str, Entry],
    their_keys: Mapping[str, str] | None = None,
    our_keys: Mapping[str, str] | None = None,
) -> list[Entry]:
    """The entries a peer with versions ``theirs`` lacks or has older; with its ``keys``
    (format 2) also each rotation of ours (``our_keys``: :func:`rotations`) it does not hold,
    whatever its version. Which entries are *sent* only: the receiver admits by
    :func:`succeeds`."""
    ours = our_keys or {}
    return [
        e for site, e in entries.items()
        if theirs.get(site, -1) < e.version
        or (their_keys is not None and site in ours and their_keys.get(site) != ours[site])
    ]  # fmt: skip


def digest_from_json(versions: Any, keys: Any) -> tuple[dict[str, int], dict[str, str] | None]:
    """A peer's digest: ``versions`` (site: version) and, from a peer of format 2, ``keys``
    (site: key id of its rotations; None from a peer of format 1). Raises
    :class:`NotAdmitted` on anything else."""
    if not isinstance(versions, dict):
        raise NotAdmitted("'versions' is not an object of site: version")
    for version in versions.values():
        if (
            isinstance(version, bool)
            or not isinstance(version, int)
            or not 0 <= version < MAX_VERSION
        ):
            raise NotAdmitted(f"'versions': {str(version)[:30]} is not an integer from 0 to 2^53")
    if keys is None:
        return versions, None
    if not isinstance(keys, dict):
        raise NotAdmitted("'keys' is not an object of site: key id")
    for key in keys.values():
        if not isinstance(key, str) or len(key) > MAX_KEY_ID:
            raise NotAdmitted(
                f"'keys': {str(key)[:30]} is not a key id (at most {MAX_KEY_ID} characters)"
            )
    return versions, keys


def _reject_constant(name: str) -> Any:
    raise NotAdmitted(f"non-finite number {name} (JSON has none)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotAdmitted(f"number {text[:20]} is out of range")
    return value


def loads(data: bytes | str) -> Any:
    """A directory document (offer, answer, file): JSON with finite numbers only. Raises
    :class:`NotAdmitted` on a non-finite number, ValueError on what is not JSON (or is nested
    deeper than the parser's recursion allows)."""
    try:
        return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _version(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_VERSION:
        raise NotAdmitted(f"version {str(value)[:30]} is not an integer from 0 to 2^53")
    return value


def _expiry(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise NotAdmitted(f"endorsement expiry {str(value)[:30]} is not a finite unix time")
    return float(value)


def entry_from_json(doc: Any) -> Entry:
    """Raises :class:`NotAdmitted` on a malformed entry."""
    try:
        if len(canonical(doc)) > MAX_ENTRY_BYTES:
            raise NotAdmitted("an entry is over 4 KiB")
        cert = doc["endorsement"]
        endorsement = Endorsement(
            str(cert["site"]),
            str(cert["public_key"]),
            _expiry(cert["expires"]),
            str(cert["authority"]),
            str(cert["signature"]),
        )
        entry = Entry(
            str(doc["site"]),
            str(doc["url"]),
            tuple(str(s) for s in doc["services"]),
            _version(doc["version"]),
            str(doc["state"]),
            endorsement,
            str(doc.get("region", "")),
            str(doc["signature"]),
            str(doc.get("handover", "")),
        )
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, NotAdmitted):
            raise
        raise NotAdmitted(f"malformed entry: {exc}") from None
    if not is_site_name(entry.site):  # it goes into headers, scopes and the console
        raise NotAdmitted(f"{entry.site[:64]!r} is not a site name (letters, digits, '_', '-')")
    return entry


def revocation_from_json(doc: Any) -> Revocation:
    try:
        return Revocation(
            str(doc["revoke"]), str(doc["key"]), str(doc["authority"]), str(doc["signature"])
        )
    except (KeyError, TypeError) as exc:
        raise NotAdmitted(f"malformed revocation: {exc}") from None


def _fields(entry: Entry) -> dict[str, Any]:
    return {
        "site": entry.site,
        "url": entry.url,
        "services": entry.services,
        "version": entry.version,
        "state": entry.state,
        "endorsement": entry.endorsement,
        "region": entry.region,
        "handover": entry.handover,
    }
