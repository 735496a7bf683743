"""The garbage collector's share of a wide ``&`` (issue 23), default against tuned.

    python -m bench.gc_fanout --width 100 --calls 30 --out bench/results/gc-fanout-<time>.json

One proxy (:class:`~edgescope.proxy.server.SiteProxy`, in this process, as ``proxy run``
serves it) fans ``&`` out to ``--width`` real loopback sites; a client in the same process
makes ``--calls`` sequential calls, first with Python's default collector, then after
:func:`edgescope.aio.tune_gc` (what ``proxy run`` does once started). For each: the
collections per call by generation (load-free: they follow allocations, not time), this
thread's CPU time spent collecting and in total, per branch (loaded machine: CPU time is
inflated by other work, compare within a run). Nothing here is a test.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench._harness import raise_fd_limit, site_toml, sites
from bench._results import LoadMeter, print_and_keep
from edgescope.aio import tune_gc
from edgescope.proxy.config import load_config
from edgescope.proxy.server import SiteProxy


class _GcClock:
    """CPU time (this thread's) inside collections, and their count per generation."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.collections = [0, 0, 0]
        self._began = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.thread_time()
            return
        self.seconds += time.thread_time() - self._began
        self.collections[info["generation"]] += 1


async def _calls(session: aiohttp.ClientSession, url: str, scope: str, n: int) -> None:
    for _ in range(n):
        async with session.get(url, headers={"X-Scope": scope}) as answer:
            await answer.read()
            if answer.status != 200:
                raise RuntimeError(f"the fan-out answered {answer.status}")


async def measure(width: int, calls: int) -> list[dict[str, Any]]:
    rows = []
    with sites(width) as (_, info), tempfile.TemporaryDirectory() as tmp:
        ports = info["ports"]
        peers = {f"s{i}": f"http://127.0.0.1:{port}" for i, port in enumerate(ports)}
        extra = (
            f"[breaker]\nprobe_interval = 0\n[limits]\nmax_fanout = {width}\n"
            f"max_scope_sites = {max(width, 128)}\nmax_scope_bytes = 65536\n"
        )
        path = Path(tmp) / "Paris.toml"
        path.write_text(
            site_toml(
                "Paris",
                backend=f"http://127.0.0.1:{ports[0]}",
                peers=peers,
                extra=extra,
                connect_timeout=30.0,
                read_timeout=120.0,
            )
        )
        proxy = SiteProxy(load_config(path))
        await proxy.start()
        scope = "{image: " + "&".join(f"s{i}" for i in range(width)) + "}"
        url = proxy.url + "/image/items"
        threshold = gc.get_threshold()
        try:
            async with aiohttp.ClientSession() as session:
                await _calls(session, url, scope, 3)  # warm-up
                for tuned in (False, True):
                    if tuned:
                        tune_gc()
                    clock = _GcClock()
                    gc.callbacks.append(clock)
                    began = time.thread_time()
                    await _calls(session, url, scope, calls)
                    cpu = time.thread_time() - began
                    gc.callbacks.remove(clock)
                    branches = calls * width
                    rows.append(
                        {
                            "gc": "tuned (tune_gc)" if tuned else "default",
                            "threshold": list(gc.get_threshold()),
                            "frozen_objects": gc.get_freeze_count(),
                            "collections_per_call": [c / calls for c in clock.collections],
                            "gc_cpu_us_per_branch": clock.seconds * 1e6 / branches,
                            "cpu_us_per_branch": cpu * 1e6 / branches,
                            "gc_share": clock.seconds / cpu if cpu else 0.0,
                        }
                    )
        finally:
            gc.unfreeze()
            gc.set_threshold(*threshold)
            await proxy.stop()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.gc_fanout")
    parser.add_argument("--width", type=int, default=100)
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    raise_fd_limit()
    meter = LoadMeter()
    rows = asyncio.run(measure(args.width, args.calls))
    load = meter.stop()
    result = {
        "width": args.width,
        "calls": args.calls,
        "rows": rows,
        "load": {**dataclasses.asdict(load), "sentence": load.sentence()},
    }
    print_and_keep(result, args.out)


if __name__ == "__main__":
    main()
