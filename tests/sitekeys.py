"""Deterministic Ed25519 keys for the tests' sites: the same name gives the same key pair."""

from __future__ import annotations

import base64
import hashlib

from edgescope.proxy.keys import PREFIX, load_private, public_text


def private(site: str) -> str:
    """``ed25519:<seed>``, inline in a site's config (``private_key``)."""
    seed = hashlib.sha256(f"edgescope-test-{site}".encode()).digest()
    return PREFIX + base64.b64encode(seed).decode()


def public(site: str) -> str:
    """The public key a peer entry names (``public_key``)."""
    return public_text(load_private(private(site)).public_key())
