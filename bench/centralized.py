"""The seed's "Approach 1" measured: a boot at Corte from a central control plane at Paris,
against edgescope's local boot at Corte, on the emulated WAN (issue 5).

Reuses a running WAN testbed (``edgescope testbed up --wan default``; default: the first
``state-wan*`` folder of the repo with a testbed in it) and never brings it down. It starts
one extra nova-compute inside Corte's namespace, configured as a compute of *Paris* (host
``paris-remote-corte``, Paris's RabbitMQ, keystone and placement across the WAN), registers
it with ``nova-manage cell_v2 discover_hosts`` at Paris, then times, for the Paris–Corte link
at its default RTT, at 100 and 300 ms, and partitioned:

* centralized: Paris's admin boots on ``nova:paris-remote-corte`` (the request is made from
  Corte, where the user is; every API call crosses the WAN, and so does the compute's RPC);
* edgescope: Corte's admin boots at Corte (Corte's own full site, no scope).

Links are changed only while no fault test or demo runs, and restored after each setting;
the extra compute is stopped by PID and its service record deleted at the end.

    sudo .venv/bin/python -m bench.centralized [--state-dir state-wan] [--repeat 2] [--no-write]

The figures go into ``bench/results/centralized-<UTC time>.json`` (machine and measured load
included: the testbed's processes count as the run's own work) and the table into
docs/benchmarks.md between its own markers; other sections are left alone.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import _results
from edgescope.testbed import Testbed
from edgescope.testbed.process import running_pid
from edgescope.testbed.wan import Wan

REPO = Path(__file__).resolve().parent.parent
DOCS = REPO / "docs" / "benchmarks.md"
START, END = "<!-- centralized-bench:start -->", "<!-- centralized-bench:end -->"
DRIVER = Path(__file__).with_name("_centralized_driver.py")
NOVA_COMPUTE = Path(sys.executable).with_name("nova-compute")
CENTER, EDGE = "Paris", "Corte"
REMOTE_HOST = "paris-remote-corte"
BOOT_TIMEOUT = 120.0
REGISTER_TIMEOUT = 150.0
BUSY = r"pytest.*faults|edgescope demo"
SETTINGS: list[tuple[str, float | None, str]] = [  # (link, RTT to set, where the user is)
    ("default", None, EDGE),
    ("100 ms RTT", 100.0, EDGE),
    ("300 ms RTT", 300.0, EDGE),
    ("partitioned", None, EDGE),
    ("partitioned, request made at Paris", None, CENTER),
]


def find_state(given: Path | None) -> Path:
    candidates = [given] if given else sorted(REPO.glob("state-wan*"))
    for state in candidates:
        if state is not None and (state / "testbed.json").exists():
            return state.resolve()
    raise SystemExit("no WAN testbed found: run `edgescope testbed up --wan default` first")


def driver(testbed: Testbed, site: str, limit: float, **args: Any) -> dict[str, Any]:
    """Run the client driver inside ``site``'s namespace; one JSON result."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env["OS_CLIENT_CONFIG_FILE"] = str(testbed.clouds_yaml)
    argv = [*testbed.sites[site].exec_prefix, sys.executable, str(DRIVER), json.dumps(args)]
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=limit + 30, check=False
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "seconds": limit + 30, "error": "driver killed at its timeout"}
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        return {"ok": False, "seconds": 0.0, "error": proc.stderr.strip()[-300:]}
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def remote_compute_conf(testbed: Testbed, workdir: Path) -> Path:
    """Paris's nova.conf, as a compute host living at Corte (own state and lock dirs)."""
    conf = configparser.ConfigParser(interpolation=None)
    conf.optionxform = str  # type: ignore[assignment,method-assign]
    conf.read(testbed.sites[CENTER].root / "etc" / "nova" / "nova.conf")
    defaults = conf["DEFAULT"]
    defaults["host"] = REMOTE_HOST
    defaults["my_ip"] = testbed.sites[EDGE].bind_host
    defaults["state_path"] = str(workdir / "nova")
    defaults["instances_path"] = str(workdir / "nova" / "instances")
    # Keep Paris's own boots (no host asked) off this host: the fake driver reports 8 vCPUs,
    # 8000 MB and 500 GB; reserving most of it leaves room for a few m1.tiny, and the
    # scheduler's spreading weighers always prefer Paris-compute1's larger free share.
    defaults["reserved_host_memory_mb"] = "6500"
    defaults["reserved_host_cpus"] = "6"
    defaults["reserved_host_disk_mb"] = str(480 * 1024)
    conf["oslo_concurrency"]["lock_path"] = str(workdir / "lock")
    for sub in ("nova/instances", "lock"):
        (workdir / sub).mkdir(parents=True, exist_ok=True)
    path = workdir / "nova.conf"
    with path.open("w") as out:
        conf.write(out)
    return path


