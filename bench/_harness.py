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
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from bench._tally import CALL_ERRORS, TIMEOUT, Tally, truncated
from edgescope.proxy.config_file import render_config
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
    """Run ``args``; yield (process, first stdout JSON line); kill it afterwards. A process
    that exits before it is ready raises RuntimeError with the end of its stderr."""
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=log,
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
                    proc.wait(timeout=5)
                    log.seek(0)
                    tail = truncated(log.read()[-2000:], 400)
                    raise RuntimeError(f"{' '.join(args[:5])} exited before listening: {tail}")
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
            if proc.stdout is not None:
                proc.stdout.close()


def free_port() -> int:
    """A loopback port free now (for a process that must be named before it starts)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    listen: str = "127.0.0.1:0",
    read_timeouts: Mapping[str, float] = {},
) -> str:
    """A bench site's proxy config: its own key, and each peer's URL and public key (as
    every deployed site lists its peers: a proxy answers a hop only from a peer it knows);
    ``read_timeouts`` overrides ``read_timeout`` for some peers; ``extra``: more TOML (keys
    and tables), merged in. Written by the one writer of proxy TOML (``config_file``)."""
    doc: dict[str, Any] = {
        "site": site,
        "listen": listen,
        "private_key": site_key(site)[0],
        **tomllib.loads(extra),
        "services": [{"type": "image", "prefix": "/image", "backend": backend}],
    }
    if peers:
        doc["peers"] = [
            {
                "name": name,
                "url": url,
                "public_key": site_key(name)[1],
                "connect_timeout": connect_timeout,
                "read_timeout": read_timeouts.get(name, read_timeout),
            }
            for name, url in peers.items()
        ]
    return render_config(doc)


def tls_tables(folder: Path, site: str, peer_port: int) -> str:
    """``peer_listen`` on ``peer_port`` and a ``[tls]`` table for ``site`` (certificates of one
    testbed CA in ``folder``, made once): its peers reach it over mutual TLS, as deployed.
    Goes in ``site_toml``'s ``extra`` (its first line is a top-level key)."""
    from edgescope.testbed.layout import SitePlan
    from edgescope.testbed.pki import Pki

    security = Pki(folder).ensure([SitePlan(site, 1, folder / site)])[site]
    return (
        f'peer_listen = "127.0.0.1:{peer_port}"\n[tls]\n'
        f'cert_file = "{security.cert_file}"\nkey_file = "{security.tls_key_file}"\n'
        f'ca_file = "{security.ca_file}"\n'
    )


@contextmanager
def edgescope(toml: str, loop: str = "auto") -> Iterator[tuple[subprocess.Popen[str], str]]:
    """An ``edgescope proxy run --loop <loop>`` process; yields (process, its URL). ``auto``
    is what a deployed proxy runs: uvloop when installed (docs/design.md "Hot path")."""
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
        "--loop",
        loop,
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
    """Seconds per 2xx call after the warm-up."""
    tally: Tally = field(default_factory=Tally)
    """Every call, warm-up included: 2xx answers apart from errors (not in ``samples``)."""

    def pct(self, q: float) -> float | None:
        """The ``q``-th percentile in ms; None with no 2xx sample."""
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))] * 1000

    @property
    def p50(self) -> float | None:
        return self.pct(50)

    @property
    def p99(self) -> float | None:
        return self.pct(99)

    @property
    def errors(self) -> int:
        return self.tally.errors


def minus(a: float | None, b: float | None) -> float | None:
    """``a - b``, None when either is unknown (never NaN)."""
    return None if a is None or b is None else a - b


async def timed_get(
    session: aiohttp.ClientSession, url: str, headers: Mapping[str, str] | None, tally: Tally
) -> float | None:
    """One GET, counted in ``tally``; its seconds when it answered 2xx, else None."""
    started = time.perf_counter()
    try:
        async with session.get(url, headers=headers) as response:
            body = await response.read()
    except CALL_ERRORS as exc:
        tally.exception(exc)
        return None
    elapsed = time.perf_counter() - started
    return elapsed if tally.answer(response.status, body) else None


def session(limit: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit), timeout=TIMEOUT)


async def latency(
    url: str,
    n: int,
    headers: Mapping[str, str] | None = None,
    warmup: int = 50,
) -> Latency:
    """``n`` sequential GETs on one keep-alive connection (errors are counted, not timed)."""
    tally = Tally()
    samples = []
    async with session(1) as client:
        for i in range(warmup + n):
            seconds = await timed_get(client, url, headers, tally)
            if seconds is not None and i >= warmup:
                samples.append(seconds)
    return Latency(samples, tally)


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
    sessions = {name: session(1) for name in targets}
    results = {name: Latency([]) for name in targets}
    try:
        for round_no in range(rounds + 1):
            for name, (url, headers) in targets.items():
                batch = warmup if round_no == 0 else max(1, n // rounds)
                for _ in range(batch):
                    result = results[name]
                    seconds = await timed_get(sessions[name], url, headers, result.tally)
                    if seconds is not None and round_no:
                        result.samples.append(seconds)
    finally:
        for client in sessions.values():
            await client.close()
    return results


@dataclass(frozen=True)
class Rate:
    """Throughput of one path: 2xx answers per second, errors apart."""

    rps: float
    """2xx answers per second (errors never count)."""
    tally: Tally
    seconds: float
    """How long the clients ran."""


async def throughput(
    url: str, seconds: float, concurrency: int, headers: Mapping[str, str] | None = None
) -> Rate:
    """2xx answers per second with ``concurrency`` keep-alive clients; errors counted apart."""
    tally = Tally()
    async with session(concurrency) as client:
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            while time.perf_counter() < deadline:
                await timed_get(client, url, headers, tally)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        return Rate(tally.ok / elapsed, tally, elapsed)


def run(coro_fn: Callable[[], Any]) -> Any:
    return asyncio.run(coro_fn())
