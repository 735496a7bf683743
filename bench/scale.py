"""``python -m bench.scale``: 1,000 real site proxies on this machine (issue 14).

    python -m bench.scale                      # 1,000 sites in 10 zones, WAN delays (root)
    python -m bench.scale --sites 100 --zones 5 --no-wan --no-write

Every site is a real proxy with its own listener and a tiny real backend, the site directory
extension, one seed and no ``[[peers]]`` (``bench/_scale_worker.py``; one worker process per
zone, the entry site ``s0`` alone in its own process so its CPU can be measured). With root,
each zone is a network namespace of the emulated WAN (``edgescope.testbed.wan``): RTT 10 ms
between neighbour zones, +10 ms per zone further (up to 100 ms), none inside a zone; the
10 % partition cuts the last zone off. Measured, in order: directory convergence from cold,
steady-state gossip and probe traffic per proxy, ``&`` over 10/100/N-1 sites against a bare
aiohttp fan-out to the same backends from the same place, a site joining by one seed, a site
leaving, a 10 % partition (news on both sides, ``|`` through cut sites) and its heal, and
memory per proxy. Results: ``bench/results/scale-<time>.json`` and the "Scale" section of
docs/benchmarks.md (``bench/_scale_report.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench import _results
from bench._harness import raise_fd_limit, site_key
from bench._scale_report import failures, report
from bench._scale_worker import BACKEND_PORT, PROXY_PORT, site_index
from bench._tally import CALL_ERRORS

WAN_STATE = Path("/tmp/edgescope-scale-wan")
ENTRY = "s0"
PREFIX = "esscale"


def zone_of(site: str, zones: int) -> int:
    """``s0`` is the entry (zone 0, own process); ``s<i>`` is in zone ``i % zones``."""
    return site_index(site) % zones


def rtt_ms(a: int, b: int) -> float:
    return 0.0 if a == b else 10.0 * abs(a - b)


def topology(zones: int) -> Any:
    from edgescope.testbed.wan import parse_topology

    names = [f"z{k}" for k in range(zones)]
    links = [
        {"sites": [names[a], names[b]], "rtt_ms": rtt_ms(a, b)}
        for a in range(zones)
        for b in range(a + 1, zones)
    ]
    return parse_topology(
        {"subnet": "10.77.0.0/24", "sites": [{"name": n} for n in names], "links": links}
    )


@dataclass
class WorkerHandle:
    """A worker process and its stdin/stdout command channel."""

    name: str
    address: str
    process: asyncio.subprocess.Process
    sites: list[str]
    lock: asyncio.Lock

    async def ask(self, command: dict[str, Any], timeout: float = 600.0) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        async with self.lock:
            self.process.stdin.write((json.dumps(command) + "\n").encode())
            await self.process.stdin.drain()
            line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise RuntimeError(f"worker {self.name} exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"worker {self.name}: {answer['error']}")
        return answer["ok"]


class Edge:
    """The simulated edge: worker processes by zone, and the commands the phases need."""

    def __init__(self, args: argparse.Namespace, addresses: list[str], wan: Any) -> None:
        self.args = args
        self.zones = args.zones
        self.addresses = addresses
        self.wan = wan
        self.workers: dict[str, WorkerHandle] = {}
        self.state = Path(tempfile.mkdtemp(prefix="edgescope-scale-"))
        self.spec = self.state / "spec.json"
        self.spec.write_text(
            json.dumps(
                {
                    "authority": site_key("authority")[0],
                    "state_dir": str(self.state),
                    "gossip_interval": args.gossip_interval,
                    "gossip_fanout": args.gossip_fanout,
                    "limits": {
                        "max_fanout": args.sites + 8,
                        "max_scope_sites": args.sites + 8,
                        "max_scope_bytes": 16384,
                        "max_per_peer": 64,
                    },
                    "breaker": {"probe_interval": args.probe_interval, "probe_recent": 30.0},
                }
            )
        )
        self.sites = [f"s{i}" for i in range(args.sites)]

    def address_of(self, site: str) -> str:
        return self.addresses[zone_of(site, self.zones)]

    def url(self, site: str) -> str:
        return f"http://{self.address_of(site)}:{PROXY_PORT + site_index(site)}"

    def backend(self, site: str) -> str:
        return f"http://{self.address_of(site)}:{BACKEND_PORT + site_index(site)}/image/items"

    def seed_of(self, site: str) -> str:
        """Zone leaders (s1..s<zones-1>, s<zones>) seed from the entry; others from their
        zone's leader: each site knows one peer."""
        index = site_index(site)
        if index == 0:
            return ""
        zone = index % self.zones
        leader = zone if zone else self.zones
        return self.url(ENTRY) if index == leader else self.url(f"s{leader}")

    async def spawn(self, name: str, zone: int) -> WorkerHandle:
        command = [sys.executable, "-m", "bench._scale_worker", "--spec", str(self.spec),
                   "--address", self.addresses[zone]]  # fmt: skip
        if self.wan is not None:
            command = self.wan.exec_prefix(f"z{zone}") + command
        process = await asyncio.create_subprocess_exec(
            *command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, limit=2**24,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
        assert process.stdout is not None
        ready = json.loads(await process.stdout.readline())
        assert ready.get("ready"), ready
        handle = WorkerHandle(name, self.addresses[zone], process, [], asyncio.Lock())
        self.workers[name] = handle
        return handle

    async def start(self) -> float:
        """Start every site; returns the seconds it took (the directory converges after)."""
        started = time.monotonic()
        entry = await self.spawn("entry", 0)
        await entry.ask({"cmd": "add", "sites": [[ENTRY, ""]]})
        entry.sites.append(ENTRY)
        zones = [await self.spawn(f"z{k}", k) for k in range(self.zones)]
        by_zone: dict[int, list[str]] = {}
        for site in self.sites[1:]:
            by_zone.setdefault(zone_of(site, self.zones), []).append(site)

        async def fill(zone: int) -> None:
            worker, sites = zones[zone], by_zone.get(zone, [])
            for start in range(0, len(sites), 25):
                batch = sites[start : start + 25]
                await worker.ask({"cmd": "add", "sites": [[s, self.seed_of(s)] for s in batch]})
                worker.sites += batch

        await asyncio.gather(*(fill(k) for k in range(self.zones)))
        return time.monotonic() - started

    def worker_of(self, site: str) -> WorkerHandle:
        return next(w for w in self.workers.values() if site in w.sites)

    async def everyone(self, command: dict[str, Any]) -> list[Any]:
        return await asyncio.gather(*(w.ask(command) for w in self.workers.values()))

    async def stop(self) -> None:
        for worker in self.workers.values():
            with contextlib.suppress(RuntimeError, TimeoutError, OSError):
                await worker.ask({"cmd": "stop"}, timeout=60)
            if worker.process.returncode is None:
                worker.process.kill()
            await worker.process.wait()


async def until(
    check: Callable[[], Awaitable[bool]], timeout: float, every: float = 0.5
) -> float | None:
    """Seconds until ``check()`` is true (None: not within ``timeout``)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if await check():
            return time.monotonic() - started
        await asyncio.sleep(every)
    return None


async def phase_bootstrap(edge: Edge, started_in: float) -> dict[str, Any]:
    total, curve = len(edge.sites), []
    began = time.monotonic()

    async def full() -> bool:
        counts = await edge.everyone({"cmd": "full", "count": total})
        done = sum(c["count"] for c in counts)
        curve.append((round(time.monotonic() - began, 1), done))
        if len(curve) % 30 == 1:  # a line every ~30 s: a long cold start shows its progress
            print(f"  bootstrap {curve[-1][0]:.0f} s: {done}/{total} proxies know everyone",
                  flush=True)  # fmt: skip
        return bool(done >= total)

    converged = await until(full, timeout=3 * edge.args.timeout, every=1.0)
    return {"start_s": started_in, "converged_s": converged, "curve": curve}


async def steady_state(edge: Edge, window: float) -> dict[str, Any]:
    """Gossip and probe traffic per proxy over ``window`` seconds of an idle edge."""
    before = await edge.everyone({"cmd": "stats"})
    await asyncio.sleep(window)
    after = await edge.everyone({"cmd": "stats"})
    proxies = sum(a["proxies"] for a in after)
    syncs = sum(a["syncs"] - b["syncs"] for a, b in zip(after, before, strict=True))
    exchanges = sum(a["exchanges"] - b["exchanges"] for a, b in zip(after, before, strict=True))
    probes = [
        a["probes"][s] - b["probes"].get(s, 0)
        for a, b in zip(after, before, strict=True)
        for s in a["probes"]
    ]
    return {
        "window_s": window,
        "syncs_per_proxy_s": syncs / proxies / window,
        "exchanges_per_proxy_s": exchanges / proxies / window,
        "probes_per_proxy_s_median": statistics.median(probes) / window,
        "probes_per_proxy_s_max": max(probes) / window,
        "entry_probes_per_s": (after[0]["probes"][ENTRY] - before[0]["probes"][ENTRY]) / window,
        "entry_peers_in_use": after[0]["in_use"][ENTRY],
    }


def tcp_delta(before: list[dict[str, int]], after: list[dict[str, int]]) -> dict[str, int]:
    """How the TCP counters of these workers' namespaces grew (summed; a namespace shared
    by several workers, as without the WAN, is counted once per worker)."""
    return {
        name: sum(a[name] - b[name] for a, b in zip(after, before, strict=True))
        for name in (after[0] if after else {})
    }


@dataclass(frozen=True)
class FanoutCall:
    """One measured ``&`` call from the entry, and what it says when it is incomplete."""

    status: int
    ms: float
    items: int
    sites: str
    """The entry's ``X-Edgescope-Sites``: ``site=outcome`` per branch."""
    body: bytes

    def why(self) -> dict[str, Any]:
        return {"status": self.status, "items": self.items, "ms": round(self.ms),
                "sites": self.sites[:300], "body": self.body.decode(errors="replace")}  # fmt: skip


