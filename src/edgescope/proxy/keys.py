"""One Ed25519 key pair per site: a site signs its hops with its private key, peers check them
with its public key(s). A compromised site can then impersonate no one but itself.

Text forms: a public key is ``ed25519:<base64 of the 32 raw bytes>``, as a peer entry names
it; a private key is a PKCS#8 PEM file (``edgescope proxy keygen``), or inline
``ed25519:<base64 of the 32-byte seed>`` (tests). A key's id, sent with each signature so the
receiver picks the right one of a peer's keys during a rotation, is the first 16 hex digits of
the SHA-256 of its raw public bytes.

    >>> key = generate()
    >>> public = load_public(public_text(key.public_key()))
    >>> public.verify(key.sign(b"hop"), b"hop")  # raises InvalidSignature when forged
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgescope.errors import ConfigError

PREFIX = "ed25519:"

__all__ = [
    "Ed25519PrivateKey",
    "Ed25519PublicKey",
    "cached_key_id",
    "generate",
    "key_id",
    "load_private",
    "load_private_file",
    "load_public",
    "private_pem",
    "public_text",
]


def generate() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_text(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PREFIX + base64.b64encode(raw).decode()


def key_id(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


_IDS: dict[int, tuple[Ed25519PrivateKey | Ed25519PublicKey, str]] = {}
"""Key ids of the keys in use, by object: each hop signed and checked needs one (the keys
are not hashable). An entry holds its key, so that its ``id()`` is not reused."""


def cached_key_id(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """:func:`key_id` of ``key`` (of its public half for a private key), computed once per key
    object: a site's own key and its peers' keys sign and check every hop."""
    entry = _IDS.get(id(key))
    if entry is None or entry[0] is not key:
        public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
        if len(_IDS) >= 4096:
            _IDS.clear()  # bounded: keys of a directory that churns are recomputed
        entry = _IDS[id(key)] = (key, key_id(public))
    return entry[1]


def private_pem(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_public(text: str) -> Ed25519PublicKey:
    """``ed25519:<base64>`` -> a public key; ConfigError naming what is wrong."""
    return Ed25519PublicKey.from_public_bytes(_raw(text, "public key"))


def load_private(text: str) -> Ed25519PrivateKey:
    """``ed25519:<base64 seed>`` -> a private key (inline form)."""
    return Ed25519PrivateKey.from_private_bytes(_raw(text, "private key"))


def load_private_file(path: Path) -> Ed25519PrivateKey:
    """A PKCS#8 PEM Ed25519 private key file (``edgescope proxy keygen`` writes one)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"private_key_file: cannot read {path}: {exc.strerror}") from exc
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise ConfigError(f"private_key_file: {path} is not an unencrypted PEM key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"private_key_file: {path} holds a {type(key).__name__}, not Ed25519")
    return key


def _raw(text: str, what: str) -> bytes:
    if not text.startswith(PREFIX):
        raise ConfigError(f"a {what} looks like 'ed25519:<base64>', not {text[:20]!r}...")
    try:
        raw = base64.b64decode(text[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(f"the {what} {text[:20]!r}... is not base64") from exc
    if len(raw) != 32:
        raise ConfigError(f"an Ed25519 {what} is 32 bytes, this one is {len(raw)}")
    return raw
