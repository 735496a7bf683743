"""Review findings B2, B3 (replicas/peers.py, checks.py): a real Corte proxy on loopback, with
the replicas extension, receiving pushes correctly signed by its peer Paris."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgescope.cli.extensions import build_extensions
from edgescope.proxy import keys
from edgescope.proxy.config import parse_config
from edgescope.proxy.protocol import REPLICA_SETS_PATH, sign_hop
from edgescope.proxy.server import SiteProxy
from edgescope.replicas.peers import MAX_PUSH_BYTES


@dataclass
class Corte:
    proxy: SiteProxy
    paris: Ed25519PrivateKey
    counter: int = 0

    async def push(self, body: bytes) -> tuple[int, Any]:
        """POST ``body`` to Corte's record endpoint, signed by Paris."""
        self.counter += 1
        headers = {"Content-Type": "application/json"}
        headers.update(
            sign_hop(
                self.paris,
                "POST",
                REPLICA_SETS_PATH,
                "Paris",
                "Corte",
                self.counter,
                now=time.time(),
                headers=headers,
                body=body,
            )
        )
        async with (
            aiohttp.ClientSession() as session,
            session.post(self.proxy.url + REPLICA_SETS_PATH, data=body, headers=headers) as reply,
        ):
            return reply.status, await reply.text()


@pytest.fixture
async def corte(tmp_path: Path) -> AsyncIterator[Corte]:
    paris, corte = keys.generate(), keys.generate()
    cfg = parse_config(
        {
            "site": "Corte",
            "listen": "127.0.0.1:0",
            "private_key": "ed25519:" + base64.b64encode(corte.private_bytes_raw()).decode(),
            "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
            "peers": [
                {
                    "name": "Paris",
                    "url": "http://127.0.0.1:9",
                    "public_key": keys.public_text(paris.public_key()),
                }
            ],
            "replicas": {"state_dir": str(tmp_path / "replicas")},
        }
    )
    proxy = SiteProxy(cfg, extensions=build_extensions(cfg, tmp_path))
    await proxy.start()
    try:
        yield Corte(proxy, paris)
    finally:
        await proxy.stop()


async def test_a_record_push_past_its_bound_gets_a_413(corte: Corte) -> None:
    padding = "x" * (MAX_PUSH_BYTES + 1)
    status, text = await corte.push(json.dumps({"set": {"pad": padding}}).encode())
    assert status == 413, text
    assert str(MAX_PUSH_BYTES) in text
    status, text = await corte.push(json.dumps({"set": {}}).encode())
    assert status == 400, text  # a small body is still read and checked


def _set(corte_state: str, corte_id: str | None, counter: int) -> bytes:
    wall = int(time.time() * 1000)
    doc = {
        "handle": "a10000000001",
        "service": "image",
        "collection": "/things",
        "members": [
            {"site": "Paris", "id": "a10000000001", "state": "present"},
            {"site": "Corte", "id": corte_id, "state": corte_state},
        ],
        "version": f"{wall:013d}.{counter:06d}.Paris",
    }
    return json.dumps({"set": doc}).encode()


async def test_a_peer_cannot_repoint_this_sites_member_in_two_pushes(corte: Corte) -> None:
    """B3: mark Corte's member pending (same id), then repoint it: both pushes refused."""
    status, text = await corte.push(_set("present", "c10000000001", 1))
    assert status == 200, text
    status, text = await corte.push(_set("pending", "c10000000001", 2))
    assert status == 409 and "pending" in text, text
    status, text = await corte.push(_set("present", "dead00000001", 3))
    assert status == 409, text
    status, text = await corte.push(_set("pending", "dead00000001", 4))
    assert status == 409, text


async def test_a_pending_member_gets_its_id_once(corte: Corte) -> None:
    """The replay's push (pending with no id to present with one) still works; then it is fixed."""
    status, text = await corte.push(_set("pending", None, 1))
    assert status == 200, text
    status, text = await corte.push(_set("present", "c20000000002", 2))
    assert status == 200, text
    status, text = await corte.push(_set("present", "dead00000002", 3))
    assert status == 409, text
