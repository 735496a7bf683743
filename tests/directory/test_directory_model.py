"""The directory's pure rules: what is admitted, which version wins, what a peer lacks."""

from __future__ import annotations

import doctest
from pathlib import Path

import pytest

from edgescope.directory import model
from edgescope.directory.gossip import Directory, DirectoryConfig
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


def test_a_rotation_is_wanted_by_a_peer_holding_another_key_whatever_the_versions() -> None:
    """B9: format 2 names the key of each rotation; format 1 (no keys) compares versions."""
    other_cert = model.endorse(AUTHORITY, "Paris", OTHER.public_key(), expires=2000.0)
    rotation = model.advertise(OTHER, other_cert, "https://p", [], version=3, previous=PARIS)
    mine = {"Paris": rotation}
    ours = model.rotations(mine)
    assert ours == {"Paris": keys.key_id(OTHER.public_key())}
    assert model.rotations({"Paris": entry(9)}) == {}  # no handover: nothing to name
    assert model.wanted_by({"Paris": 9}, mine) == []  # format 1
    assert model.wanted_by({"Paris": 9}, mine, {}, ours) == [rotation]
    assert model.wanted_by({"Paris": 9}, mine, {"Paris": "f" * 16}, ours) == [rotation]
    assert model.wanted_by({"Paris": 9}, mine, dict(ours), ours) == []  # it holds it
    assert model.fingerprint({"Paris": 3}) != model.fingerprint({"Paris": 3}, (), ours)
    assert model.fingerprint({"Paris": 3}, (), {}) != model.fingerprint({"Paris": 3}, (), ours)


@pytest.mark.parametrize(
    ("versions", "keys_", "message"),
    [
        ([], None, "'versions' is not an object"),
        ({"P": 2**53}, None, "not an integer"),
        ({"P": 1.5}, None, "not an integer"),
        ({"P": False}, None, "not an integer"),
        ({"P": 1}, "k", "'keys' is not an object"),
        ({"P": 1}, {"P": None}, "not a key id"),
        ({"P": 1}, {"P": "k" * 65}, "not a key id"),
    ],
)
def test_a_bad_digest_is_refused(versions: object, keys_: object, message: str) -> None:
    with pytest.raises(model.NotAdmitted, match=message):
        model.digest_from_json(versions, keys_)


def test_a_rotation_back_to_an_earlier_key_wins_by_version_only() -> None:
    """Keys handed over to each other: the higher version wins (else gossip swaps them); a
    rotation from a key that was never handed back wins whatever its version."""
    other_cert = model.endorse(AUTHORITY, "Paris", OTHER.public_key(), expires=2000.0)
    there = model.advertise(OTHER, other_cert, "https://p", [], version=20, previous=PARIS)
    back = entry(30, previous=OTHER)
    assert model.succeeds(back, there)
    with pytest.raises(model.NotAdmitted, match="an older rotation"):
        model.succeeds(there, back)
    assert model.succeeds(there, entry(2**52))  # B9: a lower rotation beats the old key


def test_a_directorys_cached_rotations_are_models() -> None:
    """``Directory.rotations`` keeps key ids between changes: the same answer as the model."""
    config = DirectoryConfig(Path("/nonexistent"), "http://c", Path("/nonexistent"), tuple(TRUSTED))
    directory = Directory("Corte", keys.generate(), config, [])
    other_cert = model.endorse(AUTHORITY, "Paris", OTHER.public_key(), expires=2e9)
    rotation = model.advertise(OTHER, other_cert, "https://p", [], version=3, previous=PARIS)
    for entries in ({"Paris": entry(1)}, {"Paris": rotation}, {"Paris": entry(9)}, {}):
        directory.entries = dict(entries)
        directory._changed()
        assert directory.rotations() == model.rotations(entries)
        assert len(directory._key_ids) == len(model.rotations(entries))
