"""Soak: real OpenStack sites on the emulated WAN, under repeated faults, for minutes (not in CI).

Needs root and the WAN testbed of ``edgescope demo`` (reused if up, else started and stopped
again). Three phases of equal length, each with the same traffic, typed inside the sites'
namespaces by ``tests/integration/faults_driver.py``:

1. baseline: no fault (the reference, measured in the same run);
2. partitions: Paris–Corte cut for ``--cut`` s every ``--period`` s;
3. flapping: 30% loss on Paris–Corte plus the same cuts.

Streams: 1-DC creates/lists at Paris and at Corte; ``{image: Corte}`` and
``{image: Corte | Marseille}`` from Paris. For each phase and stream it prints the success
ratio, p50/p95 latency and their ratio to the baseline, the 503s and the longest call; at the
end it checks that every acknowledged create still exists. From the cut schedule as it
happened, it also gives the share of calls issued while the link was up that succeeded,
and, for each heal, the time until the first call that succeeded ended after it. Prints a
markdown table and stores the figures in ``bench/results/soak-<UTC time>.json`` with the
machine and the load: the testbed's processes (sites, brokers, delayer) count as the run's
own work, so "other work" is whatever else used the CPUs.

    sudo .venv/bin/python -m bench.soak --minutes 3 [--period 10 --cut 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import _results
from edgescope.demo.run import DemoOptions, open_network, open_testbed
from edgescope.testbed import Testbed
from edgescope.testbed.process import running_pid

REPO = Path(__file__).resolve().parent.parent
DRIVER = REPO / "tests" / "integration" / "faults_driver.py"
STREAMS: dict[str, tuple[str, list[dict[str, Any]]]] = {
    "Paris 1-DC": ("Paris", [{"kind": "create"}, {"kind": "list"}]),
    "Corte 1-DC": ("Corte", [{"kind": "create"}, {"kind": "list"}]),
    "Paris {image: Corte}": ("Paris", [{"kind": "list", "scope": "{image: Corte}"}]),
    "Paris {image: Corte | Marseille}": (
        "Paris",
        [{"kind": "list", "scope": "{image: Corte | Marseille}"}],
    ),
}


def _driver(testbed: Testbed, site: str, plan: dict[str, Any]) -> subprocess.Popen[str]:
    full = {"clouds_yaml": str(testbed.clouds_yaml), "cloud": site, **plan}
    argv = [*testbed.sites[site].exec_prefix, sys.executable, str(DRIVER), json.dumps(full)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _records(proc: subprocess.Popen[str], timeout: float) -> list[dict[str, Any]]:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


Cut = tuple[float, float]
"""(cut at, healed at), wall-clock seconds (``time.time()``, as the drivers' records)."""


def _phase(
    testbed: Testbed, wan: Any, name: str, seconds: float, args: argparse.Namespace
) -> tuple[dict[str, list[dict[str, Any]]], list[Cut]]:
    """Each stream's records, and the phase's cut schedule as it happened."""
    plan = {"duration": seconds, "max_ops": 100_000, "pause": 0.05}
    procs = {s: _driver(testbed, site, {**plan, "ops": ops}) for s, (site, ops) in STREAMS.items()}
    cuts: list[Cut] = []
    if name == "flapping":
        wan.set_link("Paris", "Corte", loss=0.3)
    try:
        end = time.monotonic() + seconds
        while name != "baseline" and time.monotonic() < end:
            wan.partition("Paris", "Corte")
            cut_at = time.time()
            time.sleep(min(args.cut, max(0.0, end - time.monotonic())))
            wan.heal("Paris", "Corte")
            cuts.append((cut_at, time.time()))
            time.sleep(min(args.period - args.cut, max(0.0, end - time.monotonic())))
    finally:
        wan.heal("Paris", "Corte")
        if name == "flapping":
            wan.set_link("Paris", "Corte", loss=0.0)
    return {s: _records(p, seconds + 120) for s, p in procs.items()}, cuts


def _ok(record: dict[str, Any]) -> bool:
    return record["status"] is not None and record["status"] < 300


def link_up_share(records: list[dict[str, Any]], cuts: list[Cut]) -> tuple[int, float]:
    """Calls issued while the link was up (from the cut schedule), and the share of them
    that succeeded."""
    up = [r for r in records if not any(a <= r["start"] < b for a, b in cuts)]
    ok = sum(_ok(r) for r in up)
    return len(up), (ok / len(up) if up else float("nan"))


def heal_to_first_success(records: list[dict[str, Any]], cuts: list[Cut]) -> list[float | None]:
    """For each heal while the stream ran (after its first call began, before its last one
    ended: a driver takes seconds to start on a busy machine), seconds until the first call
    that succeeded ended after it (None: none did before the next cut)."""
    ends = sorted(r["start"] + r["seconds"] for r in records if _ok(r))
    if not records:
        return []
    began = min(r["start"] for r in records)
    over = max(r["start"] + r["seconds"] for r in records)
    out: list[float | None] = []
    for i, (_, healed) in enumerate(cuts):
        if not began <= healed <= over:
            continue
        until = cuts[i + 1][0] if i + 1 < len(cuts) else float("inf")
        first = next((end for end in ends if healed <= end < until), None)
        out.append(None if first is None else round(first - healed, 3))
    return out


def _stats(records: list[dict[str, Any]], cuts: list[Cut] | None = None) -> dict[str, Any]:
    ok = [r for r in records if _ok(r)]
    times = sorted(r["seconds"] for r in ok) or [float("nan")]
    up_calls, up_ok = link_up_share(records, cuts or [])
    heals = heal_to_first_success(records, cuts or [])
    seen = [h for h in heals if h is not None]
    return {
        "n": len(records),
        "ok": len(ok) / len(records) if records else float("nan"),
        "p50": statistics.median(times),
        "p95": times[min(len(times) - 1, int(0.95 * len(times)))],
        "503": sum(r["status"] == 503 for r in records),
        "hung": sum(r["status"] is None for r in records),
        "max": max((r["seconds"] for r in records), default=float("nan")),
        "up_calls": up_calls,
        "ok_while_up": up_ok,
        "heal_to_first_success": heals,
        "heal_to_first_success_max": max(seen) if seen and len(seen) == len(heals) else None,
        "heal_to_first_success_median": statistics.median(seen) if seen else None,
        "heals_without_success": len(heals) - len(seen),
    }


def _testbed_pids(testbed: Testbed, wan: Any) -> list[int]:
    pids = [row.pid for row in testbed.status() if row.pid]
    pids += [pid for b in testbed.brokers if (pid := running_pid(b.pidfile)) is not None]
    return pids + ([wan.delayer_pid] if wan.delayer_pid else [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="total, split in 3 phases")
    parser.add_argument("--period", type=float, default=10.0)
    parser.add_argument("--cut", type=float, default=5.0)
    parser.add_argument("--state-dir", type=Path, default=REPO / "state-wan")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench/soak.py needs root (the emulated WAN)")
    options = DemoOptions(wan=True, state_dir=args.state_dir)
    network = open_network(options, print)
    created_here = not (args.state_dir / "testbed.json").exists()
    testbed, _ = open_testbed(options, network, lambda site, msg: print(f"  {site}: {msg}"))
    assert network.wan is not None
    phase_seconds = args.minutes * 60 / 3
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    schedules: dict[str, list[Cut]] = {}
    started = time.time()
    meter = _results.LoadMeter()
    pids = _testbed_pids(testbed, network.wan)
    testbed_cpu = _results.tree_cpu_seconds(pids)
    try:
        for phase in ("baseline", "partitions", "flapping"):
            print(f"phase {phase}: {phase_seconds:.0f} s", flush=True)
            results[phase], schedules[phase] = _phase(
                testbed, network.wan, phase, phase_seconds, args
            )
        created = {
            site: [
                r["id"]
                for phase in results.values()
                for stream, records in phase.items()
                if STREAMS[stream][0] == site and "1-DC" in stream
                for r in records
                if r["kind"] == "create" and r["id"]
            ]
            for site in ("Paris", "Corte")
        }
        lost = {
            site: [
                r["id"]
                for r in _records(_driver(testbed, site, {"check": ids}), 600)
                if r["status"] != 200
            ]
            for site, ids in created.items()
        }
        testbed_cpu = _results.tree_cpu_seconds(pids) - testbed_cpu
        load = meter.stop(extra_own_seconds=testbed_cpu)
    finally:
        if created_here:
            testbed.down()
            if network.started:
                network.wan.down()
    base = {s: _stats(r) for s, r in results["baseline"].items()}
    cuts = f"cut {args.cut:g} s every {args.period:g} s"
    print(f"\n{network.note}; phases of {phase_seconds:.0f} s; {cuts}\n")
    print(
        "| phase | stream | calls | success | success while up (calls) "
        "| heal → first success, median / max s (heals with none) "
        "| p50 s (× baseline) | p95 s (× baseline) | 503 | hung | max s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for phase, streams in results.items():
        for stream, records in streams.items():
            s, b = _stats(records, schedules[phase]), base[stream]
            heal = "—"
            if s["heal_to_first_success"]:
                median, worst = s["heal_to_first_success_median"], s["heal_to_first_success_max"]
                heal = (
                    f"{median:.2f} / {worst:.2f}" if worst is not None else f"{median} / —"
                ) + f" ({s['heals_without_success']})"
            print(
                f"| {phase} | {stream.replace('|', chr(92) + '|')} | {s['n']:.0f} | {s['ok']:.1%} "
                f"| {s['ok_while_up']:.1%} ({s['up_calls']}) | {heal} "
                f"| {s['p50']:.3f} (×{s['p50'] / b['p50']:.2f}) | {s['p95']:.3f} "
                f"(×{s['p95'] / b['p95']:.2f}) | {s['503']:.0f} | {s['hung']:.0f} "
                f"| {s['max']:.1f} |"
            )
    total = sum(len(v) for v in created.values())
    missing = sum(len(v) for v in lost.values())
    print(f"\nacknowledged 1-DC creates: {total}; missing after the soak: {missing}")
    print("\ncalls over 5 s (what answered them, from X-Edgescope-Sites and the body):")
    slow = []
    for phase, streams in results.items():
        for stream, records in streams.items():
            for r in sorted(records, key=lambda r: -r["seconds"]):
                if r["seconds"] > 5:
                    slow.append({"phase": phase, "stream": stream, **r})
                    error = (r["error"] or "").replace("\n", " ")[:160]
                    print(f"- {phase} / {stream}: {r['seconds']:.1f} s, status {r['status']}, "
                          f"sites {r.get('sites')}, {error}")  # fmt: skip
    print(f"\n{load.sentence()}")
    figures = {
        "network": network.note,
        "settings": {"phase_seconds": phase_seconds, "period": args.period, "cut": args.cut},
        "phases": {
            phase: {
                stream: _stats(records, schedules[phase]) for stream, records in streams.items()
            }
            for phase, streams in results.items()
        },
        "cuts": schedules,
        "records": {  # every call of the cross-site streams, for a closer look
            phase: {
                stream: [[r["start"], r["seconds"], r["status"]] for r in records]
                for stream, records in streams.items()
                if "1-DC" not in stream
            }
            for phase, streams in results.items()
        },
        "acknowledged_creates": total,
        "missing_after_soak": missing,
        "calls_over_5_s": slow,
    }
    command = f"python -m bench.soak --minutes {args.minutes:g} --period {args.period:g} "
    command += f"--cut {args.cut:g}"
    path = _results.write("soak", command, started, load, figures)
    print(f"written: {_results.relative(path)}")


if __name__ == "__main__":
    main()