async def phase_fanout(edge: Edge, session: aiohttp.ClientSession) -> list[dict[str, Any]]:
    entry = edge.workers["entry"]
    rows = []
    for width in sorted({w for w in (10, 100, len(edge.sites) - 1) if w < len(edge.sites)}):
        targets = edge.sites[1 : width + 1]
        scope = "{image: " + "&".join(targets) + "}"
        headers = {"X-Scope": scope}
        url = edge.url(ENTRY) + "/image/items"

        async def once(url: str = url, headers: dict[str, str] = headers) -> FanoutCall:
            t0 = time.monotonic()
            try:
                async with session.get(url, headers=headers) as answer:
                    body = await answer.read()
            except CALL_ERRORS as exc:  # no answer: an incomplete call, reported
                return FanoutCall(0, (time.monotonic() - t0) * 1000, 0, "", repr(exc).encode())
            items = len(json.loads(body).get("items", [])) if answer.status == 200 else 0
            return FanoutCall(answer.status, (time.monotonic() - t0) * 1000, items,
                              answer.headers.get("X-Edgescope-Sites", ""), body[:300])  # fmt: skip

        # The baselines first: the window after the fan-outs then starts right after the
        # widest one's last call (opening 999 links over the WAN takes longer than
        # probe_recent, and the entry's peers would be out of use by then).
        calls = edge.args.calls
        backends = [edge.backend(s) for s in targets]
        bare = await entry.ask({"cmd": "bare", "urls": backends, "rounds": calls})
        raw = await entry.ask({"cmd": "raw", "urls": backends, "rounds": calls})
        tcp_before = [s["tcp"] for s in await edge.everyone({"cmd": "stats"})]
        await once()  # connections to every peer up, as in a running edge
        before = (await entry.ask({"cmd": "stats"}))["cpu_s"]
        results = [await once() for _ in range(calls)]
        cpu = (await entry.ask({"cmd": "stats"}))["cpu_s"] - before
        tcp_after = [s["tcp"] for s in await edge.everyone({"cmd": "stats"})]
        walls = sorted(r.ms for r in results)
        farthest = max(zone_of(s, edge.zones) for s in targets)
        rows.append(
            {
                "width": width,
                "ok": sum(r.status == 200 and r.items == width for r in results),
                "incomplete": [r.why() for r in results if r.status != 200 or r.items != width],
                "bare_failed": bare["failed"],
                "bare_first_error": bare["first_error"],
                "raw_failed": raw["failed"],
                "raw_first_error": raw["first_error"],
                "tcp_entry": tcp_delta(tcp_before[:1], tcp_after[:1]),
                "tcp_peers": tcp_delta(tcp_before[1:], tcp_after[1:]),
                "calls": calls,
                "farthest_rtt_ms": rtt_ms(0, farthest) if edge.wan is not None else 0.0,
                "fanout_p50_ms": statistics.median(walls),
                "bare_p50_ms": statistics.median(bare["wall_ms"]),
                "entry_cpu_ms_per_branch": cpu * 1000 / (calls * width),
                "bare_cpu_ms_per_branch": bare["cpu_s"] * 1000 / (calls * width),
                "raw_cpu_ms_per_branch": raw["cpu_s"] * 1000 / (calls * width),
                "raw_p50_ms": statistics.median(raw["wall_ms"]),
            }
        )
    return rows


