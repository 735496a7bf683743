"""The wire protocol: a valid hop marker verifies; anything else is forged (403) or, from a
peer on another protocol version, a clear mismatch (400) naming both versions."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from multidict import CIMultiDict

from edgescope.proxy.protocol import (
    HOP_HEADER,
    PROTOCOL_VERSION,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    ForgedHop,
    HopMarker,
    ProtocolMismatch,
    sign_hop,
    signature,
    strip_internal,
    verify_hop,
)

KEY = b"k" * 32
PATH = "/edgescope/svc/image/v2/images"


def test_valid_marker_verifies() -> None:
    headers = sign_hop(KEY, "GET", PATH, "Paris", 2, now=1000.0)
    assert verify_hop(headers, "GET", PATH, KEY, now=1010.0, window=30) == HopMarker("Paris", 2)
    assert verify_hop({}, "GET", PATH, KEY, now=0, window=30) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({SIGNATURE_HEADER: "00" * 32}, "does not verify"),
        ({HOP_HEADER: "1"}, "does not verify"),  # hop count is signed: cannot be reset
        ({HOP_HEADER: "x"}, "small integer"),
        ({TIMESTAMP_HEADER: "soon"}, "not a unix time"),
    ],
)
def test_tampered_marker_is_forged(change: dict[str, str], message: str) -> None:
    headers = {**sign_hop(KEY, "GET", PATH, "Paris", 2, now=1000.0), **change}
    with pytest.raises(ForgedHop, match=message):
        verify_hop(headers, "GET", PATH, KEY, now=1000.0, window=30)


def test_other_key_method_path_age_and_partial() -> None:
    headers = sign_hop(KEY, "GET", PATH, "Paris", 1, now=1000.0)
    for args in (
        (headers, "GET", PATH, b"other" * 8),
        (headers, "DELETE", PATH, KEY),
        (headers, "GET", PATH + "x", KEY),
    ):
        with pytest.raises(ForgedHop):
            verify_hop(*args, now=1000.0, window=30)
    with pytest.raises(ForgedHop, match="old"):
        verify_hop(headers, "GET", PATH, KEY, now=1100.0, window=30)
    with pytest.raises(ForgedHop, match="incomplete"):
        verify_hop({HOP_HEADER: "1"}, "GET", PATH, KEY, now=1000.0, window=30)


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf"])
def test_a_non_finite_timestamp_never_verifies(stamp: str) -> None:
    headers = sign_hop(KEY, "GET", PATH, "Paris", 1, now=1000.0)
    headers[TIMESTAMP_HEADER] = stamp
    headers[SIGNATURE_HEADER] = signature(KEY, PROTOCOL_VERSION, "GET", PATH, stamp, "Paris", 1)
    with pytest.raises(ForgedHop, match="finite"):
        verify_hop(headers, "GET", PATH, KEY, now=1e12, window=30)


def test_every_hop_carries_the_protocol_version() -> None:
    headers = sign_hop(KEY, "GET", PATH, "Paris", 1, now=1000.0)
    assert headers[VERSION_HEADER] == str(PROTOCOL_VERSION)
    headers[VERSION_HEADER] = str(PROTOCOL_VERSION + 1)  # also signed: cannot be changed
    with pytest.raises(ProtocolMismatch, match=f"speaks {PROTOCOL_VERSION}"):
        verify_hop(headers, "GET", PATH, KEY, now=1000.0, window=30)


def test_a_peer_from_before_versions_gets_a_mismatch_a_forger_a_403() -> None:
    old = hmac.new(KEY, b"GET\n" + PATH.encode() + b"\n1000.000\nParis\n1", hashlib.sha256)
    headers = {
        HOP_HEADER: "1",
        "X-Edgescope-Peer": "Paris",
        TIMESTAMP_HEADER: "1000.000",
        SIGNATURE_HEADER: old.hexdigest(),
    }
    with pytest.raises(ProtocolMismatch, match=r"protocol 0 .*speaks 1"):
        verify_hop(headers, "GET", PATH, KEY, now=1000.0, window=30)
    with pytest.raises(ForgedHop, match="does not verify"):
        verify_hop(
            {**headers, SIGNATURE_HEADER: "ab" * 32}, "GET", PATH, KEY, now=1000.0, window=30
        )


def test_strip_internal_drops_every_edgescope_header_in_any_case() -> None:
    headers = CIMultiDict(
        [("X-Edgescope-Hop", "1"), ("x-edgescope-hop", "2"), ("X-EDGESCOPE-HLC", "9"), ("A", "b")]
    )
    strip_internal(headers)
    assert list(headers.items()) == [("A", "b")]
