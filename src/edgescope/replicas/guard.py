"""Apply a replicated write at most once, and only if it wins last-writer-wins.

The site that applies a write, not the one that sends it, records the write's idempotency
key with its answer: a replayed write after a lost answer returns the remembered answer
(``X-Edgescope-Replayed: 1``) instead of applying again, with no support from the backend.
A write to a set stamped older than the last one applied there is refused with 409
``Superseded Write``; the order of delivery then does not change the final state.

Several proxies of one site may receive the same write (a replay racing a slow live branch,
two replayers): the key is claimed in the shared database before the backend sees it
(:meth:`~edgescope.replicas.registry.Registry.claim_apply`), so one proxy applies it and the
others wait for its answer; writes to one set are serialised by a lease on the set, so the
last-writer-wins check and the write happen together, whichever proxy runs them.

    reply = await guard.guarded_write(handle, stamp, key, send)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from edgescope.errors import Refused, SiteUnreachable
from edgescope.proxy.call import BranchReply
from edgescope.proxy.extension import SendBranch
from edgescope.proxy.protocol import REPLAYED_HEADER
from edgescope.proxy.responses import error_body
from edgescope.replicas.clock import Clock, ClockTooFarAhead
from edgescope.replicas.indoubt import Found, Lookup, Undecided
from edgescope.replicas.model import Hlc, lww_wins
from edgescope.replicas.record import created_id
from edgescope.replicas.registry import ClaimState, Registry

SUPERSEDED = "Superseded Write"
log = logging.getLogger("edgescope.replicas")
Made = Callable[[float, float], Awaitable[Found]]
"""What an undo in doubt asks, with the times its create may have been sent between
(``indoubt.made_lookup``)."""


@dataclass(frozen=True, slots=True)
class Claims:
    """How long claims last between the proxies of a site, and how long to wait for one."""

    owner: str
    """This proxy's name in claims and leases (unique among the proxies of the site)."""
    seconds: float = 330.0
    """A claim on a write outlives the longest backend write (300 s read timeout): past it
    another proxy takes the write over, taking its owner for dead."""
    lease_seconds: float = 30.0
    """How long a proxy holds a set while it writes to it (renewed by nobody: a write to one
    set longer than this may overlap another proxy's, which only the LWW order feels)."""
    wait: float = 10.0
    """How long a proxy waits for another one applying the same write, then answers 503."""
    undo_patience: float = 3600.0
    """How long after a create its undo by key takes the backend's 400/409 to its DELETE for
    "still being made" (503, retried later): past it, the resource will not go (attached,
    locked) and the 400/409 is the undo's answer, so that the undo, first in its origin's
    queue for this site, holds the writes behind it no longer."""