async def phase_join(edge: Edge, session: aiohttp.ClientSession) -> dict[str, Any]:
    new = f"s{len(edge.sites)}"
    worker = edge.workers[f"z{zone_of(new, edge.zones)}"]
    began = time.monotonic()
    await worker.ask({"cmd": "add", "sites": [[new, edge.seed_of(new)]]})
    worker.sites.append(new)
    edge.sites.append(new)
    everyone = len(edge.sites)

    async def usable() -> bool:
        async with session.get(
            edge.url(ENTRY) + "/image/items", headers={"X-Scope": f"{{image: {new}}}"}
        ) as answer:
            return answer.status == 200

    failed_before = await unanswered(edge)
    usable_s = await until(usable, timeout=edge.args.timeout, every=0.2)
    known_s = await until(lambda: known_by(edge, new, "up", everyone - 1), edge.args.timeout)
    known_everywhere = None if known_s is None else time.monotonic() - began
    return {"site": new, "usable_from_entry_s": usable_s, "known_everywhere_s": known_everywhere,
            "unanswered_syncs": dict(await unanswered(edge) - failed_before)}  # fmt: skip


async def unanswered(edge: Edge) -> Counter[str]:
    """Syncs that got no answer so far, over every proxy, by reason."""
    total: Counter[str] = Counter()
    for stats in await edge.everyone({"cmd": "stats"}):
        total.update(stats["unanswered"])
    return total


