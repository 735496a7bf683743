"""The proxy-to-proxy wire protocol: every ``X-Edgescope-*`` header, reserved path and marker.

This module is the one place that names them; the rest of the code imports the names.
The hop marker is a set of headers signed with the sending site's Ed25519 key that says
"peer site P sent this to site D, hop N: serve it here". Signing is pure: the key and the
clock are arguments.

Request headers, set by a proxy on a hop to a peer proxy (a client's are dropped at ingress):

    X-Edgescope-Protocol   protocol version of the sender (checked: a mismatch is a 400)
    X-Edgescope-Hop        hops made so far
    X-Edgescope-Peer       sending site
    X-Edgescope-Timestamp  unix seconds
    X-Edgescope-Key-Id     which key of the sender
    X-Edgescope-Signature  Ed25519 over the root of a batch of hop_message()s, base64
    X-Edgescope-Proof      this hop's place in that batch (index, sibling digests; batchsign)
    X-Edgescope-Content-Sha256  the digest of a body sent whole (record pushes)
    X-Edgescope-Token-Site the identity site that issued the call's X-Auth-Token
    X-Edgescope-Replica    a replicated write (edgescope.replicas): its replica set's handle
    X-Edgescope-Hlc        its hybrid logical clock stamp (last writer wins)
    X-Edgescope-Idempotency-Key  the write's key: applied once, its answer replayed
    X-Edgescope-Undo-Of    the key of a failed strict create to undo there, whatever became of it
    X-Edgescope-Undo-Name  that create's name, percent-encoded (to find what it made in doubt)

Response headers, set by a proxy for its client:

    X-Edgescope-Sites      every site's outcome: ``Paris=200, Corte=unreachable``
    X-Edgescope-Error      title of an error the proxy itself answered
    X-Edgescope-Pending    sites where an eventual write is queued
    X-Edgescope-Partial    sites a partial read left out, and why: ``Corte="connect timeout"``
    X-Edgescope-Replica-Set  the handle of the replica set a create made
    X-Edgescope-Replayed   the answer is the remembered one of an already applied write

Set by the site's HAProxy (``deploy/haproxy.py``), not by a proxy:

    X-Edgescope-Bypassed   no edgescope proxy of the site was up: served locally, unscoped

    >>> from edgescope.proxy.keys import generate
    >>> paris = generate()
    >>> path = "/edgescope/svc/image/v2/images?limit=5"
    >>> headers = sign_hop(paris, "GET", path, "Paris", "Corte", 1, now=100.0)
    >>> keys = {"Paris": [paris.public_key()]}
    >>> verify_hop(headers, "GET", path, "Corte", lambda p: keys.get(p, []), now=101.0, window=30)
    HopMarker(peer='Paris', hops=1, content_digest=None)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass

from edgescope.errors import EdgescopeError, ErrorCode
from edgescope.proxy import batchsign
from edgescope.proxy.keys import Ed25519PrivateKey, Ed25519PublicKey, cached_key_id

PROTOCOL_VERSION = 2
"""Bumped when a hop's meaning changes; a receiver refuses versions it does not speak."""
SUPPORTED_VERSIONS = frozenset({PROTOCOL_VERSION})

RESERVED_PREFIX = "/edgescope"
"""Paths under this prefix belong to the proxy itself."""
PEER_PATH = f"{RESERVED_PREFIX}/svc/"
"""``/edgescope/svc/<service-type>/<path>``: a call forwarded by a peer proxy."""
HEALTH_PATH = f"{RESERVED_PREFIX}/health"
STATUS_PATH = f"{RESERVED_PREFIX}/status"
REPLICAS_PATH = f"{RESERVED_PREFIX}/replicas"
REPLICA_SETS_PATH = f"{RESERVED_PREFIX}/replicas/sets"
ADOPT_PATH = f"{RESERVED_PREFIX}/replicas/adopt"
EVENTS_PATH = f"{RESERVED_PREFIX}/events"
"""Calls and state as server-sent events, for an operator's console (edgescope.observe)."""
EVENTS_STATE_PATH = f"{RESERVED_PREFIX}/events/state"
DIRECTORY_PATH = f"{RESERVED_PREFIX}/directory"
DIRECTORY_SYNC_PATH = f"{RESERVED_PREFIX}/directory/sync"
DIRECTORY_REVOKE_PATH = f"{RESERVED_PREFIX}/directory/revoke"
"""An authority's revocations, from anyone (``edgescope directory revoke``): few, small."""
DIRECTORY_DESTINATION = "*"
"""The destination a directory sync is signed for: its sender may know only a URL (a seed);
what it carries (signed entries) is the same for every site."""

