"""Shared benchmark plumbing: start server processes, generate load, summarise latencies.

Every server (backends, simulated sites, edgescope proxies, HAProxy, the HTTP-stack
candidates) runs as its own process, so the load generator (this process) does not share
an event loop with what it measures. Processes are stopped by PID.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from edgescope.proxy.keys import PREFIX, load_private, public_text

ROOT = Path(__file__).resolve().parent.parent


def site_key(site: str) -> tuple[str, str]:
    """A bench site's Ed25519 key pair, the same for the same name: (private, public)."""
    seed = hashlib.sha256(f"edgescope-bench-{site}".encode()).digest()
    private = PREFIX + base64.b64encode(seed).decode()
    return private, public_text(load_private(private).public_key())


def raise_fd_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@contextmanager
def process(
    args: list[str], *, ready_json: bool = True, wait_port: int | None = None
) -> Iterator[tuple[subprocess.Popen[str], dict[str, Any]]]:
    """Run ``args``; yield (process, first stdout JSON line); kill it afterwards."""
    proc = subprocess.Popen(
        args,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        info: dict[str, Any] = {}
        if ready_json:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{args[:4]} exited before listening")
            info = json.loads(line)
        if wait_port is not None:
            wait_for_port(wait_port)
        yield proc, info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def sites(
    count: int = 1, delay_ms: float = 0, slowest_ms: float = 0, black_hole: bool = False
) -> Any:
    args = [
        sys.executable,
        "-m",
        "bench._servers",
        "sites",
        "--count",
        str(count),
        "--delay-ms",
        str(delay_ms),
        "--slowest-ms",
        str(slowest_ms),
    ]
    return process(args + (["--black-hole"] if black_hole else []))


def site_toml(
    site: str,
    *,
    backend: str,
    peers: Mapping[str, str] = {},
    read_timeout: float = 30.0,
    extra: str = "",
    connect_timeout: float = 1.0,
) -> str:
    lines = [
        f'site = "{site}"',
        'listen = "127.0.0.1:0"',
        f'private_key = "{site_key(site)[0]}"',
        extra,
        "[[services]]",
        'type = "image"',
        'prefix = "/image"',
        f'backend = "{backend}"',
    ]
    for name, url in peers.items():
        lines += [
            "[[peers]]",
            f'name = "{name}"',
            f'url = "{url}"',
            f'public_key = "{site_key(name)[1]}"',
            f"connect_timeout = {connect_timeout}",
            f"read_timeout = {read_timeout}",
        ]
    return "\n".join(lines) + "\n"


@contextmanager
def edgescope(toml: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """An ``edgescope proxy run`` process; yields (process, its URL)."""
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(toml)
    args = [
        sys.executable,
        "-c",
        "from edgescope.cli import main; main()",
        "proxy",
        "run",
        "--config",
        f.name,
        "--log-level",
        "WARNING",
    ]
    try:
        with process(args) as (proc, info):
            listen = info["listen"].split("main=")[1].split(",")[0]
            yield proc, f"http://{listen}"
    finally:
        os.unlink(f.name)


def rss_mb(proc: subprocess.Popen[str]) -> float:
    return float(psutil.Process(proc.pid).memory_info().rss) / 2**20


@dataclass
class Latency:
    samples: list[float]
    errors: int = 0
    """Calls that did not answer 200 (not in ``samples``)."""

    def pct(self, q: float) -> float:
        if not self.samples:
            return float("nan")
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000

    @property
    def p50(self) -> float:
        return self.pct(50)

    @property
    def p99(self) -> float:
        return self.pct(99)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples) * 1000


async def latency(
    url: str,
    n: int,
    headers: Mapping[str, str] | None = None,
    warmup: int = 50,
) -> Latency:
    """``n`` sequential GETs on one keep-alive connection (non-200 answers are counted)."""
    connector = aiohttp.TCPConnector(limit=1)
    errors = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        samples = []
        for i in range(warmup + n):
            started = time.perf_counter()
            async with session.get(url, headers=headers) as response:
                await response.read()
            if response.status != 200:
                errors += 1
            elif i >= warmup:
                samples.append(time.perf_counter() - started)
        return Latency(samples, errors)


async def interleaved_latency(
    targets: Mapping[str, tuple[str, Mapping[str, str] | None]],
    n: int,
    rounds: int = 10,
    warmup: int = 30,
) -> dict[str, Latency]:
    """``n`` sequential GETs per target, in ``rounds`` interleaved batches.

    The machine is shared: interleaving spreads any background load evenly over every
    target, so the differences between targets stay meaningful.
    """
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for name in targets
    }
    samples: dict[str, list[float]] = {name: [] for name in targets}
    errors = dict.fromkeys(targets, 0)
    try:
        for round_no in range(rounds + 1):
            for name, (url, headers) in targets.items():
                batch = warmup if round_no == 0 else n // rounds
                for _ in range(batch):
                    started = time.perf_counter()
                    async with sessions[name].get(url, headers=headers) as response:
                        await response.read()
                    if response.status != 200:
                        errors[name] += 1  # counted and reported, never hidden in the times
                    elif round_no:
                        samples[name].append(time.perf_counter() - started)
    finally:
        for session in sessions.values():
            await session.close()
    return {name: Latency(values, errors[name]) for name, values in samples.items()}


async def throughput(
    url: str, seconds: float, concurrency: int, headers: Mapping[str, str] | None = None
) -> float:
    """Requests per second with ``concurrency`` keep-alive clients."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    done = 0
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < deadline:
                async with session.get(url, headers=headers) as response:
                    await response.read()
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.perf_counter() - started)


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())