async def known_by(edge: Edge, site: str, state: str, count: int) -> bool:
    censuses = await edge.everyone({"cmd": "census", "site": site})
    return sum(c[state] for c in censuses) >= count


async def phase_leave(edge: Edge) -> dict[str, Any]:
    leaving = f"s{len(edge.sites) // 2}"
    worker = edge.worker_of(leaving)
    failed_before = await unanswered(edge)
    began = time.monotonic()
    await worker.ask({"cmd": "remove", "site": leaving, "leave": True})
    worker.sites.remove(leaving)
    edge.sites.remove(leaving)
    known = await until(
        lambda: known_by(edge, leaving, "left", len(edge.sites) - 1), edge.args.timeout
    )
    return {"site": leaving,
            "known_everywhere_s": None if known is None else time.monotonic() - began,
            "unanswered_syncs": dict(await unanswered(edge) - failed_before)}  # fmt: skip


async def phase_partition(edge: Edge) -> dict[str, Any]:
    """Cut the last zone (10 % of the sites) off; news on both sides; ``|`` through the cut;
    the cut sites keep serving each other; heal and converge."""
    cut_zone = edge.zones - 1
    minority = [s for s in edge.sites if zone_of(s, edge.zones) == cut_zone and s != ENTRY]
    majority = [s for s in edge.sites if s not in minority]
    cut_worker = edge.workers[f"z{cut_zone}"]
    in_use, unused = minority[1:4], minority[4:7]
    scope = "{image: " + " & ".join(in_use) + "}"  # the entry calls these: they are in use
    called = await edge.workers["entry"].ask({"cmd": "call", "site": ENTRY, "scope": scope})
    assert called["status"] == 200, called
    edge.wan.isolate(f"z{cut_zone}")
    out: dict[str, Any] = {"cut_sites": len(minority)}
    try:
        near, far = majority[1], minority[0]
        news_near = (await edge.worker_of(near).ask({"cmd": "publish", "site": near}))["version"]
        news_far = (await cut_worker.ask({"cmd": "publish", "site": far}))["version"]
        began = time.monotonic()
        out["majority_converged_s"] = await until(
            lambda: versions_at(edge, near, news_near, len(majority) - 1), edge.args.timeout
        )
        entry = edge.workers["entry"]
        for key, dead in (("or_through_cut_in_use", in_use), ("or_through_cut_unused", unused)):
            scope = "{image: " + " | ".join([*dead, majority[2]]) + "}"
            out[key] = [
                await entry.ask({"cmd": "call", "site": ENTRY, "scope": scope}) for _ in range(5)
            ]
        inside = await cut_worker.ask(
            {"cmd": "call", "site": minority[1], "scope": f"{{image: {minority[2]}}}"}
        )
        alone = await cut_worker.ask({"cmd": "call", "site": minority[1], "scope": ""})
        out["cut_side_serves"] = {"peer_in_cut": inside["status"], "own_site": alone["status"]}
        out["partition_held_s"] = time.monotonic() - began
    finally:
        edge.wan.heal()
    healed = time.monotonic()

    async def both() -> bool:
        return await versions_at(edge, near, news_near, len(edge.sites) - 1) and (
            await versions_at(edge, far, news_far, len(edge.sites) - 1)
        )

    converged = await until(both, edge.args.timeout)
    out["heal_converged_s"] = None if converged is None else time.monotonic() - healed
    scope = "{image: " + " & ".join(in_use + unused) + "}"

    async def usable() -> bool:
        answer = await edge.workers["entry"].ask({"cmd": "call", "site": ENTRY, "scope": scope})
        return bool(answer["status"] == 200)

    usable_s = await until(usable, edge.args.timeout)
    out["cut_sites_usable_s"] = None if usable_s is None else time.monotonic() - healed
    return out


