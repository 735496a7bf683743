"""Behind the site's HAProxy (issue 12): what the fast path costs, measured in one run.

``python -m bench.haproxy [--no-write]`` (also run by ``python -m bench``). Debian's HAProxy
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
to the "Behind the site's HAProxy" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import _results
from bench._harness import Latency, process, run, site_key, throughput
from bench.verdicts import describe, haproxy_verdicts
from edgescope.deploy.haproxy import frontend_lines, plan_fast_path, settings_of, site_config
from edgescope.proxy.carriers import new_request_id
from edgescope.proxy.config import ProxyConfig, parse_config

N_LATENCY = int(os.environ.get("BENCH_HAPROXY_N", "8000"))
ROUNDS = 8
SECONDS = 16.0
CONCURRENCY = 32
START, END = "<!-- haproxy-bench:start -->", "<!-- haproxy-bench:end -->"
SITE = "Paris"
TOKEN = "gAAAAA" + "x" * 180  # a fernet token's length, no piggyback: an unscoped call
UNSCOPED = {"X-Auth-Token": TOKEN, "X-OpenStack-Request-ID": new_request_id()}
SCOPED = {"X-Auth-Token": TOKEN, "X-Scope": "{image: Paris}"}
PROXY_HOSTS = ("127.0.0.1", "127.0.0.2")
"""Two proxies of one site: the same ports on two loopback addresses, as on two
controllers (``[haproxy] proxies``)."""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
    return "\n".join(
        [
            f'site = "{SITE}"',
            f'listen = "{host}:{ports["main"]}"',
            f'private_key = "{site_key(SITE)[0]}"',
            "[breaker]",
            "probe_interval = 0",
            "[[services]]",
            'type = "image"',
            f"port = {ports['image']}",
            f'backend = "http://127.0.0.1:{backend}"',
            "",
        ]
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
    import aiohttp

    names = list(targets)
    samples: dict[str, list[float]] = {name: [] for name in names}
    errors = dict.fromkeys(names, 0)
    sessions = {
        name: aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) for name in names
    }
    try:
        for turn in range(warmup + n):
            shift = turn % len(names)
            for name in names[shift:] + names[:shift]:
                url, headers = targets[name]
                started = time.perf_counter()
                async with sessions[name].get(url, headers=headers) as response:
                    await response.read()
                if response.status != 200:
                    errors[name] += 1
                elif turn >= warmup:
                    samples[name].append(time.perf_counter() - started)
    finally:
        for session in sessions.values():
            await session.close()
    return {name: Latency(values, errors[name]) for name, values in samples.items()}


async def haproxy_cpu_per_call(
    pid: int, targets: dict[str, tuple[str, dict[str, str]]], calls: int = 2000, turns: int = 6
) -> dict[str, float]:
    """HAProxy's own CPU time per call (µs) for each target, in alternating turns."""
    import aiohttp

    spent = dict.fromkeys(targets, 0)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
        for _ in range(turns):
            for name, (url, headers) in targets.items():
                before = cpu_ns(pid)
                for _ in range(calls):
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                spent[name] += cpu_ns(pid) - before
    return {name: ns / (calls * turns) / 1000 for name, ns in spent.items()}


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
    import aiohttp

    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            async with session.get(url, headers=headers) as response:
                if response.status == 200:
                    return
            await asyncio.sleep(0.2)
    raise RuntimeError(f"HAProxy never routed a scoped call to edgescope at {url}")


def rps_rounds(targets: dict[str, tuple[str, dict[str, str]]]) -> dict[str, float]:
    """Median throughput over interleaved rounds (resists load spikes)."""
    rounds: dict[str, list[float]] = {name: [] for name in targets}
    for _ in range(ROUNDS):
        for name, (url, headers) in targets.items():
            rounds[name].append(
                asyncio.run(throughput(url, SECONDS / ROUNDS, CONCURRENCY, headers))
            )
    return {name: statistics.median(values) for name, values in rounds.items()}


def haproxy_figures() -> dict[str, Any]:
    """Every figure of the section, measured in one run."""
    from bench._harness import sites

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
            run(lambda url=url: wait_routed(url, SCOPED))
        latency_targets = {
            "HAProxy, no fast path (plain), unscoped": (
                f"http://127.0.0.1:{ports['plain']}/v2/images",
                UNSCOPED,
            ),
            "HAProxy with the fast path, unscoped": (fast, UNSCOPED),
            "edgescope alone, {image: Paris}": (
                f"http://127.0.0.1:{ports['image']}/v2/images",
                SCOPED,
            ),
            "HAProxy + edgescope, {image: Paris}": (fast, SCOPED),
        }
        lat = run(lambda: alternating_latency(latency_targets, N_LATENCY))
        unscoped = dict(list(latency_targets.items())[:2])
        cpu = run(lambda: haproxy_cpu_per_call(front_pid, unscoped))
        rps = rps_rounds(
            {
                **latency_targets,
                "HAProxy + 2 proxies of the site, {image: Paris}": (both, SCOPED),
            }
        )
        split = answers_per_server(stats)
    rows = [
        {
            "path": name,
            "p50": lat[name].p50 if name in lat else None,
            "p99": lat[name].p99 if name in lat else None,
            "errors": lat[name].errors if name in lat else 0,
            "rps": value,
        }
        for name, value in rps.items()
    ]
    by = {row["path"]: row for row in rows}
    plain, fast_row = (
        by["HAProxy, no fast path (plain), unscoped"],
        by["HAProxy with the fast path, unscoped"],
    )
    alone, behind = by["edgescope alone, {image: Paris}"], by["HAProxy + edgescope, {image: Paris}"]
    pair = by["HAProxy + 2 proxies of the site, {image: Paris}"]
    ratios = {
        "fast_path_p50": fast_row["p50"] / plain["p50"],
        "fast_path_rps": plain["rps"] / fast_row["rps"],
        "behind_haproxy_p50": behind["p50"] / alone["p50"],
        "behind_haproxy_rps": alone["rps"] / behind["rps"],
        "two_proxies_rps": pair["rps"] / behind["rps"],
    }
    return {
        "rows": rows,
        "ratios": ratios,
        "rules": rules_per_frontend(one),
        "split": split,
        "haproxy_cpu_us": cpu,
    }


