"""A replay and the live branch of the same write, in one proxy, apply it once (cause C).

The live branch of a create carries no set handle, its replay does: both must wait on the
write's key. A real registry (SQLite) holds the claim; the backend is a send that waits on an
event, so the replay arrives while the live branch is still applying. No timing is asserted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgescope.proxy.call import BranchReply
from edgescope.proxy.protocol import REPLAYED_HEADER
from edgescope.replicas.clock import Clock
from edgescope.replicas.guard import Claims, WriteGuard
from edgescope.replicas.registry import Registry


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(tmp_path)
    yield registry
    registry.close()


async def test_a_replay_waits_for_the_live_branch_of_its_key(registry: Registry) -> None:
    guard = WriteGuard(registry, Clock("Paris"), Claims(owner="Paris/one"))
    hlc = guard.clock.now()
    started, release = asyncio.Event(), asyncio.Event()
    sent: list[str] = []

    async def live() -> BranchReply:
        sent.append("live")
        started.set()
        await release.wait()
        return BranchReply("Paris", 201, {"Content-Type": "application/json"}, b'{"id": "a"}')

    async def replay() -> BranchReply:
        sent.append("replay")
        return BranchReply("Paris", 201, {"Content-Type": "application/json"}, b'{"id": "b"}')

    first = asyncio.ensure_future(guard.guarded_write(None, hlc, "k:Paris", live))
    await started.wait()
    second = asyncio.ensure_future(guard.guarded_write("H", hlc, "k:Paris", replay))
    for _ in range(20):  # let the replay run as far as it can while the live branch waits
        await asyncio.sleep(0)
    release.set()
    live_reply, replay_reply = await asyncio.gather(first, second)
    assert sent == ["live"]
    assert live_reply.body == replay_reply.body == b'{"id": "a"}'
    assert replay_reply.headers[REPLAYED_HEADER] == "1"
