"""The proxy-to-proxy wire protocol: every ``X-Edgescope-*`` header, reserved path and marker.

This module is the one place that names them; the rest of the code imports the names.
The hop marker is a set of signed headers that says "peer site P sent this, hop N: serve it
here". Signing is pure: the key and the clock are arguments.

Request headers, set by a proxy on a hop to a peer proxy (a client's are dropped at ingress):

    X-Edgescope-Protocol   protocol version of the sender (checked: a mismatch is a 400)
    X-Edgescope-Hop        hops made so far      X-Edgescope-Peer    sending site
    X-Edgescope-Timestamp  unix seconds          X-Edgescope-Signature  HMAC-SHA256, hex
    X-Edgescope-Token-Site the identity site that issued the call's X-Auth-Token
    X-Edgescope-Replica, -Hlc, -Idempotency-Key   a replicated write (edgescope.replicas)

Response headers, set by a proxy for its client:

    X-Edgescope-Sites      every site's outcome: ``Paris=200, Corte=unreachable``
    X-Edgescope-Error      title of an error the proxy itself answered
    X-Edgescope-Pending    sites where an eventual write is queued
    X-Edgescope-Replica-Set  the handle of the replica set a create made
    X-Edgescope-Replayed   the answer is the remembered one of an already applied write

    >>> path = "/edgescope/svc/image/v2/images"
    >>> headers = sign_hop(b"k" * 16, "GET", path, "Paris", 1, now=100.0)
    >>> verify_hop(headers, "GET", path, b"k" * 16, now=101.0, window=30)
    HopMarker(peer='Paris', hops=1)
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

from edgescope.errors import EdgescopeError

PROTOCOL_VERSION = 1
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

INTERNAL_PREFIX = "x-edgescope-"
VERSION_HEADER = "X-Edgescope-Protocol"
HOP_HEADER = "X-Edgescope-Hop"
PEER_HEADER = "X-Edgescope-Peer"
TIMESTAMP_HEADER = "X-Edgescope-Timestamp"
SIGNATURE_HEADER = "X-Edgescope-Signature"
HOP_HEADERS = (VERSION_HEADER, HOP_HEADER, PEER_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER)
TOKEN_SITE_HEADER = "X-Edgescope-Token-Site"
REPLICA_HEADER = "X-Edgescope-Replica"
HLC_HEADER = "X-Edgescope-Hlc"
IDEMPOTENCY_KEY_HEADER = "X-Edgescope-Idempotency-Key"

SITES_HEADER = "X-Edgescope-Sites"
ERROR_HEADER = "X-Edgescope-Error"
PENDING_HEADER = "X-Edgescope-Pending"
SET_HEADER = "X-Edgescope-Replica-Set"
REPLAYED_HEADER = "X-Edgescope-Replayed"


class ForgedHop(EdgescopeError):
    """Hop headers are present but not validly signed by a peer (-> 403)."""


class ProtocolMismatch(EdgescopeError):
    """A peer speaks a protocol version this proxy does not (-> 400, naming both)."""


@dataclass(frozen=True, slots=True)
class HopMarker:
    """A verified marker: which peer sent the call and how many hops it has made."""

    peer: str
    hops: int


def strip_internal(headers: MutableMapping[str, str]) -> None:
    """Drop every ``X-Edgescope-*`` header (a client's, or ours before a backend)."""
    for name in {n for n in headers if n.lower().startswith(INTERNAL_PREFIX)}:
        if name in headers:
            del headers[name]  # a multidict deletes every value of the name


def signature(
    secret: bytes, version: int, method: str, path: str, timestamp: str, peer: str, hops: int
) -> str:
    message = f"{version}\n{method.upper()}\n{path}\n{timestamp}\n{peer}\n{hops}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def _check_unversioned(headers: Mapping[str, str], method: str, path: str, secret: bytes) -> None:
    """A complete marker with no version: a peer from before versions if its signature
    verifies the old way (-> ProtocolMismatch), else a forgery (-> ForgedHop)."""
    fields = (method.upper(), path, headers[TIMESTAMP_HEADER], headers[PEER_HEADER])
    message = "\n".join((*fields, headers[HOP_HEADER])).encode()
    expected = hmac.new(secret, message, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, headers[SIGNATURE_HEADER].strip().lower()):
        raise ForgedHop("hop marker signature does not verify: only peer proxies may send it")
    raise ProtocolMismatch(
        "the peer speaks edgescope protocol 0 (no version header); this proxy speaks "
        f"{', '.join(str(v) for v in sorted(SUPPORTED_VERSIONS))}: upgrade the older site"
    )


def sign_hop(
    secret: bytes, method: str, path: str, peer: str, hops: int, *, now: float
) -> dict[str, str]:
    """The hop headers for a request this site (``peer``) sends to another proxy."""
    timestamp = f"{now:.3f}"
    return {
        VERSION_HEADER: str(PROTOCOL_VERSION),
        HOP_HEADER: str(hops),
        PEER_HEADER: peer,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, PROTOCOL_VERSION, method, path, timestamp, peer, hops),
    }


def verify_hop(
    headers: Mapping[str, str], method: str, path: str, secret: bytes, *, now: float, window: float
) -> HopMarker | None:
    """None when the request has no hop headers; the marker when valid.

    Raises :class:`ProtocolMismatch` for a version this proxy does not speak, else
    :class:`ForgedHop` for anything that does not verify.
    """
    present = [name for name in HOP_HEADERS if name in headers]
    if not present:
        return None
    version_text = headers.get(VERSION_HEADER)
    if version_text is None and len(present) == len(HOP_HEADERS) - 1:
        _check_unversioned(headers, method, path, secret)
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
    assert version_text is not None
    hop_text, peer, timestamp = headers[HOP_HEADER], headers[PEER_HEADER], headers[TIMESTAMP_HEADER]
    if not hop_text.isdigit() or len(hop_text) > 3:
        raise ForgedHop(f"{HOP_HEADER} must be a small integer")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise ForgedHop(f"{TIMESTAMP_HEADER} is not a unix time") from None
    if not math.isfinite(sent_at):
        raise ForgedHop(f"{TIMESTAMP_HEADER} is not a finite unix time")
    expected = signature(secret, int(version_text), method, path, timestamp, peer, int(hop_text))
    if not hmac.compare_digest(expected, headers[SIGNATURE_HEADER].strip().lower()):
        raise ForgedHop(
            "hop marker signature does not verify: only peer proxies sharing the "
            "deployment secret may send it"
        )
    if abs(now - sent_at) > window:
        raise ForgedHop(
            f"hop marker is {abs(now - sent_at):.0f} s old; the window is {window:.0f} s"
        )
    return HopMarker(peer=peer, hops=int(hop_text))
