"""One signature for a whole fan-out: Merkle proofs verify each hop, and nothing else."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgescope.proxy.batchsign import BatchSigner, check, leaf, signed_root, tree
from edgescope.proxy.keys import generate

KEY = generate()
PUBLIC = KEY.public_key()
SitesFactory = Any


@given(st.lists(st.binary(max_size=40), min_size=1, max_size=70, unique=True))
def test_every_message_verifies_with_its_own_proof_only(messages: list[bytes]) -> None:
    root, proofs = tree([leaf(m) for m in messages])
    signature = KEY.sign(signed_root(root))
    for i, message in enumerate(messages):
        assert check(PUBLIC, signature, proofs[i], message)
        if len(messages) > 1:
            other = messages[(i + 1) % len(messages)]
            assert not check(PUBLIC, signature, proofs[i], other)


@pytest.mark.parametrize(
    "proof", ["", "0", "0:Zzz", "0:L" + "ab" * 31, "0:" + ",".join(["R" + "00" * 32] * 300)]
)
def test_malformed_proofs_never_verify(proof: str) -> None:
    root, _ = tree([leaf(b"a")])
    assert not check(PUBLIC, KEY.sign(signed_root(root)), proof, b"a")


async def test_messages_signed_in_one_turn_share_one_signature() -> None:
    signer = BatchSigner(KEY)
    results = await asyncio.gather(*(signer.sign(f"hop {i}".encode()) for i in range(1000)))
    assert signer.signatures == 1 and signer.messages == 1000
    assert len({signature for signature, _ in results}) == 1
    signature, proof = results[417]
    import base64

    assert check(PUBLIC, base64.b64decode(signature), proof, b"hop 417")
    assert len(proof) < 800  # ten sibling digests for a thousand leaves


async def test_a_fan_out_is_signed_once(sites: SitesFactory) -> None:
    paris, *_ = await sites("Paris", "Corte", "Marseille", "Lyon")
    signer = paris.proxy.sender.signer
    before = signer.signatures
    status, _, _ = await paris.get(
        "/image/items", headers={"X-Scope": "{image: Corte & Marseille & Lyon}"}
    )
    assert status == 200
    assert signer.signatures == before + 1 and signer.messages >= 3