def table(rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    headers = ["path", "p50 (ms)", "p99 (ms)", "req/s"]
    return headers, [[r["path"], ms(r["p50"]), ms(r["p99"]), f"{r['rps']:.0f}"] for r in rows]


def split_sentence(split: dict[str, int]) -> str:
    total = sum(split.values()) or 1
    shares = ", ".join(f"{name} {100 * n / total:.1f} %" for name, n in sorted(split.items()))
    return f"HAProxy's round robin gave the two proxies {shares} of the scoped calls."


def main(write: bool = True) -> None:
    from bench.__main__ import md_table, show

    started = time.time()
    meter = _results.LoadMeter()
    figures = haproxy_figures()
    load = meter.stop()
    ratios = figures["ratios"]
    verdicts = haproxy_verdicts(ratios)
    headers, rows = table(figures["rows"])
    show("Behind the site's HAProxy (ms, req/s)", headers, rows)
    cpu = figures["haproxy_cpu_us"]
    plain_cpu, fast_cpu = cpu.values()
    ratio_rows = [
        ["1-DC call, fast path / plain HAProxy: p50", f"{ratios['fast_path_p50']:.3f}×"],
        ["1-DC call, plain HAProxy / fast path: req/s", f"{ratios['fast_path_rps']:.3f}×"],
        ["scoped call, HAProxy + edgescope / edgescope alone: p50",
         f"{ratios['behind_haproxy_p50']:.2f}×"],
        ["scoped call, edgescope alone / HAProxy + edgescope: req/s",
         f"{ratios['behind_haproxy_rps']:.2f}×"],
        ["scoped calls, two proxies / one behind HAProxy: req/s",
         f"{ratios['two_proxies_rps']:.2f}×"],
        ["HAProxy's CPU per 1-DC call, fast path / plain (µs)",
         f"{fast_cpu:.1f} / {plain_cpu:.1f} µs: +{fast_cpu - plain_cpu:.1f} µs"],
    ]  # fmt: skip
    show("Ratios", ["ratio", "measured"], ratio_rows)
    targets = [[v.target, describe(v)] for v in verdicts]
    show("Targets", ["target", "verdict"], targets)
    Console().print(split_sentence(figures["split"]))
    machine = _results.machine()
    context = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on "
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['haproxy']}; {load.sentence()}. The run took {load.wall_seconds:.0f} s. "
        "Command: `python -m bench.haproxy`."
    )
    Console().print(context)
    if not write:
        return
    path = _results.write(
        "haproxy",
        "python -m bench.haproxy",
        started,
        load,
        {"figures": figures, "verdicts": [v.as_json() for v in verdicts]},
    )
    note = (
        f"One backend (an aiohttp endpoint), Debian's HAProxy running `site_config` (the "
        f"testbed's configuration: {figures['rules']} fast-path lines in the frontend: the "
        "scope ACLs, the fail-closed 503 and the `use_backend`), and real `edgescope proxy "
        "run` processes. *Unscoped*: a plain 186-byte token and an OpenStack request id, what "
        "nearly every call of a site carries; the plain frontend is in the same HAProxy "
        "process with no rules. *edgescope alone*: the same proxy's image listener called "
        f"directly. Latency: {N_LATENCY} sequential keep-alive GETs per path, one path after "
        f"the other call by call (no drift between them); throughput: {CONCURRENCY} "
        f"concurrent keep-alive clients, median of {ROUNDS} interleaved "
        f"{SECONDS / ROUNDS:.0f} s rounds. Two proxies: the same config on 127.0.0.1 and "
        "127.0.0.2 (two controllers), HAProxy's round robin between them; on 2 CPUs shared "
        "by the load generator, HAProxy, the backend and the proxies (and other work), one "
        "proxy already finds no idle CPU, so a second one cannot add throughput here: the "
        "figure shows it costs none and shares the calls evenly. HAProxy's CPU per call: "
        "the CPU time of its threads (`/proc/<pid>/task/*/schedstat`, in ns) over 6 "
        "alternating turns of 2,000 unscoped calls through each frontend: what the rules "
        "cost, free of the latency noise of a shared machine."
    )
    section = (
        f"{START}\n## Behind the site's HAProxy (issue 12)\n\n{context} Every figure below is "
        f"in `{_results.relative(path)}`.\n\n### Targets\n\n"
        f"{md_table(['target', 'verdict'], targets)}\n\n### Ratios\n\n"
        f"{md_table(['ratio', 'measured'], ratio_rows)}\n\n### Figures\n\n"
        f"{md_table(headers, rows)}\n\n{note} {split_sentence(figures['split'])}\n{END}\n"
    )
    _results.write_docs_section(section, START, END)
    Console().print(f"written: {_results.relative(path)} and docs/benchmarks.md")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.haproxy")
    parser.add_argument("--no-write", action="store_true")
    main(write=not parser.parse_args().no_write)
