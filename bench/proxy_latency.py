"""Figure 1: added latency per hop and throughput: direct vs HAProxy vs edgescope.

HAProxy (Debian package, one thread, header-based routing on X-Scope -- the proof of
concept's data plane) and edgescope (one process, one event loop) front the same backend;
every figure is measured in the same run, so ratios are meaningful even on a busy machine.
Also the HTTP-stack choice: the same minimal forwarder on aiohttp vs uvicorn+httpx vs
granian+httpx.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import (
    edgescope,
    free_port,
    interleaved_latency,
    minus,
    process,
    run,
    site_toml,
    sites,
    throughput,
    tls_tables,
    wait_for_port,
)
from bench.verdicts import SCOPED, SCOPED_ASYNCIO, TWO_PROXIES, TWO_PROXIES_TLS


@dataclass(frozen=True)
class Counts:
    calls: int
    """Sequential keep-alive GETs per path (latency)."""
    rounds: int
    """Interleaved latency rounds."""
    warmup: int
    seconds: float
    """Throughput: seconds per path, over all its rounds."""
    rps_rounds: int


FULL = Counts(calls=1500, rounds=10, warmup=30, seconds=3.0, rps_rounds=6)
SMOKE = Counts(calls=10, rounds=1, warmup=2, seconds=0.1, rps_rounds=1)
"""``--smoke``: every path, a few calls each."""
N_LATENCY = FULL.calls
CONCURRENCY = 16

HAPROXY_CFG = """
global
    nbthread 1
    maxconn 4096
defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    option http-keep-alive
frontend edge
    bind 127.0.0.1:{port}
    use_backend corte if {{ req.hdr(x-scope) -m sub Corte }}
    default_backend paris
backend paris
    http-reuse always
    server paris 127.0.0.1:{backend}
backend corte
    http-reuse always
    server corte 127.0.0.1:{backend2}