class Timer(Protocol):
    """Time as the guard's waits see it. A test hands a fake one, whose ``sleep`` moves its
    ``monotonic`` on at once, so a wait of ``Claims.wait`` takes no time at all."""

    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    """The real one: ``time.monotonic`` and ``asyncio.sleep``."""

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class WriteGuard:
    """Idempotency and last-writer-wins for the writes applied at this site."""

    def __init__(
        self,
        registry: Registry,
        clock: Clock,
        claims: Claims | None = None,
        *,
        timer: Timer | None = None,
    ) -> None:
        self.registry = registry
        self.clock = clock
        self.claims = claims or Claims(owner=f"{clock.site}/{id(self):x}")
        self.timer: Timer = timer or SystemTimer()
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    async def guarded_write(
        self,
        handle: str | None,
        hlc: Hlc,
        key: str | None,
        send: SendBranch,
        lookup: Lookup | None = None,
    ) -> BranchReply:
        """Apply a replicated write once (by ``key``) and only if it wins by LWW.

        Writes to one set (or, for a create, with one key) are serialised here and across
        the proxies of the site, so a replay that races a slow live branch with the same
        key still applies once. ``lookup`` (a create's): asked first when the write is taken
        over from a proxy that died applying it; its answer, if any, is the write's.
        """
        # The key first: a live branch (no handle for a create) and the replay of the same
        # write (with the set's handle) exclude each other here, not only in the database,
        # where one proxy's own "applying" claim lets it through again.
        outer = f"key:{key}" if key is not None else None
        async with self._lock(outer), self._lock(handle if handle or outer else ""):
            in_doubt, since, until = False, 0.0, 0.0
            if key is not None:
                prior, in_doubt, since, until = await self._claim(key)
                if prior is not None:
                    return prior
            try:
                self.clock.observe(hlc)
            except ClockTooFarAhead as exc:  # not applied, not remembered: may come back later
                if key is not None:
                    await asyncio.to_thread(self.registry.release_apply, key, self.claims.owner)
                body = json.dumps(error_body(409, SUPERSEDED, str(exc))).encode()
                return BranchReply(self.clock.site, 409, {"Content-Type": "application/json"}, body)
            sent = False

            async def sending() -> BranchReply:
                nonlocal sent
                sent = True
                return await send()

            found = None
            try:
                async with self._set_lease(handle):
                    found = await lookup(since, until) if in_doubt and lookup else None
                    reply = found or await self._apply(handle, hlc, sending)
            except BaseException as exc:
                if key is not None:
                    # a create that may have been applied stays in doubt: the next attempt
                    # looks for what it made instead of applying it again
                    doubt = lookup is not None and (
                        (in_doubt and not sent) or (sent and _sent(exc))
                    )
                    await self._give_up(key, exc, doubt=doubt)
                raise
            if key is not None:
                if 200 <= reply.status < 300 or _superseded(reply) or found is not None:
                    await asyncio.to_thread(
                        self.registry.complete_apply,
                        key,
                        self.claims.owner,
                        reply.status,
                        reply.body,
                        reply.headers,
                    )
                else:  # not applied: a retry may apply it
                    await asyncio.to_thread(self.registry.release_apply, key, self.claims.owner)
            return reply

    async def _give_up(self, key: str, exc: BaseException, *, doubt: bool) -> None:
        """Release the claim of ``key`` after ``exc``, or leave it in doubt (logged)."""
        if not doubt:
            await asyncio.to_thread(self.registry.release_apply, key, self.claims.owner)
            return
        log.warning("write %s: left in doubt, retried later: %s", key, _reason(exc))
        await asyncio.to_thread(self.registry.leave_in_doubt, key, self.claims.owner)

    def _lock(self, name: str | None) -> contextlib.AbstractAsyncContextManager[None]:
        """This process's lock called ``name`` (a no-op for None)."""
        if name is None:
            return contextlib.nullcontext()
        lock = self._locks.get(name)
        if lock is None:
            lock = self._locks[name] = asyncio.Lock()
        return lock

    async def undo_create(
        self,
        key: str,
        delete: Callable[[str], Awaitable[BranchReply]],
        made: Made | None = None,
    ) -> BranchReply:
        """Undo the create applied here as ``key``, whatever became of it (a failed strict
        create whose answer from this site never reached its origin): applied, its resource
        is deleted; not seen yet, a tombstone makes a late arrival answer 409 instead of
        creating; being applied, 503 (the undo is retried later). A resource the backend
        will not delete yet (400 or 409: cinder's volume still 'creating') is 503 too, within
        ``Claims.undo_patience`` of the create: the queued undo would take a 4xx for final
        and leave it (a 3-minute campaign on 2026-12-07 left a volume so).

        Taken over from a proxy that died applying it (in doubt): ``made`` (the create's
        name looked up, :func:`~edgescope.replicas.indoubt.made_lookup`) finds what that
        proxy made, which is deleted; nothing found, the tombstone alone; what it cannot
        pick for sure is left and answered 409 "check by hand"; a lookup or a delete that
        cannot tell yet is 503 and the key stays in doubt for the retry.

        Being applied by this process (its key's lock held) is 503 at once too, not a wait
        on that lock: the create holds it as long as the backend takes (up to 300 s), longer
        than the origin waits for the undo's answer (30 s), and each resend would add a
        waiter."""
        site = self.clock.site
        lock = self._locks.get(f"key:{key}")
        if lock is not None and lock.locked():
            raise Refused(503, f"create {key[:80]} is being applied at {site}; retry later")
        async with self._lock(f"key:{key}"):
            claim = await asyncio.to_thread(
                self.registry.claim_apply, key, self.claims.owner, self.claims.seconds
            )
            if claim.state is ClaimState.BUSY:
                raise Refused(503, f"create {key[:80]} is being applied at {site}; retry later")
            if claim.state is ClaimState.MINE and claim.taken_over:
                return await self._undo_in_doubt(key, claim.since, claim.until, delete, made)
            if claim.state is ClaimState.MINE:  # not seen here yet
                undone = f"create {key[:80]} was undone at {site} before it arrived"
                await self._tombstone(key, undone)
                return BranchReply(site, 204, {}, b"")
            assert claim.answer is not None
            status, body, headers = claim.answer
            id_ = created_id(body, headers) if 200 <= status < 300 else None
            if id_ is None:  # refused, or undone already: nothing to delete
                return BranchReply(site, 204, {}, b"")
            return await self._delete_made(key, id_, delete, made_at=claim.answered_at)

    async def _undo_in_doubt(
        self,
        key: str,
        since: float,
        until: float,
        delete: Callable[[str], Awaitable[BranchReply]],
        made: Made | None,
    ) -> BranchReply:
        """Undo ``key``, taken over from a proxy that died applying it (see undo_create).
        A lookup that cannot tell past ``Claims.undo_patience`` of the create (the token it
        carries revoked: 401 for ever) is answered: left, "check by hand"."""
        site = self.clock.site
        undone = f"create {key[:80]} was undone at {site} while its proxy had died applying it"
        if made is None:
            what = "what it made, if anything, is left (no name to look it up by)"
            return await self._left(key, f"{undone}: {what}; check by hand")
        try:
            try:
                found = await made(since, until)
            except Undecided as exc:
                if time.time() - since < self.claims.undo_patience:
                    raise
                what = f"its lookup by name still got {exc.got} past the undo patience"
                return await self._left(key, f"{undone}: {what}; check by hand")
            gone = (
                await self._delete_made(key, found.id, delete, made_at=since) if found.id else None
            )
        except BaseException as exc:
            await self._give_up(key, exc, doubt=True)
            raise
        if gone is not None and gone.status >= 500:  # retried later, still in doubt
            await self._give_up(key, Refused(gone.status, found.note), doubt=True)
            return gone
        if gone is not None and gone.status >= 300:
            note = f"{found.note}, NOT deleted ({gone.status}); check by hand"
            return await self._left(key, f"{undone}: {note}")
        if found.left:
            return await self._left(key, f"{undone}: {found.note}")
        note = f"{found.note}, deleted" if gone is not None else found.note
        await self._tombstone(key, f"{undone}: {note}")
        log.warning("undo of %s: %s", key, note)
        return BranchReply(site, 204, {}, b"")

    async def _left(self, key: str, message: str) -> BranchReply:
        """Undone, but what the create made may be left: a tombstone and its 409."""
        log.warning("undo of %s: %s", key, message)
        body = await self._tombstone(key, message)
        return BranchReply(self.clock.site, 409, {"Content-Type": "application/json"}, body)

    async def _tombstone(self, key: str, message: str) -> bytes:
        """Remember ``key`` as undone (its 409 body, returned): a late arrival of its create
        is answered 409, never applied."""
        body = json.dumps(error_body(409, "Create Undone", message)).encode()
        headers = {"Content-Type": "application/json"}
        await asyncio.to_thread(
            self.registry.complete_apply, key, self.claims.owner, 409, body, headers
        )
        return body

    async def _delete_made(
        self,
        key: str,
        id_: str,
        delete: Callable[[str], Awaitable[BranchReply]],
        *,
        made_at: float,
    ) -> BranchReply:
        """DELETE what create ``key`` made (at ``made_at``, ``time.time()``): gone already is
        204; 400 or 409 (still being made) raise a 503 within ``Claims.undo_patience`` of
        ``made_at``, and are the answer past it (left for good: attached, locked)."""
        site = self.clock.site
        gone = await delete(id_)
        if gone.status == 404:
            return BranchReply(site, 204, {}, b"")
        made_ago = time.time() - made_at
        if gone.status in (400, 409) and made_ago < self.claims.undo_patience:
            # still being made (cinder: a volume 'creating'); for good past the patience
            raise Refused(
                503, f"{id_[:80]}, made by create {key[:80]}, cannot be deleted at {site} "
                f"yet ({gone.status}: still being made?); retry later"
            )  # fmt: skip
        return gone

    async def _claim(self, key: str) -> tuple[BranchReply | None, bool, float, float]:
        """Claim ``key`` for this proxy: (None, in doubt, since, until) when claimed, else
        (the answer to give, False, 0, 0). In doubt: taken over from a proxy that died
        applying it, or left in doubt by one that could not tell; since: when it was first
        claimed; until: when the claim before ended (the write was sent between)."""
        deadline = self.timer.monotonic() + self.claims.wait
        pause = 0.05
        while True:
            claim = await asyncio.to_thread(
                self.registry.claim_apply, key, self.claims.owner, self.claims.seconds
            )
            if claim.state is ClaimState.MINE:
                if claim.taken_over:
                    log.warning(
                        "write %s: taking over from a proxy that died applying it "
                        "(it may have reached the backend: in doubt)",
                        key,
                    )
                return None, claim.taken_over, claim.since, claim.until
            if claim.state is ClaimState.DONE:
                assert claim.answer is not None
                status, body, headers = claim.answer
                reply = BranchReply(
                    self.clock.site, status, {**headers, REPLAYED_HEADER: "1"}, body
                )
                return reply, False, 0.0, 0.0
            if self.timer.monotonic() > deadline:
                raise Refused(
                    503,
                    f"write {key[:80]} is being applied by another proxy of {self.clock.site}; "
                    "retry later",
                    title="Write In Progress",
                )
            await self.timer.sleep(pause)
            pause = min(pause * 2, 0.5)

    @contextlib.asynccontextmanager
    async def _set_lease(self, handle: str | None) -> AsyncIterator[None]:
        """Hold ``set:<handle>`` while the LWW check and the write run (no lease for a create)."""
        if handle is None:
            yield
            return
        name, owner = f"set:{handle}", self.claims.owner
        deadline = self.timer.monotonic() + self.claims.wait
        while not await asyncio.to_thread(
            self.registry.acquire, name, owner, self.claims.lease_seconds
        ):
            if self.timer.monotonic() > deadline:
                raise Refused(
                    503,
                    f"another proxy of {self.clock.site} is writing to {handle[:80]}; retry later",
                    title="Write In Progress",
                )
            await self.timer.sleep(0.05)
        try:
            yield
        finally:
            await asyncio.to_thread(self.registry.release, name, owner)

    async def _apply(self, handle: str | None, hlc: Hlc, send: SendBranch) -> BranchReply:
        if handle is not None:
            last = await asyncio.to_thread(self.registry.last_write, handle)
            if not lww_wins(hlc, last):
                assert last is not None
                return self._superseded(hlc, last)
        reply = await send()
        if 200 <= reply.status < 300 and handle is not None:
            await asyncio.to_thread(self.registry.set_last_write, handle, hlc)
        return reply

    def _superseded(self, hlc: Hlc, last: Hlc) -> BranchReply:
        message = (
            f"write stamped {hlc.encode()} lost to {last.encode()} at {self.clock.site} "
            "(last-writer-wins)"
        )
        body = json.dumps(error_body(409, SUPERSEDED, message)).encode()
        return BranchReply(self.clock.site, 409, {"Content-Type": "application/json"}, body)


def _sent(exc: BaseException) -> bool:
    """Whether a write that raised ``exc`` once sent may have reached its backend."""
    return not (isinstance(exc, SiteUnreachable) and exc.connecting)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return exc.message
    if isinstance(exc, SiteUnreachable):
        return exc.reason
    return f"{type(exc).__name__}: {exc}"[:300]


def _superseded(reply: BranchReply) -> bool:
    return reply.status == 409 and SUPERSEDED.encode() in reply.body