async def versions_at(edge: Edge, site: str, version: int, count: int) -> bool:
    answers = await edge.everyone({"cmd": "versions", "site": site, "version": version})
    return sum(a["count"] for a in answers) >= count


async def measure(args: argparse.Namespace, addresses: list[str], wan: Any) -> dict[str, Any]:
    edge = Edge(args, addresses, wan)
    figures: dict[str, Any] = {"sites": args.sites, "zones": args.zones, "wan": wan is not None,
                               "gossip_interval": args.gossip_interval,
                               "gossip_fanout": args.gossip_fanout}  # fmt: skip
    try:
        started_in = await edge.start()
        print(f"{args.sites} proxies started in {started_in:.1f} s", flush=True)
        figures["bootstrap"] = await phase_bootstrap(edge, started_in)
        print(f"bootstrap: {figures['bootstrap']['converged_s']} s", flush=True)
        figures["idle"] = await steady_state(edge, 3 * args.gossip_interval)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:
            figures["join"] = await phase_join(edge, session)
            print(f"join: {figures['join']}", flush=True)
            figures["leave"] = await phase_leave(edge)
            print(f"leave: {figures['leave']}", flush=True)
            if wan is not None:  # before the fan-outs: only the cut sites it calls are in use
                figures["partition"] = await phase_partition(edge)
                print(f"partition: {figures['partition']}", flush=True)
            figures["fanout"] = await phase_fanout(edge, session)
            print(f"fanout: {figures['fanout']}", flush=True)
            figures["after_fanout"] = await steady_state(edge, 3 * args.probe_interval)
        stats = await edge.everyone({"cmd": "stats"})
        per_proxy = [s["rss_per_proxy_kb"] for s in stats[1:] if s["proxies"]]
        figures["memory"] = {
            "per_proxy_kb_median": statistics.median(per_proxy),
            "worker_rss_mb": [round(s["rss_mb"]) for s in stats],
        }
    finally:
        await edge.stop()
    return figures