@contextmanager
def remote_compute(
    testbed: Testbed, workdir: Path, prefix: str
) -> Iterator[subprocess.Popen[bytes]]:
    """The extra nova-compute in Corte's namespace; stopped by PID, its record deleted."""
    conf = remote_compute_conf(testbed, workdir)
    log = (workdir / "nova-compute.log").open("wb")
    argv = [*testbed.sites[EDGE].exec_prefix, str(NOVA_COMPUTE), "--config-file", str(conf)]
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        stop(proc)
        log.close()
        gone = driver(testbed, EDGE, 150, mode="delete-host", cloud=CENTER, host=REMOTE_HOST,
                      prefix=prefix, timeout=150)  # fmt: skip
        print(f"stopped nova-compute {REMOTE_HOST} (pid {proc.pid}); service record: {gone}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def register(testbed: Testbed, proc: subprocess.Popen[bytes], workdir: Path) -> None:
    """discover_hosts at Paris until the remote compute is an up hypervisor of Paris."""
    paris = testbed.sites[CENTER]
    etc = paris.root / "etc" / "nova"
    manage = [
        *paris.exec_prefix,
        str(NOVA_COMPUTE.with_name("nova-manage")),
        "--config-file",
        str(etc / "nova.conf"),
        "--config-file",
        str(etc / "nova-db.conf"),
        "cell_v2",
        "discover_hosts",
    ]
    deadline = time.monotonic() + REGISTER_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (workdir / "nova-compute.log").read_text()[-1500:]
            raise SystemExit(f"remote nova-compute exited {proc.returncode}:\n{tail}")
        subprocess.run(manage, capture_output=True, timeout=120, check=False)
        state = driver(testbed, EDGE, 10, mode="wait-host", cloud=CENTER, host=REMOTE_HOST,
                       timeout=10)  # fmt: skip
        if state.get("ok"):
            return
    tail = (workdir / "nova-compute.log").read_text()[-1500:]
    raise SystemExit(
        f"{REMOTE_HOST} did not register at Paris in {REGISTER_TIMEOUT:.0f} s:\n{tail}"
    )


def wait_quiet(limit: float = 300.0) -> None:
    """Block (bounded) while a fault test or the demo uses the WAN."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = subprocess.run(["pgrep", "-af", BUSY], capture_output=True, text=True).stdout
        busy = "\n".join(line for line in busy.splitlines() if "pgrep" not in line)
        if not busy.strip():
            return
        print(f"waiting: the WAN testbed is in use by\n{busy}", flush=True)
        time.sleep(10)
    raise SystemExit("the WAN testbed stayed busy; no link was changed")


@contextmanager
def link(wan: Wan, name: str, rtt_ms: float | None) -> Iterator[None]:
    """Apply one Paris–Corte setting; restore the default RTT and heal afterwards."""
    default_rtt = wan.topology.link(CENTER, EDGE).rtt_ms
    wait_quiet()
    if rtt_ms is not None:
        wan.set_link(CENTER, EDGE, rtt_ms=rtt_ms)
    if name.startswith("partitioned"):
        wan.partition(CENTER, EDGE)
    try:
        yield
    finally:
        wan.heal(CENTER, EDGE)
        wan.set_link(CENTER, EDGE, rtt_ms=default_rtt)


def boot(testbed: Testbed, cloud: str, az: str, run_id: str, user: str = EDGE) -> dict[str, Any]:
    """One boot, the client running in ``user``'s namespace."""
    name = f"cbench-{run_id}-{uuid.uuid4().hex[:6]}"
    return driver(testbed, user, BOOT_TIMEOUT, mode="boot", cloud=cloud, name=name,
                  az=az, flavor="m1.tiny", image="debian", timeout=BOOT_TIMEOUT)  # fmt: skip


def measure(testbed: Testbed, wan: Wan, repeat: int, run_id: str) -> list[dict[str, Any]]:
    centralized = (testbed.sites[CENTER].cloud, f"nova:{REMOTE_HOST}")
    local = (testbed.sites[EDGE].cloud, "nova")
    warm = [boot(testbed, *centralized, run_id), boot(testbed, *local, run_id)]
    print(f"warm-up boots (not counted): {json.dumps(warm)}", flush=True)
    rows = []
    for name, rtt, user in SETTINGS:
        runs = 1 if name.startswith("partitioned") else repeat
        with link(wan, name, rtt):
            label = f"{wan.topology.link(CENTER, EDGE).rtt_ms:g} ms RTT"
            label = name if name.startswith("partitioned") else label
            results: dict[str, list[dict[str, Any]]] = {"centralized": [], "local": []}
            for _ in range(runs):  # interleaved, so both see the same load
                results["local"].append(boot(testbed, *local, run_id))
                results["centralized"].append(boot(testbed, *centralized, run_id, user))
        print(f"{time.strftime('%H:%M:%S')} {label}: {json.dumps(results)}", flush=True)
        rows.append({"setting": label, **results})
    return rows


def cell(results: list[dict[str, Any]]) -> tuple[str, float | None]:
    """ "✓ median (min–max)" over the successful boots, then any failures with the first reason."""
    ok = [r["seconds"] for r in results if r.get("ok")]
    failed = [r for r in results if not r.get("ok")]
    text, median = "", None
    if ok:
        median = statistics.median(ok)
        spread = f" ({min(ok):.2f}–{max(ok):.2f})" if len(ok) > 1 else ""
        text = f"✓ {median:.2f} s{spread}"
    if failed:
        first = failed[0]
        why = str(first.get("error", "?")).replace("|", "/")[:110]
        text += "; " if text else ""
        text += f"✗ {len(failed)}/{len(results)} failed (after {first['seconds']:.1f} s: {why})"
    return text, median


def deletion(results: list[dict[str, Any]]) -> str:
    """Median seconds from delete to gone, over the boots that succeeded ("-": none)."""
    times = [r.get("delete_seconds") for r in results if r.get("ok")]
    if not times:
        return "-"
    if any(t is None for t in times):
        return f"not gone in {BOOT_TIMEOUT:.0f} s"
    return f"{statistics.median(t for t in times if t is not None):.2f} s"


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| Paris–Corte link | centralized: Paris control plane, compute at Corte "
        "| edgescope: Corte's own site, no scope | centralized / edgescope "
        "| delete until gone: centralized / edgescope |",
        "|---|---|---|---:|---|",
    ]
    for row in rows:
        central, c = cell(row["centralized"])
        local, lo = cell(row["local"])
        ratio = f"{c / lo:.1f}x" if c is not None and lo else "-"
        gone = f"{deletion(row['centralized'])} / {deletion(row['local'])}"
        lines.append(f"| {row['setting']} | {central} | {local} | {ratio} | {gone} |")
    return "\n".join(lines)


