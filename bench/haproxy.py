"""Behind the site's HAProxy (issue 12): what the fast path costs, measured in one run.

``python -m bench.haproxy [--smoke] [--no-docs] [--no-write]`` (also run by ``python -m
bench``). Debian's HAProxy
runs the configuration ``edgescope.deploy.haproxy.site_config`` makes (what the testbed runs
and ``edgescope deploy haproxy`` prints) in front of one backend and real ``edgescope proxy
run`` processes:

1. a 1-DC call (no scope, a plain token and an OpenStack request id) through HAProxy with the
   fast path against the same HAProxy without it (a frontend of the same process with no
   rules): target p50 ratio <= 1.05;
2. a scoped call through HAProxy + edgescope against edgescope alone (the same proxy's
   listener called directly);
3. scoped throughput with two proxies of the site behind HAProxy against one.

Results go to ``bench/results/haproxy-<UTC>.json`` (machine and measured load included) and
to the "Behind the site's HAProxy" section of docs/benchmarks.md (bench/_haproxy_report.py),
unless a path failed: every call must answer 2xx (bench/_run.py).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench._harness import (
    Latency,
    free_port,
    process,
    run,
    session,
    site_key,
    throughput,
    timed_get,
)
from bench._tally import CALL_ERRORS, Tally, failed, first_failed
from edgescope.deploy.haproxy import frontend_lines, plan_fast_path, settings_of, site_config
from edgescope.proxy.carriers import new_request_id
from edgescope.proxy.config import ProxyConfig, parse_config
from edgescope.proxy.config_file import render_config


@dataclass(frozen=True)
class Counts:
    calls: int
    """Sequential calls per path (latency)."""
    rounds: int
    """Throughput rounds per path."""
    seconds: float
    """Throughput: seconds per path over all rounds."""
    cpu_calls: int
    cpu_turns: int


FULL = Counts(int(os.environ.get("BENCH_HAPROXY_N", "8000")), 8, 16.0, 2000, 6)
SMOKE = Counts(10, 1, 0.2, 10, 1)
"""``--smoke``: every path, a few calls each."""
CONCURRENCY = 32
SITE = "Paris"
TOKEN = "gAAAAA" + "x" * 180  # a fernet token's length, no piggyback: an unscoped call
UNSCOPED = {"X-Auth-Token": TOKEN, "X-OpenStack-Request-ID": new_request_id()}
SCOPED = {"X-Auth-Token": TOKEN, "X-Scope": "{image: Paris}"}
PROXY_HOSTS = ("127.0.0.1", "127.0.0.2")
"""Two proxies of one site: the same ports on two loopback addresses, as on two
controllers (``[haproxy] proxies``)."""


def proxy_config(ports: dict[str, int], backend: int, proxies: int) -> ProxyConfig:
    """The site's proxy config, ``[haproxy]`` included (one or two proxies)."""
    nodes = [f"ctl{i + 1}={host}" for i, host in enumerate(PROXY_HOSTS[:proxies])]
    return parse_config(
        {
            "site": SITE,
            "listen": f"127.0.0.1:{ports['main']}",
            "private_key": site_key(SITE)[0],
            "services": [
                {
                    "type": "image",
                    "port": ports["image"],
                    "backend": f"http://127.0.0.1:{backend}",
                }
            ],
            "breaker": {"probe_interval": 0},
            "haproxy": {
                "ports": {"image": ports[f"front{proxies}"]},
                "proxies": nodes,
                "check": "check inter 500ms fall 2 rise 1",
            },
        }
    )


def proxy_toml(host: str, ports: dict[str, int], backend: int) -> str:
    return render_config(
        {
            "site": SITE,
            "listen": f"{host}:{ports['main']}",
            "private_key": site_key(SITE)[0],
            "breaker": {"probe_interval": 0},
            "services": [
                {"type": "image", "port": ports["image"], "backend": f"http://127.0.0.1:{backend}"}
            ],
        }
    )


def haproxy_config(
    config: ProxyConfig, plain_port: int | None, stats_socket: Path | None = None
) -> str:
    """``site_config`` of the site, plus (``plain_port``) a frontend of the same process with
    no fast-path rules: plain HAProxy, the baseline."""
    socket_path = str(stats_socket) if stats_socket else None
    text = site_config(config, settings_of(config), bind_host="127.0.0.1", stats_socket=socket_path)
    if plain_port is not None:
        text += (
            f"\nfrontend image_plain\n    bind 127.0.0.1:{plain_port}\n"
            "    default_backend image_local\n"
        )
    return text


