"""Figure 2: ``&`` fan-out to N = 1, 10, 100, 1000 sites.

Every simulated site is a real listening endpoint; one process hosts them all. Each site
answers after 5 ms except the slowest, after 20 ms. The figure is the fan-out latency
against the slowest site's own latency (measured directly, same run), the proxy's CPU time
per branch (its user + system time over the sequential fan-outs, divided by calls × sites),
and its memory per in-flight fan-out (RSS growth while K fan-outs are in flight, divided by K).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import psutil

from bench._harness import (
    edgescope,
    latency,
    minus,
    raise_fd_limit,
    run,
    session,
    site_toml,
    sites,
    timed_get,
)
from bench._results import LoadMeter, print_and_keep
from bench._tally import Tally

WIDTHS = (1, 10, 100, 1000)
DELAY_MS, SLOWEST_MS = 5.0, 20.0


def scope_for(width: int) -> str:
    return "{image: " + "&".join(f"s{i}" for i in range(width)) + "}"


async def peak_rss_during(
    proxy_pid: int, url: str, headers: dict[str, str], in_flight: int
) -> tuple[float, float, Tally]:
    """(baseline RSS, peak RSS in MiB, the calls' tally) while ``in_flight`` fan-outs run
    at once."""
    proc = psutil.Process(proxy_pid)
    baseline = proc.memory_info().rss
    peak = baseline
    tally = Tally()
    async with session(0) as client:
        tasks = asyncio.gather(*(timed_get(client, url, headers, tally) for _ in range(in_flight)))
        while not tasks.done():
            peak = max(peak, proc.memory_info().rss)
            await asyncio.sleep(0.002)
        await tasks
    return baseline / 2**20, peak / 2**20, tally


def fanout_figures(smoke: bool = False) -> list[dict[str, Any]]:
    raise_fd_limit()
    return [one_width(width, smoke) for width in WIDTHS]


def one_width(width: int, smoke: bool = False, loop: str = "auto") -> dict[str, Any]:
    with sites(width, DELAY_MS, SLOWEST_MS) as (_, info):
        ports = info["ports"]
        peers = {f"s{i}": f"http://127.0.0.1:{port}" for i, port in enumerate(ports)}
        toml = site_toml(  # generous connect timeout: 1000 connects at once on 2 cores
            "Paris",
            connect_timeout=10.0,
            backend=f"http://127.0.0.1:{ports[0]}",
            peers=peers,
            # The scope names every site: over the defaults (64 sites per call, 128 per
            # scope, 4 KiB), which guard a real site against a scope that is too wide.
            extra=f"[limits]\nmax_fanout = {width}\nmax_scope_sites = {max(width, 128)}\n"
            "max_scope_bytes = 65536\n[breaker]\nprobe_interval = 0",
        )
        with edgescope(toml, loop) as (proc, url):
            headers = {"X-Scope": scope_for(width)}
            n = 1 if smoke else 40 if width <= 100 else 10
            warmup = 0 if smoke else 2
            slowest_url = f"http://127.0.0.1:{ports[-1]}/image/items"
            slowest = run(lambda: latency(slowest_url, n, warmup=0 if smoke else 3))
            cpu_before = psutil.Process(proc.pid).cpu_times()
            started = time.perf_counter()
            fan = run(lambda: latency(f"{url}/image/items", n, headers, warmup=warmup))
            elapsed = time.perf_counter() - started
            cpu_after = psutil.Process(proc.pid).cpu_times()
            cpu_seconds = (cpu_after.user + cpu_after.system) - (
                cpu_before.user + cpu_before.system
            )
            in_flight = 1 if smoke else 20 if width <= 100 else 2
            base, peak, flight = run(
                lambda: peak_rss_during(proc.pid, f"{url}/image/items", headers, in_flight)
            )
    calls = Tally()
    for tally in (fan.tally, flight):
        calls.add(tally)
    return {
        "width": width,
        "loop": loop,
        "slowest_p50": slowest.p50,
        "fanout_p50": fan.p50,
        "fanout_p99": fan.p99,
        "added_p50": minus(fan.p50, slowest.p50),
        "proxy_cpu_ms_per_branch": cpu_seconds * 1000 / ((n + warmup) * width),
        "rss_base": base,
        "mem_per_fanout_kb": (peak - base) * 1024 / in_flight,
        "in_flight": in_flight,
        "seconds": elapsed,
        "slowest_alone": slowest.tally.as_json(),
        "in_flight_calls": flight.as_json(),
        **calls.as_json(),
        # the baseline is part of the figure: the figure fails with it
        "failed": calls.incomplete() or baseline_failed(slowest.tally),
    }


def baseline_failed(tally: Tally) -> str | None:
    why = tally.incomplete()
    return None if why is None else f"the slowest site alone (baseline): {why}"


def main(argv: list[str] | None = None) -> None:
    """``python -m bench.fanout --widths 100 1000 --loop asyncio uvloop --out F.json``: the
    figure for some widths, one proxy per (width, loop), with the load of the run."""
    parser = argparse.ArgumentParser(prog="python -m bench.fanout")
    parser.add_argument("--widths", type=int, nargs="+", default=list(WIDTHS))
    parser.add_argument("--loop", nargs="+", default=["auto"])
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    raise_fd_limit()
    meter = LoadMeter()
    rows = [one_width(width, loop=loop) for width in args.widths for loop in args.loop]
    load = meter.stop()
    result = {"rows": rows, "load": {**dataclasses.asdict(load), "sentence": load.sentence()}}
    print_and_keep(result, args.out)


if __name__ == "__main__":
    main()