def inner(args: argparse.Namespace) -> dict[str, Any]:
    raise_fd_limit()
    wan = None
    addresses = ["127.0.0.1"] * args.zones
    if args.inside:
        from edgescope.testbed.wan import Wan

        wan = Wan.attach(WAN_STATE)
        addresses = [wan.site_address(f"z{k}") for k in range(args.zones)]
    return asyncio.run(measure(args, addresses, wan))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sites", type=int, default=1000)
    parser.add_argument("--zones", type=int, default=10)
    parser.add_argument("--gossip-interval", type=float, default=3.0)
    parser.add_argument("--gossip-fanout", type=int, default=2)
    parser.add_argument("--probe-interval", type=float, default=2.0)
    parser.add_argument("--calls", type=int, default=5, help="measured & calls per width")
    parser.add_argument("--timeout", type=float, default=600.0, help="per convergence phase")
    parser.add_argument("--no-wan", action="store_true", help="all zones on 127.0.0.1")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inside:  # the measuring half, run inside zone 0's namespace
        args.out.write_text(json.dumps(inner(args)))
        return
    started, meter = time.time(), _results.LoadMeter()
    if args.no_wan or os.geteuid() != 0:
        if not args.no_wan:
            print("not root: no WAN namespaces, every zone on 127.0.0.1, no partition phase")
        figures = inner(args)
        own_extra = 0.0
    else:
        figures, own_extra = with_wan(args)
    load = meter.stop(own_extra)
    path = None
    if not args.no_write:  # a failed run is kept apart, out of the results the docs cite
        folder = _results.ARTIFACTS / "bench-failed" if failures(figures) else None
        path = _results.write("scale", " ".join(["python -m bench.scale", *sys.argv[1:]]),
                              started, load, figures, folder)  # fmt: skip
    sys.exit(report(figures, load, path, write_docs=not args.no_write))


def with_wan(args: argparse.Namespace) -> tuple[dict[str, Any], float]:
    """Bring the zones' WAN up, run the measuring half inside zone 0, bring it down."""
    from edgescope.testbed.wan import Wan

    wan = Wan.up(topology(args.zones), WAN_STATE, prefix=PREFIX)
    out = Path(tempfile.mkstemp(prefix="edgescope-scale-", suffix=".json")[1])
    try:
        command = [sys.executable, "-m", "bench.scale", "--inside", "--out", str(out),
                   *[a for a in sys.argv[1:] if a != "--no-write"]]  # fmt: skip
        subprocess.run(wan.exec_prefix("z0") + command, check=True,
                       cwd=Path(__file__).resolve().parent.parent)  # fmt: skip
        delayer = _results.tree_cpu_seconds([wan.delayer_pid] if wan.delayer_pid else [])
        return json.loads(out.read_text()), delayer
    finally:
        wan.down()
        out.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
