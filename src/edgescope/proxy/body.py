"""Request bodies for multi-site calls: teed to concurrent branches, replayable for fallbacks.

Neighbours: ``server.py`` wraps the client's body stream in :class:`BodyTee` for ``&``
(every branch reads the same chunks as they arrive; memory is bounded by the queue depth)
or :class:`ReplayableBody` for ``|`` (the first attempt streams straight through while a
spool file records the bytes, so a fallback can send them again). A single-site call
streams the client's body directly and uses neither.

    tee = BodyTee(request.content.iter_chunked(CHUNK), branches=2)
    await asyncio.gather(send(tee.reader(0)), send(tee.reader(1)))
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterable, AsyncIterator

from edgescope.aio import spawn
from edgescope.errors import BodyTooLarge, ClientBodyFailed, ErrorCode

_EOF = b""
SPOOL_IN_MEMORY = 1024 * 1024
"""Bodies up to this size stay in memory when spooled; larger ones go to a temp file."""


class SpoolFull(ClientBodyFailed):
    """Every spool of this proxy together is at ``max_spool_total`` bytes (-> 503, retry)."""

    code = ErrorCode.BUSY


class SpoolBudget:
    """The proxy's bound on every spool together: how many at once, how many bytes.

    :meth:`hold` takes one of ``max_count`` places (None when all are taken); each hold
    then takes bytes from the shared ``max_bytes`` as the body arrives, and gives them back
    when closed.

        budget = SpoolBudget(16, 4 * 1024**3)
        hold = budget.hold()          # None: 16 spools already
        hold.take(65536)              # SpoolFull past 4 GiB in all
        hold.close()
    """

    def __init__(self, max_count: int, max_bytes: int) -> None:
        self.max_count, self.max_bytes = max_count, max_bytes
        self.count = 0
        self.bytes = 0
        self.refused = 0
        """Spools refused or cut off because the budget was full (count or bytes)."""

    def hold(self) -> SpoolHold | None:
        if self.count >= self.max_count:
            self.refused += 1
            return None
        self.count += 1
        return SpoolHold(self)


class SpoolHold:
    """One spool's share of a :class:`SpoolBudget`."""

    def __init__(self, budget: SpoolBudget) -> None:
        self._budget = budget
        self.bytes = 0
        self._open = True

    def take(self, size: int) -> None:
        budget = self._budget
        if budget.bytes + size > budget.max_bytes:
            budget.refused += 1
            raise SpoolFull(
                f"the bodies this proxy keeps to resend are at {budget.bytes} bytes "
                f"(max_spool_total {budget.max_bytes}); retry soon"
            )
        budget.bytes += size
        self.bytes += size

    def close(self) -> None:
        if self._open:
            self._open = False
            self._budget.count -= 1
            self._budget.bytes -= self.bytes
            self.bytes = 0


class ClientBody:
    """The client's request body, as a stream that remembers how it ended.

    A peer's failure while the client's body was still arriving (or after it broke off) is
    the client's doing: the sender then does not count it against the peer's breaker. Once
    broken, every later read raises again, so a fallback never sends a truncated body.
    """

    def __init__(
        self,
        source: AsyncIterable[bytes],
        idle_timeout: float | None = None,
        max_bytes: int | None = None,
        hold: SpoolHold | None = None,
    ) -> None:
        self._source = source.__aiter__()
        self._idle_timeout = idle_timeout
        self.max_bytes = max_bytes
        """Past this many bytes the body is refused (:class:`BodyTooLarge`): set when the
        proxy must keep the body to resend it."""
        self.hold = hold
        """The spool's share of the proxy's spool budget (:class:`SpoolFull` past it)."""
        self.size = 0
        self.complete = False
        self.error: BaseException | None = None

    def __aiter__(self) -> ClientBody:
        return self

    async def __anext__(self) -> bytes:
        if isinstance(self.error, BodyTooLarge | SpoolFull):
            raise self.error
        if self.error is not None:
            raise ClientBodyFailed("the client's request body broke off") from self.error
        try:
            chunk = await asyncio.wait_for(self._source.__anext__(), self._idle_timeout)
        except StopAsyncIteration:
            self.complete = True
            raise
        except TimeoutError as exc:
            self.error = exc
            raise ClientBodyFailed(
                f"the client sent nothing for {self._idle_timeout:g} s (client_idle_timeout)"
            ) from exc
        except Exception as exc:
            self.error = exc
            raise ClientBodyFailed("the client's request body broke off") from exc
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            self.error = BodyTooLarge(
                f"a body the proxy must keep to resend is over {self.max_bytes} bytes "
                "(max_spool_bytes)"
            )
            raise self.error
        if self.hold is not None:
            try:
                self.hold.take(len(chunk))
            except SpoolFull as exc:
                self.error = exc
                raise
        return chunk


