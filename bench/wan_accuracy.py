"""Benchmark of the emulated WAN: delay accuracy per pair, partition command latency, throughput.

Needs root. Brings up its own WAN (prefix ``es-bench``, all four Renater sites), measures,
tears it down, prints the tables, stores the figures in ``bench/results/wan-<UTC time>.json``
(machine and measured load included) and writes them as the "WAN emulation" section of
docs/benchmarks.md (between its own markers; other sections are left alone). Whether other
work shared the CPUs is decided from the CPU use measured during the run
(``bench/_results.py``), the delayer's own CPU time counted as the benchmark's.

    sudo .venv/bin/python -m bench.wan_accuracy [--pings 20] [--no-write]

Baselines are measured in the same run: the undelayed bridge (delayer stopped, its rule
removed) for RTT and throughput.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import _results
from edgescope.testbed.wan import Wan, load_topology

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- wan-bench:start -->", "<!-- wan-bench:end -->"
PAIRS = [
    ("Paris", "Marseille"),
    ("Corte", "Marseille"),
    ("Paris", "Corte"),
    ("Marseille", "Vancouver"),
    ("Paris", "Vancouver"),
]
RECEIVER = """
import socket, sys, time
srv = socket.create_server((sys.argv[1], 7100)); print("ready", flush=True)
conn, _ = srv.accept(); total = 0; start = time.perf_counter()
while chunk := conn.recv(1 << 20): total += len(chunk)
print(total, time.perf_counter() - start)
"""
SENDER = """
import socket, sys
conn = socket.create_connection((sys.argv[1], 7100)); block = b"x" * (1 << 20)
for _ in range(int(sys.argv[2])): conn.sendall(block)
conn.close()
"""


def ping(wan: Wan, a: str, b: str, count: int, interval: float = 0.05) -> list[float]:
    """min/avg/max/mdev in ms of ``count`` pings from a to b."""
    out = subprocess.run(
        [
            *wan.exec_prefix(a),
            "ping",
            "-n",
            "-q",
            "-c",
            str(count),
            "-i",
            str(interval),
            wan.site_address(b),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = re.search(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms", out)
    assert found, out
    return [float(x) for x in found.groups()]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def throughput(wan: Wan, a: str, b: str, megabytes: int) -> float:
    """MB/s of one TCP bulk transfer from a to b."""
    receiver = subprocess.Popen(
        [*wan.exec_prefix(b), sys.executable, "-c", RECEIVER, wan.site_address(b)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None
    assert receiver.stdout.readline().strip() == "ready"
    subprocess.run(
        [*wan.exec_prefix(a), sys.executable, "-c", SENDER, wan.site_address(b), str(megabytes)],
        check=True,
    )
    total, seconds = receiver.stdout.readline().split()
    receiver.wait()
    receiver.stdout.close()
    return int(total) / float(seconds) / 1e6


def timed_ms(action: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        times.append((time.perf_counter() - start) * 1000)
    return times


Figures = dict[str, Any]


def run(pings: int) -> tuple[str, Figures, float]:
    """The markdown body, the figures, and the delayer's CPU seconds (not our child)."""
    topology = load_topology(sites=["Paris", "Corte", "Marseille", "Vancouver"])
    lines: list[str] = []
    figures: Figures = {}
    with tempfile.TemporaryDirectory() as state:
        start = time.perf_counter()
        wan = Wan.up(topology, Path(state), prefix="es-bench")
        up_ms = (time.perf_counter() - start) * 1000
        delayer_cpu = 0.0
        try:
            lines += accuracy(wan, pings, figures)
            lines += partitions(wan, figures)
            lines += bulk(wan, figures)
            delayer_cpu = figures["delayer_cpu_seconds_total"]
        finally:
            start = time.perf_counter()
            wan.down()
            down_ms = (time.perf_counter() - start) * 1000
    figures["up_ms"], figures["down_ms"] = up_ms, down_ms
    lines += [
        "",
        f"Bringing up 4 sites (namespaces, bridge, delayer): {up_ms:.0f} ms; "
        f"tearing down: {down_ms:.0f} ms.",
    ]
    return "\n".join(lines), figures, delayer_cpu


