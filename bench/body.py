"""Figure 4: how an ``&`` sends one request body to several sites: tee vs spool-first.

In-process, on the proxy's own classes (``edgescope.proxy.body``): a 256 MB body in 256 KiB
chunks goes to 2 branches that each hash what they receive (standing in for the upload).
*Tee* (``BodyTee``) feeds both branches as chunks arrive; *spool first*
(``ReplayableBody`` read to the end, then replayed to both) is what a proxy must do when
it cannot stream. Reported: wall time, when the last branch got its first byte (a branch's
upload can only start then), and peak RSS growth; same run.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import Any

import psutil

from edgescope.proxy.body import BodyTee, ReplayableBody

SIZE = 256 * 1024 * 1024
SMOKE_SIZE = 4 * 1024 * 1024
CHUNK = 256 * 1024


async def source(size: int) -> AsyncIterator[bytes]:
    block = os.urandom(CHUNK)
    for _ in range(size // CHUNK):
        yield block
        await asyncio.sleep(0)  # a network source yields to the loop between chunks


FIRST_BYTE: list[float] = []


async def consume(body: AsyncIterable[bytes], *, branch: bool = True) -> int:
    digest, size = hashlib.sha256(), 0
    async for chunk in body:
        if size == 0 and branch:
            FIRST_BYTE.append(time.perf_counter())
        digest.update(chunk)
        size += len(chunk)
    return size


async def tee(size: int) -> list[int]:
    body = BodyTee(source(size), 2)
    return list(await asyncio.gather(consume(body.reader(0)), consume(body.reader(1))))


async def spool_first(size: int) -> list[int]:
    body = ReplayableBody(source(size))
    try:
        await consume(body.replay(), branch=False)
        return list(await asyncio.gather(consume(body.replay()), consume(body.replay())))
    finally:
        body.close()


async def measure(strategy: Callable[[int], Awaitable[list[int]]], size: int) -> dict[str, Any]:
    proc = psutil.Process()
    baseline = peak = proc.memory_info().rss
    FIRST_BYTE.clear()
    started = time.perf_counter()
    task = asyncio.ensure_future(strategy(size))
    while not task.done():
        peak = max(peak, proc.memory_info().rss)
        await asyncio.sleep(0.005)
    sizes = await task
    wrong = sizes != [size, size]
    return {
        "seconds": time.perf_counter() - started,
        "rss_mb": (peak - baseline) / 2**20,
        "first_byte_s": max(FIRST_BYTE, default=started) - started,
        "size": size,
        "failed": f"the branches received {sizes} bytes, not {size} each" if wrong else None,
    }


def body_figures(smoke: bool = False) -> list[dict[str, Any]]:
    rows = []
    for name, strategy in (
        ("tee (BodyTee), used for a flat &", tee),
        ("spool first, then replay to both", spool_first),
    ):
        size = SMOKE_SIZE if smoke else SIZE
        rows.append({"strategy": name, **asyncio.run(measure(strategy, size))})
    return rows