class BodyTee:
    """One source stream, N readers, each seeing every chunk; the slowest reader sets the pace."""

    def __init__(self, source: AsyncIterable[bytes], branches: int, depth: int = 4) -> None:
        self._source = source
        self._queues: list[asyncio.Queue[bytes] | None] = [
            asyncio.Queue(maxsize=depth) for _ in range(branches)
        ]
        self._pump: asyncio.Task[None] | None = None
        self.error: BaseException | None = None

    def reader(self, index: int) -> AsyncIterator[bytes]:
        if self._pump is None:
            self._pump = spawn(self._run(), name="edgescope-body-tee")
        return self._read(index)

    async def _read(self, index: int) -> AsyncIterator[bytes]:
        queue = self._queues[index]
        assert queue is not None
        try:
            while (chunk := await queue.get()) != _EOF:
                yield chunk
            if self.error is not None:
                raise ConnectionResetError("the client's request body was cut short")
        finally:
            self._queues[index] = None  # a branch that stops reading no longer holds others back
            _drain(queue)

    async def _run(self) -> None:
        try:
            async for chunk in self._source:
                if not chunk:
                    continue
                for queue in list(self._queues):
                    if queue is not None:
                        await queue.put(chunk)
        except asyncio.CancelledError:
            self._abort(ConnectionResetError("body tee cancelled"))
            raise
        except Exception as exc:  # the client went away: every branch must see a short body
            self._abort(exc)
            return
        for queue in list(self._queues):
            if queue is not None:
                await queue.put(_EOF)

    def _abort(self, exc: BaseException) -> None:
        self.error = exc
        for queue in self._queues:
            if queue is not None:
                _drain(queue)
                queue.put_nowait(_EOF)

    async def aclose(self) -> None:
        if self._pump is not None and not self._pump.done():
            self._pump.cancel()


class ReplayableBody:
    """A body that can be iterated again: bytes already read are spooled (memory, then disk)."""

    def __init__(self, source: AsyncIterable[bytes], hold: SpoolHold | None = None) -> None:
        self._source = source.__aiter__()
        self._hold = hold
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        self._size = 0
        self._done = False

    async def replay(self) -> AsyncIterator[bytes]:
        """Everything spooled so far, then the rest of the source (spooling it as it passes)."""
        offset = 0
        while offset < self._size:
            self._spool.seek(offset)
            chunk = self._spool.read(min(256 * 1024, self._size - offset))
            offset += len(chunk)
            yield chunk
        while not self._done:
            try:
                chunk = await self._source.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            self._spool.seek(self._size)
            self._spool.write(chunk)
            self._size += len(chunk)
            yield chunk

    def close(self) -> None:
        self._spool.close()
        if self._hold is not None:
            self._hold.close()


async def read_capped(chunks: AsyncIterable[bytes], limit: int, idle: float) -> bytes | None:
    """A body read whole (an internal endpoint's), None past ``limit`` bytes. Raises
    TimeoutError when it pauses for over ``idle`` seconds: a sender that stalls never holds
    its connection for ever."""
    data = bytearray()
    source = chunks.__aiter__()
    while True:
        try:
            chunk = await asyncio.wait_for(source.__anext__(), idle)
        except StopAsyncIteration:
            return bytes(data)
        data += chunk
        if len(data) > limit:
            return None


def _drain(queue: asyncio.Queue[bytes]) -> None:
    while not queue.empty():
        queue.get_nowait()
