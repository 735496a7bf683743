"""Where the proxy's time goes on one call (issue 23): cProfile, or callgrind's instruction
counts, of the proxy process(es) serving N calls of one case.

    python -m bench.hotpath profile scoped --calls 2000      # pstats of the proxy, per call
    python -m bench.hotpath count hop --calls 200 --loop uvloop   # instructions per call

Cases: ``noscope`` and ``scoped`` (``{image: Paris}``, one proxy), ``hop`` (``{image:
Corte}``: Paris signs, Corte checks; both proxies counted), ``hop-tls`` (the same over the
peer listener with mutual TLS, as deployed), ``fanout100`` (``&`` over 100 sites that answer
at once). ``count`` runs each proxy under ``valgrind --tool=callgrind``, zeroes its counters
after the warm-up, and dumps them after the calls: instructions do not move with the load
of a shared machine, wall-clock time does. ``profile`` runs each proxy under cProfile
(wall-clock, inflated by the profiler itself: read it for shares, not for totals).
Nothing here is timed in a test; results go to stdout and ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import dataclasses
import glob
import json
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import psutil

from bench._harness import free_port, latency, process, raise_fd_limit, site_toml, sites
from bench._results import LoadMeter, print_and_keep

CASES = ("noscope", "scoped", "hop", "hop-tls", "fanout100")


def proxy_args(config: str, loop: str, tool: str, out: str) -> list[str]:
    """The command of one proxy process under ``tool`` (none, profile or count)."""
    inner = [sys.executable, "-m", "bench.hotpath", "serve", config, "--loop", loop]
    if tool == "profile":
        return [*inner, "--profile", out]
    if tool == "count":
        return [
            "valgrind",
            "--tool=callgrind",
            "--collect-atstart=yes",
            f"--callgrind-out-file={out}",
            *inner,
        ]
    return inner


def serve(config: str, loop: str, profile: str | None) -> None:
    """``edgescope proxy run`` in this process; with ``profile``, SIGUSR1 starts cProfile
    and SIGUSR2 writes it. Its clock is ``perf_counter`` (a CPU-time clock costs a system
    call per event and inflated every Python function's share); time the process spends
    preempted by other work lands where it happened to be, evenly over many calls."""
    from edgescope.cli import main

    sys.argv = ["edgescope", "proxy", "run", "--config", config, "--log-level", "WARNING"]
    sys.argv += ["--loop", loop]
    if profile:
        profiler = cProfile.Profile()

        def begin(*_: object) -> None:
            profiler.enable()

        def end(*_: object) -> None:
            profiler.disable()
            profiler.dump_stats(profile)

        signal.signal(signal.SIGUSR1, begin)
        signal.signal(signal.SIGUSR2, end)
    with contextlib.suppress(SystemExit):
        main()


def _tls_tables(folder: Path, site: str) -> str:
    from edgescope.testbed.layout import SitePlan
    from edgescope.testbed.pki import Pki

    security = Pki(folder).ensure([SitePlan(site, 1, folder / site)])[site]
    return (
        f'[tls]\ncert_file = "{security.cert_file}"\nkey_file = "{security.tls_key_file}"\n'
        f'ca_file = "{security.ca_file}"\n'
    )


@contextmanager
def topology(
    case: str, loop: str, tool: str, folder: Path
) -> Iterator[tuple[str, dict[str, str], list[tuple[int, str]]]]:
    """(URL, headers, [(pid, output file)] of the measured proxies) for ``case``."""
    slow = tool == "count"  # under valgrind everything is ~50x slower: generous timeouts
    with ExitStack() as stack:
        width = 100 if case == "fanout100" else 2
        _, info = stack.enter_context(sites(width))
        ports = info["ports"]
        measured: list[tuple[int, str]] = []

        def start(name: str, toml: str, measure: bool) -> str:
            path = folder / f"{name}.toml"
            path.write_text(toml)
            out = str(folder / f"{name}.{tool}")
            args = proxy_args(str(path), loop, tool if measure else "none", out)
            proc, started = stack.enter_context(process(args))
            if measure:
                measured.append((proc.pid, out))
            listen = started["listen"]
            return str(listen.split("main=")[1].split(",")[0])

        extra = "[breaker]\nprobe_interval = 0\n"
        timeout = 60.0 if slow else 2.0
        if case == "fanout100":
            peers = {f"s{i}": f"http://127.0.0.1:{port}" for i, port in enumerate(ports)}
            extra += "[limits]\nmax_fanout = 100\nmax_scope_sites = 128\nmax_scope_bytes = 65536\n"
            toml = site_toml(
                "Paris",
                backend=f"http://127.0.0.1:{ports[0]}",
                peers=peers,
                extra=extra,
                connect_timeout=timeout,
                read_timeout=timeout * 10,
            )
            url = start("Paris", toml, True)
            wide = "{image: " + "&".join(f"s{i}" for i in range(100)) + "}"
            yield f"http://{url}/image/items", {"X-Scope": wide}, measured
            return
        tls = case == "hop-tls"
        main = {site: free_port() for site in ("Paris", "Corte")}
        peer = {site: free_port() for site in ("Paris", "Corte")}
        scheme = "https" if tls else "http"
        for site, other, port in (("Corte", "Paris", ports[1]), ("Paris", "Corte", ports[0])):
            listen = f'peer_listen = "127.0.0.1:{peer[site]}"\n' if tls else ""
            target = f"{scheme}://127.0.0.1:{peer[other] if tls else main[other]}"
            toml = site_toml(
                site,
                backend=f"http://127.0.0.1:{port}",
                peers={other: target},
                extra=listen + extra + (_tls_tables(folder / "pki", site) if tls else ""),
                connect_timeout=timeout,
                read_timeout=timeout * 10,
                listen=f"127.0.0.1:{main[site]}",
            )
            # site_toml puts ``extra`` after the top-level keys: peer_listen must come first
            toml = _hoist(toml, "peer_listen")
            start(site, toml, case.startswith("hop") or site == "Paris")
        scope: str | None = {"noscope": None, "scoped": "{image: Paris}"}.get(
            case, "{image: Corte}"
        )
        headers = {"X-Scope": scope} if scope else {}
        yield f"http://127.0.0.1:{main['Paris']}/image/items", headers, measured


def _hoist(toml: str, key: str) -> str:
    lines = toml.splitlines()
    keyed = [line for line in lines if line.startswith(key + " =")]
    rest = [line for line in lines if not line.startswith(key + " =")]
    return "\n".join(keyed + rest) + "\n"


def callgrind_control(*args: str) -> None:
    subprocess.run(["callgrind_control", *args], check=True, capture_output=True, timeout=600)


def dumped_instructions(out: str) -> int:
    """Ir of the latest dump of ``out`` (``callgrind_control -d`` writes ``out.N``)."""
    dumps = sorted(glob.glob(out + ".*"), key=lambda p: int(p.rsplit(".", 1)[1]))
    for line in Path(dumps[-1]).read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {dumps[-1]}")


def _cpu(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


LAYERS = (
    ("edgescope", "edgescope/"),
    ("aiohttp server", "aiohttp/web"),
    ("aiohttp client", "aiohttp/client"),
    ("aiohttp other", "aiohttp/"),
    ("asyncio loop", "asyncio/"),
    ("asyncio loop", "selectors.py"),
    ("multidict, yarl", "multidict/"),
    ("multidict, yarl", "yarl/"),
    ("prometheus", "prometheus_client/"),
    ("cryptography", "cryptography/"),
)


def layers(path: str, calls: int) -> dict[str, float]:
    """Own time per layer (the caller's layer for C functions), in shares of the total."""
    stats = pstats.Stats(path).stats  # type: ignore[attr-defined]
    own: dict[str, float] = {}
    for (filename, _, name), (_, _, tottime, _, callers) in stats.items():
        layer = _layer(filename)
        if layer == "other" and filename == "~" and callers:
            caller = max(callers.items(), key=lambda kv: kv[1][2])[0]
            layer = _layer(caller[0])
            if "sign" in name or "verify" in name:
                layer = "Ed25519 (C)"
            elif "send" in name or "recv" in name or "poll" in name:
                layer = "socket system calls"
        own[layer] = own.get(layer, 0.0) + tottime
    total = sum(own.values()) or 1.0
    return {k: round(v / total, 3) for k, v in sorted(own.items(), key=lambda kv: -kv[1])}


def _layer(filename: str) -> str:
    for layer, marker in LAYERS:
        if marker in filename:
            return layer
    return "other"


def measure(
    case: str, tool: str, calls: int, loop: str, warmup: int, keep: str | None = None
) -> dict[str, Any]:
    raise_fd_limit()
    meter = LoadMeter()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        url, headers, measured = stack.enter_context(topology(case, loop, tool, Path(tmp)))
        asyncio.run(latency(url, 0, headers, warmup=warmup))
        for pid, _ in measured:
            if tool == "count":
                callgrind_control("-z", str(pid))
            elif tool == "profile":
                os.kill(pid, signal.SIGUSR1)
                time.sleep(0.5)
        cpu_before = [_cpu(pid) for pid, _ in measured]
        started = time.perf_counter()
        result = asyncio.run(latency(url, calls, headers, warmup=0))
        seconds = time.perf_counter() - started
        if result.tally.errors:
            raise RuntimeError(f"{case}: {result.tally.incomplete()}")
        row: dict[str, Any] = {"case": case, "loop": loop, "calls": calls, "seconds": seconds}
        row["cpu_us_per_call"] = [
            (_cpu(pid) - before) * 1e6 / calls
            for (pid, _), before in zip(measured, cpu_before, strict=True)
        ]
        if tool == "count":
            per_proxy = []
            for pid, out in measured:
                callgrind_control("-d", str(pid))
                per_proxy.append(dumped_instructions(out) / calls)
            row["instructions_per_call"] = per_proxy
            row["total_per_call"] = sum(per_proxy)
        else:
            row["p50_ms"] = result.p50
            for pid, _ in measured:
                os.kill(pid, signal.SIGUSR2)
            time.sleep(2)  # it writes its profile
        print(f"{case}: {calls} calls in {seconds:.1f} s", file=sys.stderr)
        stack.close()
        if tool == "profile":
            row["profiles"] = [summary(out, calls) for _, out in measured]
            row["layers"] = [layers(out, calls) for _, out in measured]
            if keep is not None:
                for i, (_, out) in enumerate(measured):
                    shutil.copy(out, f"{keep}.{i}.prof")
    load = meter.stop()
    row["load"] = {**dataclasses.asdict(load), "sentence": load.sentence()}
    return row


def summary(path: str, calls: int, top: int = 25) -> list[dict[str, Any]]:
    """The ``top`` functions by own time, in microseconds per call."""
    stats = pstats.Stats(path)
    rows = []
    entries = stats.stats  # type: ignore[attr-defined]
    for (filename, line, name), (_, ncalls, tottime, cumtime, _) in entries.items():
        where = f"{_short(filename)}:{line}({name})"
        rows.append((tottime, cumtime, ncalls, where))
    rows.sort(reverse=True)
    total = sum(r[0] for r in rows)
    out = [{"where": "TOTAL own time", "us_per_call": total * 1e6 / calls}]
    for tottime, cumtime, ncalls, where in rows[:top]:
        out.append(
            {
                "where": where,
                "us_per_call": tottime * 1e6 / calls,
                "cum_us_per_call": cumtime * 1e6 / calls,
                "calls_per_call": ncalls / calls,
            }
        )
    return out


def _short(filename: str) -> str:
    for marker in ("site-packages/", "src/", "lib/python3.11/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return os.path.basename(filename)


def crypto(n: int = 2000) -> dict[str, Any]:
    """CPU microseconds (process time: other work does not inflate it) per hop signed,
    checked, and per key id, in this process; the peer hop pays one of each side."""
    from edgescope.proxy import batchsign, keys, protocol

    key = keys.load_private(_site_key("Paris"))
    public = key.public_key()
    headers = {"X-Scope": "{image: Corte}", "X-Openstack-Request-Id": "req-1"}

    def sign() -> dict[str, str]:
        return protocol.sign_hop(
            key, "GET", "/edgescope/svc/image/items", "Paris", "Corte", 1, now=time.time(),
            headers=headers,
        )  # fmt: skip

    signed = {**headers, **sign()}

    def check() -> object:
        return protocol.verify_hop(
            signed, "GET", "/edgescope/svc/image/items", "Corte", lambda _: (public,),
            now=time.time(), window=60,
        )  # fmt: skip

    message = protocol.hop_message(signed, "GET", "/x", "Corte")
    cases: dict[str, Callable[[], object]] = {
        "sign one hop (marker, Merkle leaf, Ed25519 sign)": sign,
        "verify one hop (marker, proof, Ed25519 verify)": check,
        "Ed25519 sign alone": lambda: key.sign(message),
        "Ed25519 verify alone": lambda: public.verify(key.sign(b"m"), b"m"),
        "public key of the private key": key.public_key,
        "key id of a public key": lambda: keys.key_id(public),
        "Merkle leaf and root of one message": lambda: batchsign.tree([batchsign.leaf(message)]),
    }
    out: dict[str, Any] = {}
    for name, fn in cases.items():
        fn()
        began = time.process_time()
        for _ in range(n):
            fn()
        out[name] = (time.process_time() - began) * 1e6 / n
    return out


def _site_key(site: str) -> str:
    from bench._harness import site_key

    return site_key(site)[0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hotpath")
    sub = parser.add_subparsers(dest="mode", required=True)
    for mode in ("profile", "count", "cpu"):
        p = sub.add_parser(mode)
        p.add_argument("case", choices=CASES)
        p.add_argument("--calls", type=int, default=200 if mode == "count" else 2000)
        p.add_argument("--warmup", type=int, default=20 if mode == "count" else 100)
        p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
        p.add_argument("--out", type=Path)
    sub.add_parser("crypto")
    p = sub.add_parser("serve")
    p.add_argument("config")
    p.add_argument("--loop", default="asyncio")
    p.add_argument("--profile")
    args = parser.parse_args(argv)
    if args.mode == "crypto":
        print(json.dumps(crypto(), indent=1))
        return
    if args.mode == "serve":
        serve(args.config, args.loop, args.profile)
        return
    keep = str(args.out.with_suffix("")) if args.out is not None else None
    row = measure(args.case, args.mode, args.calls, args.loop, args.warmup, keep)
    print_and_keep(row, args.out)


if __name__ == "__main__":
    main()