def answers_per_server(stats_socket: Path) -> dict[str, int]:
    """2xx answers each edgescope server gave through HAProxy (``show stat``, ``hrsp_2xx``)."""
    import csv
    import socket

    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(stats_socket))
        sock.sendall(b"show stat\n")
        text = b"".join(iter(lambda: sock.recv(65536), b"")).decode()
    rows = csv.DictReader(text.lstrip("# ").splitlines())
    return {
        row["svname"]: int(row["hrsp_2xx"] or 0)
        for row in rows
        if row["pxname"].startswith("edgescope_") and row["svname"] not in ("FRONTEND", "BACKEND")
    }


def rules_per_frontend(config: ProxyConfig) -> int:
    settings = settings_of(config)
    return len(frontend_lines(plan_fast_path(config, settings), settings))


@contextmanager
def running_haproxy(text: str, port: int) -> Iterator[int]:
    """HAProxy running ``text``; yields its PID."""
    folder = Path(tempfile.mkdtemp())
    path = folder / "haproxy.cfg"
    path.write_text(text)
    with process(["haproxy", "-db", "-f", str(path)], ready_json=False, wait_port=port) as (
        proc,
        _,
    ):
        yield proc.pid
    shutil.rmtree(folder, ignore_errors=True)


def cpu_ns(pid: int) -> int:
    """CPU time a process has used, in ns, summed over its threads (``schedstat``: exact,
    where ``/proc/<pid>/stat`` counts 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        total += int((task / "schedstat").read_text().split()[0])
    return total


async def alternating_latency(
    targets: dict[str, tuple[str, dict[str, str]]], n: int, warmup: int = 50
) -> dict[str, Latency]:
    """``n`` sequential calls per target, one target after the other call by call, the order
    rotating every turn: background load and position in the turn weigh on all alike."""
    names = list(targets)
    results = {name: Latency([]) for name in names}
    sessions = {name: session(1) for name in names}
    try:
        for turn in range(warmup + n):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                url, headers = targets[name]
                result = results[name]
                seconds = await timed_get(sessions[name], url, headers, result.tally)
                if seconds is not None and turn >= warmup:
                    result.samples.append(seconds)
    finally:
        for client in sessions.values():
            await client.close()
    return results


async def haproxy_cpu_per_call(
    pid: int, targets: dict[str, tuple[str, dict[str, str]]], calls: int, turns: int
) -> tuple[dict[str, float], dict[str, Tally]]:
    """HAProxy's own CPU time per call (µs) for each target, in alternating turns, and
    what the calls answered."""
    spent = dict.fromkeys(targets, 0)
    tallies = {name: Tally() for name in targets}
    async with session(1) as client:
        for _ in range(turns):
            for name, (url, headers) in targets.items():
                before = cpu_ns(pid)
                for _ in range(calls):
                    await timed_get(client, url, headers, tallies[name])
                spent[name] += cpu_ns(pid) - before
    return {name: ns / (calls * turns) / 1000 for name, ns in spent.items()}, tallies


@contextmanager
def running_proxy(host: str, ports: dict[str, int], backend: int) -> Iterator[None]:
    folder = Path(tempfile.mkdtemp())
    path = folder / "proxy.toml"
    path.write_text(proxy_toml(host, ports, backend))
    args = [sys.executable, "-c", "from edgescope.cli import main; main()", "proxy", "run",
            "--config", str(path), "--log-level", "WARNING"]  # fmt: skip
    with process(args):
        yield
    shutil.rmtree(folder, ignore_errors=True)


async def wait_routed(url: str, headers: dict[str, str], timeout: float = 15.0) -> None:
    """Until HAProxy's health check has seen the proxies up (a scoped call answers 200)."""
    deadline, last = time.monotonic() + timeout, "no call made"
    async with session(1) as client:
        while time.monotonic() < deadline:
            tally = Tally()
            try:
                async with client.get(url, headers=headers) as response:
                    if tally.answer(response.status, await response.read()):
                        return
            except CALL_ERRORS as exc:
                tally.exception(exc)
            last = str(tally.first_error)
            await asyncio.sleep(0.2)
    raise RuntimeError(f"HAProxy never routed a scoped call to edgescope at {url}: {last}")


def rps_rounds(
    targets: dict[str, tuple[str, dict[str, str]]], counts: Counts
) -> tuple[dict[str, float], dict[str, Tally]]:
    """Median throughput (2xx answers/s) over interleaved rounds (resists load spikes), and
    what the calls answered."""
    rounds: dict[str, list[float]] = {name: [] for name in targets}
    tallies = {name: Tally() for name in targets}
    for _ in range(counts.rounds):
        for name, (url, headers) in targets.items():
            seconds = counts.seconds / counts.rounds
            rate = asyncio.run(throughput(url, seconds, CONCURRENCY, headers))
            rounds[name].append(rate.rps)
            tallies[name].add(rate.tally)
    return {name: statistics.median(values) for name, values in rounds.items()}, tallies