def accuracy(wan: Wan, pings: int, figures: Figures) -> list[str]:
    rows = [
        f"### Delay accuracy ({pings} pings per pair, 50 ms apart)",
        "",
        "| pair | configured RTT | min | avg | max | mdev | avg − configured |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    measured = figures["rtt_ms"] = []
    for a, b in PAIRS:
        configured = wan.topology.link(a, b).rtt_ms
        lo, avg, hi, mdev = ping(wan, a, b, pings)
        measured.append({"pair": f"{a}-{b}", "configured": configured, "min": lo, "avg": avg,
                         "max": hi, "mdev": mdev})  # fmt: skip
        rows.append(
            f"| {a}–{b} | {configured:g} ms | {lo:.2f} | {avg:.2f} | {hi:.2f} | {mdev:.2f} "
            f"| +{avg - configured:.2f} ms |"
        )
    wan.set_link("Paris", "Corte", rtt_ms=0)
    zero = ping(wan, "Paris", "Corte", pings)
    wan.set_link("Paris", "Corte", rtt_ms=20)
    measured.append({"pair": "Paris-Corte at 0 ms", "configured": 0.0, "min": zero[0],
                     "avg": zero[1], "max": zero[2], "mdev": zero[3]})  # fmt: skip
    rows.append(
        f"| Paris–Corte at 0 ms (delayer round trip only) | 0 ms | {zero[0]:.2f} "
        f"| {zero[1]:.2f} | {zero[2]:.2f} | {zero[3]:.2f} | +{zero[1]:.2f} ms |"
    )
    return rows


def partitions(wan: Wan, figures: Figures, repeat: int = 20) -> list[str]:
    cut = timed_ms(lambda: wan.partition("Paris", "Corte"), 1)
    heal: list[float] = []
    for _ in range(repeat):
        heal += timed_ms(wan.heal, 1)
        cut += timed_ms(lambda: wan.partition("Paris", "Corte"), 1)
    isolate = []
    for _ in range(repeat):
        isolate += timed_ms(lambda: wan.isolate("Corte"), 1)
        wan.heal()
    wan.heal()
    startup = timed_ms(
        lambda: subprocess.run([sys.executable, "-c", "import edgescope.cli.wan"], check=True), 3
    )
    wan.heal()
    lost = ping_during_cut(wan)
    figures["partition_ms"] = {"partition": cut, "isolate": isolate, "heal": heal}
    figures["cli_startup_ms"] = startup
    figures["ping_in_flight_at_cut"] = lost

    def row(name: str, values: list[float]) -> str:
        return (
            f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} "
            f"| {max(values):.1f} | {len(values)} |"
        )

    return [
        "",
        "### Partition commands (wall time until the rule is in force)",
        "",
        "| command | median ms | min | max | runs |",
        "|---|---:|---:|---:|---:|",
        row("`Wan.partition(Paris, Corte)`", cut),
        row("`Wan.isolate(Corte)` (3 pairs)", isolate),
        row("`Wan.heal()`", heal),
        "",
        "`edgescope wan partition` and `edgescope testbed partition` add the start-up of a Python "
        f"process importing the CLI: {min(startup):.0f} ms at best in this run (best of 3).",
        "",
        "A ping in flight when a cut starts (cut 150 ms after sending, Paris–Vancouver, "
        f"300 ms RTT): {lost}.",
    ]


def ping_during_cut(wan: Wan) -> str:
    """One ping in flight (held by the delayer) when the cut starts: is its reply dropped?"""
    proc = subprocess.Popen(
        [
            *wan.exec_prefix("Paris"),
            "ping",
            "-n",
            "-c",
            "1",
            "-W",
            "2",
            wan.site_address("Vancouver"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    time.sleep(0.15)
    wan.partition("Paris", "Vancouver")
    out, _ = proc.communicate()
    wan.heal()
    return (
        "dropped, as on a real cut" if " 0 received" in out else "delivered (in-flight packet kept)"
    )


def bulk(wan: Wan, figures: Figures, megabytes: int = 100, runs: int = 3) -> list[str]:
    """Best of ``runs`` transfers each way (the best run is the least disturbed by other load)."""
    pid = wan.delayer_pid
    assert pid is not None
    cpu0 = cpu_seconds(pid)
    delayed = max(throughput(wan, "Paris", "Marseille", megabytes) for _ in range(runs))
    cpu = (cpu_seconds(pid) - cpu0) / runs
    far = throughput(wan, "Paris", "Vancouver", 20)
    figures["delayer_cpu_seconds_total"] = cpu_seconds(pid)  # its whole life, before it stops
    os.kill(pid, signal.SIGTERM)  # baseline: the plain bridge; the delayer removes its rule
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text()[-60:]:
        time.sleep(0.01)
    direct = max(throughput(wan, "Paris", "Marseille", megabytes) for _ in range(runs))
    direct_rtt = ping(wan, "Paris", "Marseille", 10)
    figures["throughput_mb_s"] = {
        "bridge_only": direct,
        "bridge_only_rtt_ms": direct_rtt[1],
        f"paris_marseille_{megabytes}mb_best_of_{runs}": delayed,
        "paris_vancouver_20mb_one_run": far,
    }
    figures["delayer_cpu_seconds_per_transfer"] = cpu
    return [
        "",
        f"### Throughput (one TCP stream, best of {runs}; NFQA_CFG_F_GSO keeps GSO packets whole)",
        "",
        "| path | MB/s | ratio to the bridge |",
        "|---|---:|---:|",
        f"| bridge only, no delayer (baseline, RTT {direct_rtt[1]:.2f} ms) | {direct:.0f} | 1.00 |",
        f"| Paris→Marseille through the delayer, 10 ms RTT, {megabytes} MB "
        f"| {delayed:.0f} | {delayed / direct:.2f} |",
        f"| Paris→Vancouver, 300 ms RTT, 20 MB, one run (slow start dominates) | {far:.1f} "
        f"| {far / direct:.3f} |",
        "",
        f"Delayer CPU per {megabytes} MB transfer: {cpu:.2f} s.",
    ]


def write_section(body: str, load: _results.Load, stored: str) -> None:
    section = (
        f"{START}\n## WAN emulation (bench/wan_accuracy.py)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} CPUs, kernel {platform.release()}, NFQUEUE delayer: no netem); "
        f"{load.sentence()}. Every figure below is in `{stored}`.\n\n"
        f"{body}\n{END}\n"
    )
    text = DOCS.read_text() if DOCS.exists() else "# edgescope benchmarks\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section.rstrip("\n") + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--pings", type=int, default=20)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/wan_accuracy.py needs root (network namespaces)", file=sys.stderr)
        return 2
    started = time.time()
    meter = _results.LoadMeter()
    body, figures, delayer_cpu = run(args.pings)
    load = meter.stop(extra_own_seconds=delayer_cpu)
    print(body)
    print(f"\n{load.sentence()}")
    if not args.no_write:
        command = f"python -m bench.wan_accuracy --pings {args.pings}"
        path = _results.write("wan", command, started, load, {"figures": figures})
        write_section(body, load, _results.relative(path))
        print(f"\nwritten: {_results.relative(path)} and {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
