"""Apply a replicated write at most once, and only if it wins last-writer-wins.

The site that applies a write, not the one that sends it, records the write's idempotency
key with its answer: a replayed write after a lost answer returns the remembered answer
(``X-Edgescope-Replayed: 1``) instead of applying again, with no support from the backend.
A write to a set stamped older than the last one applied there is refused with 409
``Superseded Write``; the order of delivery then does not change the final state.

    reply = await guard.guarded_write(handle, stamp, key, send)
"""

from __future__ import annotations

import asyncio
import json
import weakref

from edgescope.proxy.call import BranchReply
from edgescope.proxy.extension import SendBranch
from edgescope.proxy.protocol import REPLAYED_HEADER
from edgescope.proxy.responses import error_body
from edgescope.replicas.clock import Clock, ClockTooFarAhead
from edgescope.replicas.model import Hlc, lww_wins
from edgescope.replicas.registry import Registry

SUPERSEDED = "Superseded Write"


class WriteGuard:
    """Idempotency and last-writer-wins for the writes applied at this site."""

    def __init__(self, registry: Registry, clock: Clock) -> None:
        self.registry = registry
        self.clock = clock
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def guarded_write(
        self, handle: str | None, hlc: Hlc, key: str | None, send: SendBranch
    ) -> BranchReply:
        """Apply a replicated write once (by ``key``) and only if it wins by LWW.

        Writes to one set (or, for a create, with one key) are serialised, so a replay
        that races a slow live branch with the same key still applies once.
        """
        lock_name = handle or key or ""
        lock = self._locks.get(lock_name)
        if lock is None:
            lock = self._locks[lock_name] = asyncio.Lock()
        async with lock:
            if key is not None:
                prior = await asyncio.to_thread(self.registry.applied, key)
                if prior is not None:
                    status, body, headers = prior
                    return BranchReply(
                        self.clock.site, status, {**headers, REPLAYED_HEADER: "1"}, body
                    )
            try:
                self.clock.observe(hlc)
            except ClockTooFarAhead as exc:
                body = json.dumps(error_body(409, SUPERSEDED, str(exc))).encode()
                return BranchReply(self.clock.site, 409, {"Content-Type": "application/json"}, body)
            if handle is not None and self.registry.lookup(handle) is not None:
                last = await asyncio.to_thread(self.registry.last_write, handle)
                if not lww_wins(hlc, last):
                    assert last is not None
                    return await self._superseded(hlc, last, key)
            reply = await send()
            if 200 <= reply.status < 300:
                if handle is not None:
                    await asyncio.to_thread(self.registry.set_last_write, handle, hlc)
                if key is not None:
                    await asyncio.to_thread(
                        self.registry.record_applied, key, reply.status, reply.body, reply.headers
                    )
            return reply

    async def _superseded(self, hlc: Hlc, last: Hlc, key: str | None) -> BranchReply:
        message = (
            f"write stamped {hlc.encode()} lost to {last.encode()} at {self.clock.site} "
            "(last-writer-wins)"
        )
        body = json.dumps(error_body(409, SUPERSEDED, message)).encode()
        reply = BranchReply(self.clock.site, 409, {"Content-Type": "application/json"}, body)
        if key is not None:
            await asyncio.to_thread(self.registry.record_applied, key, 409, body, reply.headers)
        return reply