PLAIN, FAST = "HAProxy, no fast path (plain), unscoped", "HAProxy with the fast path, unscoped"
ALONE, BEHIND = "edgescope alone, {image: Paris}", "HAProxy + edgescope, {image: Paris}"
PAIR = "HAProxy + 2 proxies of the site, {image: Paris}"
RATIOS = {  # name: (numerator row, denominator row, figure)
    "fast_path_p50": (FAST, PLAIN, "p50"),
    "fast_path_rps": (PLAIN, FAST, "rps"),
    "behind_haproxy_p50": (BEHIND, ALONE, "p50"),
    "behind_haproxy_rps": (ALONE, BEHIND, "rps"),
    "two_proxies_rps": (PAIR, BEHIND, "rps"),
}


def haproxy_figures(smoke: bool = False) -> dict[str, Any]:
    """Every figure of the section, measured in one run."""
    from bench._harness import sites

    counts = SMOKE if smoke else FULL
    ports = {k: free_port() for k in ("main", "image", "front1", "front2", "plain")}
    with ExitStack() as stack:
        _, info = stack.enter_context(sites(1))
        backend = info["ports"][0]
        one, two = proxy_config(ports, backend, 1), proxy_config(ports, backend, 2)
        for host in PROXY_HOSTS:
            stack.enter_context(running_proxy(host, ports, backend))
        front_pid = stack.enter_context(
            running_haproxy(haproxy_config(one, ports["plain"]), ports["front1"])
        )
        stats = Path(tempfile.mkdtemp()) / "haproxy.sock"
        stack.enter_context(running_haproxy(haproxy_config(two, None, stats), ports["front2"]))
        fast = f"http://127.0.0.1:{ports['front1']}/v2/images"
        both = f"http://127.0.0.1:{ports['front2']}/v2/images"
        for url in (fast, both):
            asyncio.run(wait_routed(url, SCOPED))
        latency_targets = {
            PLAIN: (f"http://127.0.0.1:{ports['plain']}/v2/images", UNSCOPED),
            FAST: (fast, UNSCOPED),
            ALONE: (f"http://127.0.0.1:{ports['image']}/v2/images", SCOPED),
            BEHIND: (fast, SCOPED),
        }
        warmup = 2 if smoke else 50
        lat = run(lambda: alternating_latency(latency_targets, counts.calls, warmup))
        unscoped = dict(list(latency_targets.items())[:2])
        cpu, cpu_tallies = run(
            lambda: haproxy_cpu_per_call(front_pid, unscoped, counts.cpu_calls, counts.cpu_turns)
        )
        rps, tallies = rps_rounds({**latency_targets, PAIR: (both, SCOPED)}, counts)
        split = answers_per_server(stats)
    for name, tally in tallies.items():  # a path's every call: latency, CPU, throughput
        if name in lat:
            tally.add(lat[name].tally)
        if name in cpu_tallies:
            tally.add(cpu_tallies[name])
    rows = [
        {
            "path": name,
            "p50": lat[name].p50 if name in lat else None,
            "p99": lat[name].p99 if name in lat else None,
            "rps": value,
            **tallies[name].as_json(),
        }
        for name, value in rps.items()
    ]
    return {
        "rows": rows,
        "ratios": ratios(rows),
        "rules": rules_per_frontend(one),
        "split": split,
        "haproxy_cpu_us": cpu,
    }


def ratios(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each ratio of two rows' figures; None when either row failed (no ratio of a failure)."""
    by = {row["path"]: row for row in rows}
    out: dict[str, float | None] = {}
    for name, (top, bottom, key) in RATIOS.items():
        a, b = by.get(top), by.get(bottom)
        if a is None or b is None or failed(a) or failed(b) or not a[key] or not b[key]:
            out[name] = None
        else:
            out[name] = a[key] / b[key]
    return out


def ratio_incomplete(rows: list[dict[str, Any]]) -> dict[str, str | None]:
    """Per ratio, why the rows it compares were not complete (None: they were)."""
    by = {row["path"]: row for row in rows}
    return {
        name: first_failed([by.get(top), by.get(bottom)])
        for name, (top, bottom, _) in RATIOS.items()
    }


if __name__ == "__main__":
    from bench._haproxy_report import main

    sys.exit(main())
