"""The wire protocol: a hop signed by the sending site's key verifies; anything else is forged
(403) or, from a peer on another protocol version, a clear mismatch (400) naming both."""

from __future__ import annotations

import base64

import pytest
from multidict import CIMultiDict

from edgescope.proxy.keys import generate, public_text
from edgescope.proxy.protocol import (
    CONTENT_DIGEST_HEADER,
    HLC_HEADER,
    HOP_HEADER,
    KEY_ID_HEADER,
    PROTOCOL_VERSION,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    VERSION_HEADER,
    ForgedHop,
    HopMarker,
    ProtocolMismatch,
    content_digest,
    hop_message,
    sign_hop,
    strip_internal,
    verify_hop,
)

PARIS, PARIS_NEW, CORTE = generate(), generate(), generate()
KEYS = {"Paris": [PARIS.public_key()], "Corte": [CORTE.public_key()]}
PATH = "/edgescope/svc/image/v2/images?limit=5"


def verify(headers: dict[str, str], *, method: str = "GET", path: str = PATH, to: str = "Corte",
           now: float = 1000.0, keys: dict = KEYS) -> HopMarker | None:  # fmt: skip
    return verify_hop(headers, method, path, to, lambda p: keys.get(p, []), now=now, window=30)


def signed(**kwargs: object) -> dict[str, str]:
    return sign_hop(PARIS, "GET", PATH, "Paris", "Corte", 2, now=1000.0, **kwargs)  # type: ignore[arg-type]


def test_a_valid_marker_verifies() -> None:
    assert verify(signed()) == HopMarker("Paris", 2)
    assert verify({}) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({SIGNATURE_HEADER: base64.b64encode(b"x" * 64).decode()}, "does not verify"),
        ({HOP_HEADER: "1"}, "does not verify"),  # the hop count is signed: cannot be reset
        ({HLC_HEADER: "1.0.Zzz"}, "does not verify"),  # every internal header is signed
        ({HOP_HEADER: "x"}, "small integer"),
        ({TIMESTAMP_HEADER: "soon"}, "not a unix time"),
        ({KEY_ID_HEADER: "0" * 16}, "key Corte does not know"),
        ({"X-Edgescope-Peer": "Lyon"}, "not a peer of Corte"),
    ],
)
def test_a_tampered_marker_is_forged(change: dict[str, str], message: str) -> None:
    with pytest.raises(ForgedHop, match=message):
        verify({**signed(), **change})


def test_method_path_query_destination_and_age_are_bound() -> None:
    headers = signed()
    for kwargs in (
        {"method": "DELETE"},
        {"path": PATH.replace("limit=5", "limit=6")},  # the query is signed too
        {"to": "Marseille", "keys": {**KEYS, "Marseille": []}},
    ):
        with pytest.raises(ForgedHop):
            verify(headers, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ForgedHop, match="old"):
        verify(headers, now=1100.0)
    with pytest.raises(ForgedHop, match="incomplete"):
        verify({HOP_HEADER: "1", VERSION_HEADER: str(PROTOCOL_VERSION)})


def test_a_site_can_impersonate_no_one_else() -> None:
    """Corte signs a marker claiming to be Paris: Paris's keys do not verify it."""
    forged = sign_hop(CORTE, "GET", PATH, "Paris", "Marseille", 1, now=1000.0)
    forged[KEY_ID_HEADER] = signed()[KEY_ID_HEADER]
    with pytest.raises(ForgedHop, match="does not verify with Paris's key"):
        verify(forged, to="Marseille")


def test_a_rotation_accepts_both_keys_meanwhile() -> None:
    rotating = {**KEYS, "Paris": [PARIS.public_key(), PARIS_NEW.public_key()]}
    new = sign_hop(PARIS_NEW, "GET", PATH, "Paris", "Corte", 1, now=1000.0)
    assert verify(new, keys=rotating) == HopMarker("Paris", 1)
    assert verify(signed(), keys=rotating) == HopMarker("Paris", 2)
    with pytest.raises(ForgedHop):
        verify(new)  # before the new key was added


def test_a_body_sent_whole_is_bound_by_its_digest() -> None:
    marker = verify(signed(body=b'{"set": 1}'))
    assert marker is not None and marker.content_digest == content_digest(b'{"set": 1}')
    headers = signed(body=b'{"set": 1}')
    headers[CONTENT_DIGEST_HEADER] = content_digest(b'{"set": 2}')
    with pytest.raises(ForgedHop):
        verify(headers)


@pytest.mark.parametrize("stamp", ["nan", "inf", "-inf"])
def test_a_non_finite_timestamp_never_verifies(stamp: str) -> None:
    headers = {**signed(), TIMESTAMP_HEADER: stamp}
    message = hop_message(headers, "GET", PATH, "Corte")
    headers[SIGNATURE_HEADER] = base64.b64encode(PARIS.sign(message)).decode()
    with pytest.raises(ForgedHop, match="finite"):
        verify(headers, now=1e12)


def test_another_protocol_version_is_a_clear_mismatch() -> None:
    assert signed()[VERSION_HEADER] == str(PROTOCOL_VERSION)
    with pytest.raises(ProtocolMismatch, match=f"speaks {PROTOCOL_VERSION}"):
        verify({**signed(), VERSION_HEADER: "1"})  # an HMAC-era peer


def test_public_keys_print_as_peer_entries_name_them() -> None:
    assert public_text(PARIS.public_key()).startswith("ed25519:")


def test_strip_internal_drops_every_edgescope_header_in_any_case() -> None:
    headers = CIMultiDict(
        [("X-Edgescope-Hop", "1"), ("x-edgescope-hop", "2"), ("X-EDGESCOPE-HLC", "9"), ("A", "b")]
    )
    strip_internal(headers)
    assert list(headers.items()) == [("A", "b")]
