"""Inter-proxy hop markers: HMAC-signed headers that say "a peer proxy sent this; serve it here".

Neighbours: ``server.py`` signs every request it sends to a peer (:func:`sign_hop`) and
verifies every request that carries a marker (:func:`verify_hop`). Pure: the clock and the
secret are arguments.

Headers: ``X-Edgescope-Hop`` (count), ``X-Edgescope-Peer`` (sending site),
``X-Edgescope-Timestamp`` (unix seconds), ``X-Edgescope-Signature`` =
hex HMAC-SHA256(secret, "METHOD\\nPATH\\nTIMESTAMP\\nPEER\\nHOP").

    >>> path = "/edgescope/svc/image/v2/images"
    >>> headers = sign_hop(b"k" * 16, "GET", path, "Paris", 1, now=100.0)
    >>> verify_hop(headers, "GET", path, b"k" * 16, now=101.0, window=30)
    HopMarker(peer='Paris', hops=1)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from edgescope.errors import EdgescopeError

HOP = "X-Edgescope-Hop"
PEER = "X-Edgescope-Peer"
TIMESTAMP = "X-Edgescope-Timestamp"
SIGNATURE = "X-Edgescope-Signature"
HOP_HEADERS = (HOP, PEER, TIMESTAMP, SIGNATURE)


class ForgedHop(EdgescopeError):
    """Hop headers are present but not validly signed by a peer (-> 403)."""


@dataclass(frozen=True, slots=True)
class HopMarker:
    """A verified marker: which peer sent the call and how many hops it has made."""

    peer: str
    hops: int


def signature(secret: bytes, method: str, path: str, timestamp: str, peer: str, hops: int) -> str:
    message = f"{method.upper()}\n{path}\n{timestamp}\n{peer}\n{hops}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_hop(
    secret: bytes, method: str, path: str, peer: str, hops: int, *, now: float
) -> dict[str, str]:
    """The four hop headers for a request this site (``peer``) sends to another proxy."""
    timestamp = f"{now:.3f}"
    return {
        HOP: str(hops),
        PEER: peer,
        TIMESTAMP: timestamp,
        SIGNATURE: signature(secret, method, path, timestamp, peer, hops),
    }


def verify_hop(
    headers: Mapping[str, str], method: str, path: str, secret: bytes, *, now: float, window: float
) -> HopMarker | None:
    """None when the request has no hop headers; the marker when valid; else :class:`ForgedHop`."""
    present = [name for name in HOP_HEADERS if name in headers]
    if not present:
        return None
    if len(present) != len(HOP_HEADERS):
        missing = ", ".join(n for n in HOP_HEADERS if n not in headers)
        raise ForgedHop(f"incomplete hop marker (missing {missing}): only peer proxies may send it")
    hop_text, peer, timestamp = headers[HOP], headers[PEER], headers[TIMESTAMP]
    if not hop_text.isdigit() or len(hop_text) > 3:
        raise ForgedHop(f"{HOP} must be a small integer")
    try:
        sent_at = float(timestamp)
    except ValueError:
        raise ForgedHop(f"{TIMESTAMP} is not a unix time") from None
    expected = signature(secret, method, path, timestamp, peer, int(hop_text))
    if not hmac.compare_digest(expected, headers[SIGNATURE].strip().lower()):
        raise ForgedHop(
            "hop marker signature does not verify: only peer proxies sharing the "
            "deployment secret may send it"
        )
    if abs(now - sent_at) > window:
        raise ForgedHop(
            f"hop marker is {abs(now - sent_at):.0f} s old; the window is {window:.0f} s"
        )
    return HopMarker(peer=peer, hops=int(hop_text))
