"""Sign many messages with one Ed25519 signature: a Merkle tree over their digests.

A proxy fanning a call out to 1,000 sites would otherwise make 1,000 signatures (about
0.1 ms each here). Every message signed in the same turn of the event loop becomes a leaf of
one tree; the root is signed once, and each message carries its proof: its index and the
sibling digests on its path to the root (10 of them for 1,000 leaves). Checking one message
costs one digest per level and one signature check, as before.

    >>> from edgescope.proxy.keys import generate
    >>> key = generate()
    >>> root, proofs = tree([leaf(b"a"), leaf(b"b"), leaf(b"c")])
    >>> signature = key.sign(signed_root(root))
    >>> public = key.public_key()
    >>> check(public, signature, proofs[2], b"c"), check(public, signature, proofs[2], b"a")
    (True, False)
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidSignature

from edgescope.proxy.keys import Ed25519PrivateKey, Ed25519PublicKey

MAX_LEAVES = 1 << 16


def leaf(message: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + message).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def signed_root(root: bytes) -> bytes:
    """What the key signs: the root, in a domain of its own."""
    return b"edgescope-batch\n" + root


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[str]]:
    """The root over ``leaves`` and each leaf's proof (``index:`` then sibling digests, hex;
    a node without a sibling goes up as it is)."""
    paths: list[list[bytes]] = [[] for _ in leaves]
    level = [(digest, [i]) for i, digest in enumerate(leaves)]
    while len(level) > 1:
        upper = []
        for start in range(0, len(level), 2):
            if start + 1 == len(level):
                upper.append(level[start])
                continue
            (left, left_ids), (right, right_ids) = level[start], level[start + 1]
            for i in left_ids:
                paths[i].append(b"R" + right)
            for i in right_ids:
                paths[i].append(b"L" + left)
            upper.append((_node(left, right), left_ids + right_ids))
        level = upper
    proofs = [f"{i}:" + ",".join(p[:1].decode() + p[1:].hex() for p in path)
              for i, path in enumerate(paths)]  # fmt: skip
    return level[0][0], proofs


def root_from(message: bytes, proof: str) -> bytes:
    """The root a message and its proof lead to; raises ValueError on a malformed proof."""
    _, sep, steps = proof.partition(":")
    if not sep or len(steps) > 200 * 66:
        raise ValueError("malformed proof")
    digest = leaf(message)
    for step in filter(None, steps.split(",")):
        side, sibling = step[:1], bytes.fromhex(step[1:])
        if len(sibling) != 32 or side not in ("L", "R"):
            raise ValueError("malformed proof")
        digest = _node(sibling, digest) if side == "L" else _node(digest, sibling)
    return digest


def check(key: Ed25519PublicKey, signature: bytes, proof: str, message: bytes) -> bool:
    try:
        key.verify(signature, signed_root(root_from(message, proof)))
    except (InvalidSignature, ValueError):
        return False
    return True


class BatchSigner:
    """Signs every message asked for in the same turn of the event loop with one signature."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self.key = key
        self._pending: list[tuple[bytes, asyncio.Future[tuple[str, str]]]] = []
        self.signatures = 0
        """Signatures made (batches), against messages signed: what the benchmark reports."""
        self.messages = 0

    async def sign(self, message: bytes) -> tuple[str, str]:
        """(base64 signature of the batch's root, this message's proof)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[tuple[str, str]] = loop.create_future()
        self._pending.append((message, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        elif len(self._pending) >= MAX_LEAVES:
            self._flush()
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if not batch:
            return
        root, proofs = tree([leaf(message) for message, _ in batch])
        signature = base64.b64encode(self.key.sign(signed_root(root))).decode()
        self.signatures += 1
        self.messages += len(batch)
        for (_, future), proof in zip(batch, proofs, strict=True):
            if not future.done():
                future.set_result((signature, proof))