"""


def measure_all(
    targets: dict[str, tuple[str, dict[str, str] | None]], smoke: bool = False
) -> list[dict[str, Any]]:
    """Interleaved latency for every target, then throughput target by target. A row whose
    calls did not all answer 2xx carries why in ``failed`` (bench/_tally.py)."""
    counts = SMOKE if smoke else FULL
    lat = run(lambda: interleaved_latency(targets, counts.calls, counts.rounds, counts.warmup))
    # Throughput in interleaved rounds too; the median round resists load spikes.
    rates: dict[str, list[float]] = {name: [] for name in targets}
    tallies = {name: lat[name].tally for name in targets}
    for _ in range(counts.rps_rounds):
        for name, (url, headers) in targets.items():
            seconds = counts.seconds / counts.rps_rounds
            rate = asyncio.run(throughput(url, seconds, CONCURRENCY, headers))
            rates[name].append(rate.rps)
            tallies[name].add(rate.tally)
    rows = [
        {
            "path": name,
            "p50": lat[name].p50,
            "p99": lat[name].p99,
            "rps": statistics.median(rates[name]),
            **tallies[name].as_json(),
        }
        for name in targets
    ]
    base = rows[0]
    for row in rows:
        row["added_p50"] = minus(row["p50"], base["p50"])
        row["added_p99"] = minus(row["p99"], base["p99"])
    return rows


def latency_figures(smoke: bool = False) -> list[dict[str, Any]]:
    with ExitStack() as stack:
        _, info = stack.enter_context(sites(2))
        backend, backend2 = info["ports"]
        targets: dict[str, tuple[str, dict[str, str] | None]] = {
            "direct to backend": (f"http://127.0.0.1:{backend}/image/items", None)
        }
        if shutil.which("haproxy"):
            port = free_port()
            cfg = Path(tempfile.mkdtemp()) / "haproxy.cfg"
            cfg.write_text(HAPROXY_CFG.format(port=port, backend=backend, backend2=backend2))
            stack.enter_context(
                process(["haproxy", "-f", str(cfg), "-db"], ready_json=False, wait_port=port)
            )
            targets["HAProxy 1 thread, X-Scope header routing"] = (
                f"http://127.0.0.1:{port}/image/items",
                {"X-Scope": "{image: Corte}"},
            )
        args = [
            sys.executable,
            "-m",
            "bench._servers",
            "forward-aiohttp",
            "--backend",
            f"http://127.0.0.1:{backend}",
        ]
        _, fwd = stack.enter_context(process(args))
        targets["minimal aiohttp forwarder (floor for an aiohttp proxy)"] = (
            f"http://127.0.0.1:{fwd['ports'][0]}/image/items",
            None,
        )
        # Each site knows the other by its URL and public key, as deployed: Corte answers
        # Paris's signed hop only because Paris is one of its peers. The plain pair runs the
        # default loop (uvloop when installed); one more Paris runs asyncio's own loop, and
        # one more pair talks over mutual TLS on peer listeners, as deployed (what TLS costs).
        pki = Path(tempfile.mkdtemp())
        pairs = {
            "": ("auto", False),
            "asyncio": ("asyncio", False),
            "tls": ("auto", True),
        }
        urls: dict[str, str] = {}
        for tag, (loop, tls) in pairs.items():
            ports = {"Paris": free_port(), "Corte": free_port()}
            peer_ports = {"Paris": free_port(), "Corte": free_port()}
            scheme, dial = ("https", peer_ports) if tls else ("http", ports)
            backends = {"Paris": backend, "Corte": backend2}
            # the asyncio Paris sends its hops to the plain pair's Corte
            sites_here = ("Paris",) if tag == "asyncio" else ("Corte", "Paris")
            for site in sites_here:
                other = "Corte" if site == "Paris" else "Paris"
                target = (
                    urls["Corte"] if tag == "asyncio" else f"{scheme}://127.0.0.1:{dial[other]}"
                )
                stack.enter_context(
                    edgescope(
                        site_toml(
                            site,
                            backend=f"http://127.0.0.1:{backends[site]}",
                            peers={other: target},
                            extra=(tls_tables(pki, site, peer_ports[site]) if tls else "")
                            + "[breaker]\nprobe_interval = 0",
                            listen=f"127.0.0.1:{ports[site]}",
                        ),
                        loop=loop,
                    )
                )
                if not tag:
                    urls[site] = f"http://127.0.0.1:{ports[site]}"
            urls[tag or "plain"] = f"http://127.0.0.1:{ports['Paris']}/image/items"
        url = urls["plain"]
        targets["edgescope, no scope (local)"] = (url, None)
        targets[SCOPED] = (url, {"X-Scope": "{image: Paris}"})
        targets[SCOPED_ASYNCIO] = (urls["asyncio"], {"X-Scope": "{image: Paris}"})
        targets[TWO_PROXIES] = (url, {"X-Scope": "{image: Corte}"})
        targets[TWO_PROXIES_TLS] = (urls["tls"], {"X-Scope": "{image: Corte}"})
        return measure_all(targets, smoke)


def stack_figures(smoke: bool = False) -> list[dict[str, Any]]:
    """The same minimal streaming forwarder on three stacks, against one backend."""
    with ExitStack() as stack:
        _, info = stack.enter_context(sites(1))
        backend = f"http://127.0.0.1:{info['ports'][0]}"
        targets: dict[str, tuple[str, dict[str, str] | None]] = {
            "direct to backend": (backend + "/image/items", None)
        }
        candidates = [
            ("aiohttp server + aiohttp client", ["forward-aiohttp"]),
            ("uvicorn + httpx", ["forward-asgi", "--server", "uvicorn"]),
            ("granian + httpx", ["forward-asgi", "--server", "granian"]),
        ]
        for name, mode in candidates:
            args = [sys.executable, "-m", "bench._servers", *mode, "--backend", backend]
            _, fwd = stack.enter_context(process(args))
            wait_for_port(fwd["ports"][0])
            targets[name] = (f"http://127.0.0.1:{fwd['ports'][0]}/image/items", None)
        return measure_all(targets, smoke)
