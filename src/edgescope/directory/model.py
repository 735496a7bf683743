"""The signed site directory: what a site says about itself, who vouches for it. Pure.

An **endorsement** binds a site's name to its public key until a date; a directory
**authority** (a key the operators of the edge agree on, ``[directory] authorities``) signs
it, once, when the site joins. An **entry** is what the site then says about itself -- where
its proxy is, its services, whether it is up or has left -- with a version that grows, signed
with the endorsed key. A receiver admits an entry only when both signatures verify against an
authority it trusts, the endorsement is still valid and not revoked; the newer version wins.

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
from collections.abc import Iterable, Mapping, MutableSet, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature

from edgescope.proxy.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    key_id,
    load_public,
    public_text,
)

MAX_ENTRY_BYTES = 4096
STATES = ("up", "left")


class Refused(ValueError):
    """An entry, endorsement or revocation that is not admitted, and why."""


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

    def body(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "url": self.url,
            "services": list(self.services),
            "version": self.version,
            "state": self.state,
            "region": self.region,
            "endorsement": self.endorsement.to_json(),
        }

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
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _sign(key: Ed25519PrivateKey, doc: Mapping[str, Any]) -> str:
    return base64.b64encode(key.sign(canonical(doc))).decode()


def _verify(key: Ed25519PublicKey, signature: str, doc: Mapping[str, Any], what: str) -> None:
    try:
        key.verify(base64.b64decode(signature, validate=True), canonical(doc))
    except (InvalidSignature, binascii.Error, ValueError):
        raise Refused(f"{what}: the signature does not verify") from None


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
) -> Entry:
    entry = Entry(endorsement.site, url, tuple(services), version, state, endorsement, region)
    return Entry(**{**_fields(entry), "signature": _sign(key, entry.body())})


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
    """``entry`` when it may be trusted; raises :class:`Refused` saying why not.

    ``verified`` keeps the endorsements whose signature already verified (a site's next
    versions carry the same one): each is checked once per receiver, not once per version.
    """
    cert = entry.endorsement
    trusted = {key_id(k): k for k in authorities}
    authority = trusted.get(cert.authority)
    if authority is None:
        raise Refused(f"{entry.site}: endorsed by an authority this site does not trust")
    if verified is None or cert not in verified:
        _verify(authority, cert.signature, cert.body(), f"{entry.site}'s endorsement")
        if verified is not None:
            verified.add(cert)
    if cert.site != entry.site:
        raise Refused(f"{entry.site}: the endorsement names {cert.site}")
    if cert.expires < now:
        raise Refused(f"{entry.site}: its endorsement expired")
    site_key = load_public(cert.public_key)
    if (entry.site, key_id(site_key)) in revoked:
        raise Refused(f"{entry.site}: its key was revoked")
    _verify(site_key, entry.signature, entry.body(), f"{entry.site}'s entry")
    if entry.state not in STATES:
        raise Refused(f"{entry.site}: unknown state {entry.state!r}")
    return entry


def admit_revocation(revocation: Revocation, authorities: Sequence[Ed25519PublicKey]) -> Revocation:
    trusted = {key_id(k): k for k in authorities}
    authority = trusted.get(revocation.authority)
    if authority is None:
        raise Refused(f"revocation of {revocation.site}: from an authority not trusted here")
    _verify(authority, revocation.signature, revocation.body(), "revocation")
    return revocation


def newer(entry: Entry, current: Entry | None) -> bool:
    """The merge rule: a higher version wins (a new key, with a new endorsement, too)."""
    return current is None or entry.version > current.version


def digest(entries: Mapping[str, Entry]) -> dict[str, int]:
    return {site: entry.version for site, entry in entries.items()}


def fingerprint(versions: Mapping[str, int], revoked: Iterable[tuple[str, str]] = ()) -> str:
    """One hash of a whole directory's versions and revocations: equal means nothing to
    exchange."""
    doc = {"versions": dict(versions), "revoked": sorted(f"{s}/{k}" for s, k in revoked)}
    return hashlib.sha256(canonical(doc)).hexdigest()


def wanted_by(theirs: Mapping[str, int], entries: Mapping[str, Entry]) -> list[Entry]:
    """The entries a peer with versions ``theirs`` lacks or has older."""
    return [e for site, e in entries.items() if theirs.get(site, -1) < e.version]


def entry_from_json(doc: Any) -> Entry:
    """Raises :class:`Refused` on a malformed entry."""
    try:
        if len(canonical(doc)) > MAX_ENTRY_BYTES:
            raise Refused("an entry is over 4 KiB")
        cert = doc["endorsement"]
        endorsement = Endorsement(
            str(cert["site"]),
            str(cert["public_key"]),
            float(cert["expires"]),
            str(cert["authority"]),
            str(cert["signature"]),
        )
        return Entry(
            str(doc["site"]),
            str(doc["url"]),
            tuple(str(s) for s in doc["services"]),
            int(doc["version"]),
            str(doc["state"]),
            endorsement,
            str(doc.get("region", "")),
            str(doc["signature"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, Refused):
            raise
        raise Refused(f"malformed entry: {exc}") from None


def revocation_from_json(doc: Any) -> Revocation:
    try:
        return Revocation(
            str(doc["revoke"]), str(doc["key"]), str(doc["authority"]), str(doc["signature"])
        )
    except (KeyError, TypeError) as exc:
        raise Refused(f"malformed revocation: {exc}") from None


def _fields(entry: Entry) -> dict[str, Any]:
    return {
        "site": entry.site,
        "url": entry.url,
        "services": entry.services,
        "version": entry.version,
        "state": entry.state,
        "endorsement": entry.endorsement,
        "region": entry.region,
    }