def write_section(body: str, load: _results.Load, repeat: int, stored: str) -> None:
    section = (
        f"{START}\n## Centralized control plane vs edgescope: a boot at Corte "
        "(bench/centralized.py)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} CPUs; {load.sentence()}), on the running WAN testbed (NFQUEUE "
        f"delayer); every figure is in `{stored}`. Seconds from a fresh client "
        "session to ACTIVE (auth, flavor and image look-ups, create, polls every 0.25 s), "
        f"median of {repeat} per link setting (min–max), request made from Corte's namespace; "
        f"one attempt when partitioned, bounded at {BOOT_TIMEOUT:.0f} s. Compute driver: nova's "
        "fake driver (no image download), so the figures are control-plane time.\n\n"
        f"{body}\n\n"
        "Centralized (the seed's Approach 1): one nova-compute process in Corte's namespace is a "
        "compute host of Paris (`nova:paris-remote-corte`): its RabbitMQ, keystone and "
        "placement are Paris's, across the WAN; the user's API calls cross it too. edgescope: "
        "Corte's own full control plane, the same user request with no scope. Both boots are "
        "interleaved under the same link setting; ratios are within this run. Partitioned, a "
        "request made at Corte cannot reach Paris's API (the client waits out its timeout); one "
        "made at Paris is accepted, and the server waits in BUILD for a compute Paris cannot "
        "reach. Delete until gone: after each successful boot, the server is deleted and the "
        "next boot waits until it is gone (so boots do not queue behind deletions).\n"
        f"{END}\n"
    )
    text = DOCS.read_text() if DOCS.exists() else "# edgescope benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section.rstrip("\n") + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/centralized.py needs root (network namespaces)", file=sys.stderr)
        return 2
    testbed = Testbed.from_state(find_state(args.state_dir))
    wan = Wan.attach(Path(testbed.wan_state) if testbed.wan_state else Path("/run/edgescope/wan"))
    run_id = uuid.uuid4().hex[:6]
    wait_quiet(900)  # the extra compute is a Paris host: start it while no fault test runs
    started_at = time.time()
    meter = _results.LoadMeter()
    pids = [row.pid for row in testbed.status() if row.pid]
    pids += [pid for b in testbed.brokers if (pid := running_pid(b.pidfile)) is not None]
    pids += [wan.delayer_pid] if wan.delayer_pid else []
    testbed_cpu = _results.tree_cpu_seconds(pids)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="centralized-") as tmp:
        workdir = Path(tmp)
        with remote_compute(testbed, workdir, f"cbench-{run_id}") as proc:
            try:
                register(testbed, proc, workdir)
                print(f"{REMOTE_HOST} registered at Paris ({time.monotonic() - started:.0f} s)")
                rows = measure(testbed, wan, args.repeat, run_id)
            finally:  # servers first: a compute service hosting servers cannot be deleted
                for site in (CENTER, EDGE):
                    cloud = testbed.sites[site].cloud
                    prefix = f"cbench-{run_id}"
                    left = driver(testbed, site, 60, mode="cleanup", cloud=cloud, prefix=prefix)
                    print(f"cleanup at {site}: {left}")
    load = meter.stop(extra_own_seconds=_results.tree_cpu_seconds(pids) - testbed_cpu)
    body = table(rows)
    print(body)
    print(f"total {time.monotonic() - started:.0f} s; {load.sentence()}")
    if not args.no_write:
        command = f"python -m bench.centralized --repeat {args.repeat}"
        figures = {"repeat": args.repeat, "rows": rows}
        path = _results.write("centralized", command, started_at, load, figures)
        write_section(body, load, args.repeat, _results.relative(path))
        print(f"written: {_results.relative(path)} and {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
