"""What the replica tests over the Paris & Corte pair share: its scope, the eventual mode's
header, a poll for what replay does in the background, and a replica set of the two.

    from replicas.pair import BOTH, EVENTUAL, eventually
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from edgescope.proxy.carriers import MODE_HEADER
from edgescope.replicas.model import Hlc, Member, ReplicaSet

BOTH = "{image: Paris & Corte}"
EVENTUAL = {MODE_HEADER: "eventual"}
ALICE = ReplicaSet(
    "aa0000000001",
    "identity",
    "/v3/users",
    (Member("Paris", "aa0000000001"), Member("Corte", "cc0000000001")),
    Hlc(10, 0, "P"),
)


async def eventually(check: Callable[[], object], timeout: float = 30.0) -> None:
    """Poll ``check()`` until true, else fail clearly. Generous bound: a loaded machine slows
    the replay rounds, not the outcome."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)
