"""Run a fault campaign on the WAN testbed: ``python -m bench.campaign --seed N --minutes M``.

Needs root and the WAN testbed of ``edgescope demo`` in ``--state-dir`` (default
``$EDGESCOPE_WAN_TESTBED_DIR``, else ``<repo>/state-wan``, as the WAN tests; reused if up, else
started and stopped again). Clients call the sites' APIs at each site (``clients.py``) while the
seeded schedule (``schedule.py``) cuts links, drops packets, kills proxies, restarts glance or
keystone, steps a proxy's clock and locks a site's replica database; then everything is
healed, the replicas' queues are left to drain (bounded), each site is read back, and the
checker (``checker.py``) judges the history against it.
Stores ``bench/results/campaign-<UTC time>.json`` (seed, machine, load, operations, faults,
anomalies) plus the history as JSON lines next to it; exits 1 on any anomaly but the known
limits of ``checker.KNOWN`` (reported all the same), 2 on a harness error.
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench import _results
from bench.campaign import clients, schedule
from bench.campaign.checker import KNOWN, Observed, check, summary
from bench.campaign.history import Fault, write_lines
from edgescope.demo.run import DemoOptions, open_network, open_testbed, sites_of
from edgescope.replicas.clock import OFFSET_ENV
from edgescope.replicas.database import FILENAME
from edgescope.replicas.registry import Registry
from edgescope.testbed import Testbed
from edgescope.testbed.process import running_pid

REPO = Path(__file__).resolve().parents[2]
SETTLE = 10.0
"""No fault starts in the run's last seconds (the schedule's own ``settle``)."""
RESTARTS = {"proxy-kill", "service-restart", "clock-step"}
RESTART_SETTLE = 45.0
"""No restart starts in the run's last seconds either: one takes 30-125 s on the loaded test
machine (start-up included), and the run waits for it to end before the check."""
QUIESCE_WITHIN = 240.0
"""Bound of the wait for every queue to drain after the heal (a failure bound). A write whose
proxy was killed while applying it is taken over when that proxy restarts (its claim expired
by ``Registry.expire_dead_owners``), not after the claim's 330 s, as before issue 24's fix."""


def apply(testbed: Testbed, wan: Any, fault: schedule.Planned, stop: threading.Event) -> Fault:
    """Apply one fault, hold it, undo it; the record spans until it is undone."""
    start = time.time()
    kind, sites = fault.kind, fault.sites
    lock: sqlite3.Connection | None = None
    if kind == "partition":
        wan.partition(*sites)
    elif kind == "minority":
        wan.isolate(sites[0])
    elif kind == "loss":
        original = wan.topology.link(*sites).loss or 0.0
        wan.set_link(*sites, loss=fault.detail["loss"])
    elif kind == "proxy-kill":
        pid = running_pid(testbed.site(sites[0]).plan.pid_path("proxy"))
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
        start = time.time()  # the moment it died: a call begun in between was in flight there
    elif kind == "service-restart":
        testbed.stop_service(sites[0], fault.detail["service"])
    elif kind == "clock-step":
        restart_proxy(testbed, sites[0], fault.detail["offset"])
    elif kind == "db-lock":
        lock = sqlite3.connect(testbed.state_dir / "sites" / sites[0] / FILENAME, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")  # the proxy's writes wait, then fail (busy)
    try:
        stop.wait(fault.hold)
    finally:
        if kind in ("partition", "minority"):
            wan.heal(*sites)
        elif kind == "loss":
            wan.set_link(*sites, loss=original)
        elif kind == "proxy-kill":
            testbed.start_service(sites[0], "proxy")
        elif kind == "service-restart":
            testbed.start_service(sites[0], fault.detail["service"])
        elif kind == "clock-step":
            restart_proxy(testbed, sites[0], None)
        elif lock is not None:
            lock.rollback()
            lock.close()
    return Fault(kind, sites, start, time.time(), dict(fault.detail))


def restart_proxy(testbed: Testbed, site: str, offset: float | None) -> None:
    """Stop ``site``'s proxy and start it again, its clock stepped by ``offset`` seconds (the
    test-only :data:`~edgescope.replicas.clock.OFFSET_ENV`, inherited by the new process)."""
    testbed.stop_service(site, "proxy")
    if offset is None:
        os.environ.pop(OFFSET_ENV, None)
        testbed.start_service(site, "proxy")
        return
    os.environ[OFFSET_ENV] = str(offset)  # faults run one at a time, from one thread
    try:
        testbed.start_service(site, "proxy")
    finally:
        os.environ.pop(OFFSET_ENV, None)


def pending(testbed: Testbed) -> dict[str, int]:
    """Writes each proxy still queues (its replica registry, read-only): the quiescence gate."""
    return {
        site: len(Registry(testbed.state_dir / "sites" / site, read_only=True).pending())
        for site in testbed.sites
    }


def serving(testbed: Testbed, site: str) -> bool:
    url = f"{testbed.sites[site].proxy_url}/metrics"
    proc = subprocess.run(
        [*testbed.sites[site].exec_prefix, "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
         "--max-time", "5", url], capture_output=True, text=True, timeout=20, check=False,
    )  # fmt: skip
    return proc.stdout.strip() == "200"


def campaign(testbed: Testbed, wan: Any, args: argparse.Namespace) -> dict[str, Any]:
    names = list(testbed.sites)
    at = names[: args.clients]
    seconds = args.minutes * 60
    planned = schedule.plan(args.seed, seconds, names, settle=SETTLE)
    sites, recorder = sites_of(testbed), clients.Recorder()
    stop = threading.Event()
    begun = time.monotonic()
    threads = [
        threading.Thread(target=clients.client, daemon=True, args=(
            sites, recorder, site, names, args.seed, begun + seconds, stop, via))
        for site, via in [*((site, "http") for site in at for _ in range(args.http_clients)),
                          (at[-1], "cli")]
    ]  # fmt: skip
    for thread in threads:
        thread.start()
    faults: list[Fault] = []
    late = 0
    try:
        for fault in planned:
            now = time.monotonic() - begun
            if now > seconds - SETTLE or (
                fault.kind in RESTARTS and max(now, fault.at) > seconds - RESTART_SETTLE
            ):
                late += 1  # restarts on a loaded machine made the schedule slip: not applied
                continue
            stop.wait(max(0.0, begun + fault.at - time.monotonic()))
            print(f"  {time.monotonic() - begun:6.1f} s {fault.kind} {fault.sites}", flush=True)
            faults.append(apply(testbed, wan, fault, stop))
    finally:
        wan.heal()
        for thread in threads:
            thread.join(timeout=seconds + clients.CLI_TIMEOUT + 60)
    stop.set()
    phases = {"clients": time.monotonic() - begun}
    deadline = time.monotonic() + QUIESCE_WITHIN
    while any(pending(testbed).values()) and time.monotonic() < deadline:
        time.sleep(2)
    phases["quiesce"] = time.monotonic() - begun - sum(phases.values())
    with ThreadPoolExecutor(max_workers=len(names)) as pool:  # each site read on its own
        lists = pool.map(
            lambda site: clients.retry(lambda: clients.observe(sites, site, recorder.prefix)),
            names,
        )
        seen = [row for rows in lists for row in rows]
    observed = Observed(
        seen,
        serving={site: serving(testbed, site) for site in names},
        pending=pending(testbed),
    )  # fmt: skip
    phases["observe"] = time.monotonic() - begun - sum(phases.values())
    anomalies = check(recorder.ops, faults, observed)
    cleanup_refused = clients.clean_up(sites, seen)
    phases["clean_up"] = time.monotonic() - begun - sum(phases.values())
    return {
        "seed": args.seed,
        "run": recorder.run,
        "sites": names,
        "clients_at": at,
        "skipped_fault_kinds": schedule.SKIPPED,
        "operations": len(recorder.ops),
        "operations_by": dict(Counter(
            f"{o.kind} {o.resource} {o.mode if o.replicated else '1-DC'} {o.outcome}"
            for o in recorder.ops)),
        "faults": len(faults),
        "faults_by_kind": dict(Counter(f.kind for f in faults)),
        "faults_planned_not_applied": late,
        "observed_resources": len(observed.seen),
        "cleanup_deletes_refused": cleanup_refused,
        "phase_seconds": {k: round(v, 1) for k, v in phases.items()},
        "anomalies": len(anomalies),
        "anomalies_unexpected": sum(a.kind not in KNOWN for a in anomalies),
        "anomalies_by_kind": summary(anomalies),
        "known_limits": {k: v for k, v in KNOWN.items() if any(a.kind == k for a in anomalies)},
        "_history": (recorder.ops, faults),
        "_anomalies": anomalies,
    }  # fmt: skip


def explain(figures: dict[str, Any]) -> str:
    """Each anomaly of a run with the operations (and faults) that led to it, one per line."""
    ops, faults = figures["_history"]
    by_seq = {op.seq: op for op in ops}
    lines = []
    for anomaly in figures["_anomalies"]:
        lines.append(f"{anomaly.kind} {anomaly.resource} {anomaly.name} at {anomaly.sites}: "
                     f"{anomaly.detail}")  # fmt: skip
        for seq in anomaly.ops:
            op = by_seq[seq]
            lines.append(f"    op {seq} ({op.client}): {op.kind} at {op.at} {op.scope} "
                         f"{op.mode} -> {op.outcome} [{op.start:.1f}-{op.end:.1f}] "
                         f"{op.error[:160]}")  # fmt: skip
            lines += [f"      during {f.kind} {f.sites} {f.detail}"
                      for f in faults if f.overlaps(op)]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--clients", type=int, default=3, choices=(2, 3), help="client sites")
    parser.add_argument("--http-clients", type=int, default=2, choices=(1, 2, 3),
                        help="HTTP clients per client site (plus one CLI client)")  # fmt: skip
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path(os.environ.get("EDGESCOPE_WAN_TESTBED_DIR", REPO / "state-wan")),
        help="the WAN testbed's folder (default $EDGESCOPE_WAN_TESTBED_DIR or state-wan)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.campaign needs root (the emulated WAN)")
    if args.minutes <= 0:
        sys.exit(f"--minutes must be positive, not {args.minutes}")
    options = DemoOptions(wan=True, state_dir=args.state_dir)
    network = open_network(options, print)
    created_here = not (args.state_dir / "testbed.json").exists()
    testbed, _ = open_testbed(options, network, lambda site, msg: print(f"  {site}: {msg}"))
    assert network.wan is not None
    started, meter = time.time(), _results.LoadMeter()
    pids = [row.pid for row in testbed.status() if row.pid]
    cpu = _results.tree_cpu_seconds(pids)
    try:
        figures = campaign(testbed, network.wan, args)
    except Exception:
        traceback.print_exc()
        sys.exit(2)
    finally:
        if created_here:
            testbed.down()
            if network.started:
                network.wan.down()
    load = meter.stop(extra_own_seconds=_results.tree_cpu_seconds(pids) - cpu)
    if figures["anomalies"]:
        print(explain(figures))
    ops, faults = figures.pop("_history")
    figures.pop("_anomalies")
    figures["network"] = network.note
    command = f"python -m bench.campaign --seed {args.seed} --minutes {args.minutes:g}"
    path = _results.write("campaign", command, started, load, figures)
    write_lines(path.with_suffix(".ops.jsonl"), ops)
    write_lines(path.with_suffix(".faults.jsonl"), faults)
    print(f"{figures['operations']} operations, {figures['faults']} faults "
          f"{figures['faults_by_kind']}, {figures['anomalies']} anomalies")  # fmt: skip
    for kind, entry in figures["anomalies_by_kind"].items():
        print(f"- {kind}: {entry['count']}, e.g. {entry['examples'][0]}")
    print(f"{load.sentence()}\nwritten: {_results.relative(path)}")
    sys.exit(1 if figures["anomalies_unexpected"] else 0)


if __name__ == "__main__":
    main()