INTERNAL_PREFIX = "x-edgescope-"
VERSION_HEADER = "X-Edgescope-Protocol"
HOP_HEADER = "X-Edgescope-Hop"
PEER_HEADER = "X-Edgescope-Peer"
TIMESTAMP_HEADER = "X-Edgescope-Timestamp"
KEY_ID_HEADER = "X-Edgescope-Key-Id"
SIGNATURE_HEADER = "X-Edgescope-Signature"
PROOF_HEADER = "X-Edgescope-Proof"
"""Where the hop sits in the batch its sender signed at once (:mod:`batchsign`)."""
_UNSIGNED = frozenset({SIGNATURE_HEADER.lower(), PROOF_HEADER.lower()})
HOP_HEADERS = (
    VERSION_HEADER,
    HOP_HEADER,
    PEER_HEADER,
    TIMESTAMP_HEADER,
    KEY_ID_HEADER,
    SIGNATURE_HEADER,
    PROOF_HEADER,
)
CONTENT_DIGEST_HEADER = "X-Edgescope-Content-Sha256"
"""Set on a hop whose body is sent whole: its SHA-256 (hex), bound by the signature."""
TOKEN_SITE_HEADER = "X-Edgescope-Token-Site"
REPLICA_HEADER = "X-Edgescope-Replica"
HLC_HEADER = "X-Edgescope-Hlc"
IDEMPOTENCY_KEY_HEADER = "X-Edgescope-Idempotency-Key"
UNDO_OF_HEADER = "X-Edgescope-Undo-Of"
UNDO_NAME_HEADER = "X-Edgescope-Undo-Name"

SITES_HEADER = "X-Edgescope-Sites"
ERROR_HEADER = "X-Edgescope-Error"
PENDING_HEADER = "X-Edgescope-Pending"
PARTIAL_HEADER = "X-Edgescope-Partial"
SET_HEADER = "X-Edgescope-Replica-Set"
REPLAYED_HEADER = "X-Edgescope-Replayed"


def strip_internal_answer(headers: MutableMapping[str, str], *, from_peer: bool) -> None:
    """Remove every ``X-Edgescope-*`` header from an answer a site sent back: only this
    proxy says which sites answered, what is partial or pending. A peer proxy's own error
    keeps its ``X-Edgescope-Error`` (an edgescope error, made by edgescope); a backend's not.

    >>> h = {"X-Edgescope-Partial": "1", "X-Edgescope-Error": "Site Unreachable", "A": "b"}
    >>> strip_internal_answer(h, from_peer=True); h
    {'X-Edgescope-Error': 'Site Unreachable', 'A': 'b'}
    """
    if INTERNAL_PREFIX not in "\n".join(headers).lower():
        return  # the usual case, in one search
    for name in {k for k in headers if k.lower().startswith(INTERNAL_PREFIX)}:
        if name in headers and not (from_peer and name.lower() == ERROR_HEADER.lower()):
            del headers[name]  # a multidict deletes every value of the name


class ForgedHop(EdgescopeError):
    """Hop headers are present but not validly signed by a peer (-> 403)."""

    code = ErrorCode.HOP_FORBIDDEN


class NotTrusted(ForgedHop):
    """A verified peer that this site's trust policy does not allow this request (-> 403)."""


class ProtocolMismatch(EdgescopeError):
    """A peer speaks a protocol version this proxy does not (-> 400, naming both)."""

    code = ErrorCode.PROTOCOL_MISMATCH


@dataclass(frozen=True, slots=True)
class HopMarker:
    """A verified marker: which peer sent the call and how many hops it has made."""

    peer: str
    hops: int
    content_digest: str | None = None
    """The signed SHA-256 of a body sent whole, for a receiver that reads it whole."""


def strip_internal(headers: MutableMapping[str, str]) -> None:
    """Drop every ``X-Edgescope-*`` header (a client's, or ours before a backend)."""
    for name in {n for n in headers if n.lower().startswith(INTERNAL_PREFIX)}:
        if name in headers:
            del headers[name]  # a multidict deletes every value of the name


def hop_message(headers: Mapping[str, str], method: str, target: str, destination: str) -> bytes:
    """What a hop's signature covers: method, path with query, destination site, and every
    ``X-Edgescope-*`` header but the signature (version, hop count, sender, time, key id,
    token site, replica markers, content digest)."""
    internal = sorted(
        (low, value)
        for name, value in headers.items()
        if (low := name.lower()).startswith(INTERNAL_PREFIX) and low not in _UNSIGNED
    )  # each name lower-cased once: this runs on both sides of every hop
    lines = ["edgescope-hop", method.upper(), target, destination]
    lines += [f"{name}:{value}" for name, value in internal]
    return "\n".join(lines).encode()


