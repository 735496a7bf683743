"""A queued undo by key of a Keystone create that Corte applied and Paris never heard of: the
set-up shared by the delegation test and its attack (a token that delegation refuses)."""

from __future__ import annotations

import json
from typing import Any

from edgescope.proxy.call import BranchReply
from edgescope.proxy.protocol import UNDO_OF_HEADER
from edgescope.replicas.model import PendingOp

USER_ID = "0123456789abcdef0123456789abcdef"
"""The id of the user Corte's create made under the key."""


async def queue_keystone_undo(paris: Any, corte: Any, token: str, by: str) -> None:
    """Corte applies a user create under a key; Paris queues that key's undo for Corte,
    sent with ``token``, queued by ``by``."""
    guard = corte.replicas.parts.guard
    key = "0123abcd4567:Corte"

    async def made() -> BranchReply:
        body = json.dumps({"user": {"id": USER_ID}}).encode()
        return BranchReply("Corte", 201, {"Content-Type": "application/json"}, body)

    assert (await guard.guarded_write(None, guard.clock.now(), key, made)).status == 201
    undo = PendingOp(
        key="0123abcd4567:undo:Corte",
        handle=None,
        target="Corte",
        service="identity",
        method="DELETE",
        path="/v3/users",
        body=b"",
        headers={"X-Auth-Token": token, "X-Scope": "{identity: Corte}", UNDO_OF_HEADER: key},
        hlc=guard.clock.now(),
    )
    paris.replicas.registry.enqueue(undo, by)
