"""Hop markers: a valid one verifies; anything else is forged (403), never peer privileges."""

from __future__ import annotations

import pytest

from edgescope.proxy.peer_auth import (
    HOP,
    SIGNATURE,
    TIMESTAMP,
    ForgedHop,
    HopMarker,
    sign_hop,
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
        ({SIGNATURE: "00" * 32}, "does not verify"),
        ({HOP: "1"}, "does not verify"),  # hop count is signed: cannot be reset
        ({HOP: "x"}, "small integer"),
        ({TIMESTAMP: "soon"}, "not a unix time"),
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
        verify_hop({HOP: "1"}, "GET", PATH, KEY, now=1000.0, window=30)
