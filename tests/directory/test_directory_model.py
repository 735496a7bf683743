"""The directory's pure rules: what is admitted, which version wins, what a peer lacks."""

from __future__ import annotations

import doctest

import pytest

from edgescope.directory import model
from edgescope.proxy import keys

AUTHORITY, PARIS, OTHER = keys.generate(), keys.generate(), keys.generate()
CERT = model.endorse(AUTHORITY, "Paris", PARIS.public_key(), expires=2000.0)
TRUSTED = [AUTHORITY.public_key()]


def entry(version: int = 1, **kwargs: object) -> model.Entry:
    return model.advertise(PARIS, CERT, "https://paris", ["image"], version=version, **kwargs)  # type: ignore[arg-type]


def test_the_doctests() -> None:
    assert doctest.testmod(model).failed == 0


def test_a_good_entry_is_admitted_and_round_trips_through_json() -> None:
    admitted = model.admit(entry(), TRUSTED, now=1000.0)
    assert model.entry_from_json(admitted.to_json()) == admitted


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: model.admit(entry(), [OTHER.public_key()], now=1000.0), "does not trust"),
        (lambda: model.admit(entry(), TRUSTED, now=3000.0), "expired"),
        (
            lambda: model.admit(
                entry(), TRUSTED, now=1000.0,
                revoked=frozenset({("Paris", keys.key_id(PARIS.public_key()))}),
            ),
            "revoked",
        ),
        (  # signed by another key than the endorsed one
            lambda: model.admit(
                model.advertise(OTHER, CERT, "https://x", [], version=1), TRUSTED, now=1000.0
            ),
            "entry: the signature",
        ),
        (  # a changed field after signing
            lambda: model.admit(
                model.entry_from_json({**entry().to_json(), "url": "https://evil"}),
                TRUSTED, now=1000.0,
            ),
            "entry: the signature",
        ),
        (lambda: model.entry_from_json({"site": "x"}), "malformed entry"),
        (lambda: model.entry_from_json({"site": "x" * 5000}), "over 4 KiB"),
    ],
)  # fmt: skip
def test_what_is_refused(make: object, message: str) -> None:
    with pytest.raises(model.NotAdmitted, match=message):
        make()  # type: ignore[operator]


def test_the_higher_version_wins_and_digests_say_what_a_peer_lacks() -> None:
    old, new = entry(1), entry(5)
    assert model.newer(new, old) and not model.newer(old, new) and model.newer(old, None)
    mine = {"Paris": new}
    assert model.wanted_by({"Paris": 1}, mine) == [new]
    assert model.wanted_by({"Paris": 5}, mine) == []
    assert model.wanted_by({}, mine) == [new]
    assert model.fingerprint(model.digest(mine)) == model.fingerprint({"Paris": 5})