def content_digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def sign_hop(
    key: Ed25519PrivateKey,
    method: str,
    target: str,
    sender: str,
    destination: str,
    hops: int,
    *,
    now: float,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> dict[str, str]:
    """The hop headers for a request ``sender`` sends to ``destination``'s proxy.

    ``target`` is the path with its query; ``headers`` the request's other headers (its
    ``X-Edgescope-*`` ones are signed too); a ``body`` sent whole is bound by its digest.
    """
    marker = hop_marker(key, sender, hops, now=now, body=body)
    signed = {**dict(headers or {}), **marker}
    message = hop_message(signed, method, target, destination)
    root, [proof] = batchsign.tree([batchsign.leaf(message)])
    signature = base64.b64encode(key.sign(batchsign.signed_root(root))).decode()
    return {**marker, SIGNATURE_HEADER: signature, PROOF_HEADER: proof}


def hop_marker(
    key: Ed25519PrivateKey, sender: str, hops: int, *, now: float, body: bytes | None = None
) -> dict[str, str]:
    """The signed headers of a hop but the signature (which then covers them)."""
    marker = {
        VERSION_HEADER: str(PROTOCOL_VERSION),
        HOP_HEADER: str(hops),
        PEER_HEADER: sender,
        TIMESTAMP_HEADER: f"{now:.3f}",
        KEY_ID_HEADER: cached_key_id(key),
    }
    if body is not None:
        marker[CONTENT_DIGEST_HEADER] = content_digest(body)
    return marker


PublicKeys = Callable[[str], Sequence[Ed25519PublicKey]]
"""A peer's name -> its public keys (two during a rotation; none for a stranger)."""


def verify_hop(
    headers: Mapping[str, str],
    method: str,
    target: str,
    destination: str,
    public_keys: PublicKeys,
    *,
    now: float,
    window: float,
) -> HopMarker | None:
    """None when the request has no hop headers; the marker when valid.

    Raises :class:`ProtocolMismatch` for a version this proxy does not speak, else
    :class:`ForgedHop` for anything that does not verify.
    """
    present = [name for name in HOP_HEADERS if name in headers]
    if not present:
        return None
    version_text = headers.get(VERSION_HEADER)
    if version_text is not None and (
        not version_text.isdigit() or int(version_text) not in SUPPORTED_VERSIONS
    ):
        speaks = ", ".join(str(v) for v in sorted(SUPPORTED_VERSIONS))
        raise ProtocolMismatch(
            f"the peer speaks edgescope protocol {version_text[:10]!r}; this proxy speaks "
            f"{speaks}: upgrade the older site"
        )
    if len(present) != len(HOP_HEADERS):
        missing = ", ".join(n for n in HOP_HEADERS if n not in headers)
        raise ForgedHop(f"incomplete hop marker (missing {missing}): only peer proxies may send it")
    hop_text, peer, timestamp = headers[HOP_HEADER], headers[PEER_HEADER], headers[TIMESTAMP_HEADER]
    if not hop_text.isdigit() or len(hop_text) > 3:
        raise ForgedHop(f"{HOP_HEADER} must be a small integer")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise ForgedHop(f"{TIMESTAMP_HEADER} is not a unix time") from None
    if not math.isfinite(sent_at):
        raise ForgedHop(f"{TIMESTAMP_HEADER} is not a finite unix time")
    keys = {cached_key_id(k): k for k in public_keys(peer)}
    if not keys:
        raise ForgedHop(f"{peer[:64]!r} is not a peer of {destination}")
    key = keys.get(headers[KEY_ID_HEADER])
    if key is None:
        raise ForgedHop(f"{peer} signed with a key {destination} does not know for it")
    try:
        signature = base64.b64decode(headers[SIGNATURE_HEADER], validate=True)
    except (binascii.Error, ValueError):
        signature = b""
    message = hop_message(headers, method, target, destination)
    if not batchsign.check(key, signature, headers[PROOF_HEADER], message):
        raise ForgedHop(f"hop marker signature does not verify with {peer}'s key")
    if abs(now - sent_at) > window:
        raise ForgedHop(
            f"hop marker is {abs(now - sent_at):.0f} s old; the window is {window:.0f} s"
        )
    return HopMarker(peer, int(hop_text), headers.get(CONTENT_DIGEST_HEADER))
