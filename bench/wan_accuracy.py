"""Benchmark of the emulated WAN: delay accuracy per pair, partition command latency, throughput.

Needs root. Brings up its own WAN (prefix ``es-bench``, all four Renater sites), measures,
tears it down, prints the tables and writes them as the "WAN emulation" section of
docs/benchmarks.md (between its own markers; other sections are left alone).

    sudo .venv/bin/python bench/wan_accuracy.py [--pings 20] [--no-write]

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


def run(pings: int) -> str:
    topology = load_topology(sites=["Paris", "Corte", "Marseille", "Vancouver"])
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as state:
        start = time.perf_counter()
        wan = Wan.up(topology, Path(state), prefix="es-bench")
        up_ms = (time.perf_counter() - start) * 1000
        try:
            lines += accuracy(wan, pings)
            lines += partitions(wan)
            lines += bulk(wan)
        finally:
            start = time.perf_counter()
            wan.down()
            down_ms = (time.perf_counter() - start) * 1000
    lines += [
        "",
        f"Bringing up 4 sites (namespaces, bridge, delayer): {up_ms:.0f} ms; "
        f"tearing down: {down_ms:.0f} ms.",
    ]
    return "\n".join(lines)


def accuracy(wan: Wan, pings: int) -> list[str]:
    rows = [
        f"### Delay accuracy ({pings} pings per pair, 50 ms apart)",
        "",
        "| pair | configured RTT | min | avg | max | mdev | avg − configured |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in PAIRS:
        configured = wan.topology.link(a, b).rtt_ms
        lo, avg, hi, mdev = ping(wan, a, b, pings)
        rows.append(
            f"| {a}–{b} | {configured:g} ms | {lo:.2f} | {avg:.2f} | {hi:.2f} | {mdev:.2f} "
            f"| +{avg - configured:.2f} ms |"
        )
    wan.set_link("Paris", "Corte", rtt_ms=0)
    zero = ping(wan, "Paris", "Corte", pings)
    wan.set_link("Paris", "Corte", rtt_ms=20)
    rows.append(
        f"| Paris–Corte at 0 ms (delayer round trip only) | 0 ms | {zero[0]:.2f} "
        f"| {zero[1]:.2f} | {zero[2]:.2f} | {zero[3]:.2f} | +{zero[1]:.2f} ms |"
    )
    return rows


def partitions(wan: Wan, repeat: int = 20) -> list[str]:
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


def bulk(wan: Wan, megabytes: int = 100, runs: int = 3) -> list[str]:
    """Best of ``runs`` transfers each way (the best run is the least disturbed by other load)."""
    pid = wan.delayer_pid
    assert pid is not None
    cpu0 = cpu_seconds(pid)
    delayed = max(throughput(wan, "Paris", "Marseille", megabytes) for _ in range(runs))
    cpu = (cpu_seconds(pid) - cpu0) / runs
    far = throughput(wan, "Paris", "Vancouver", 20)
    os.kill(pid, signal.SIGTERM)  # baseline: the plain bridge; the delayer removes its rule
    while Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text()[-60:]:
        time.sleep(0.01)
    direct = max(throughput(wan, "Paris", "Marseille", megabytes) for _ in range(runs))
    direct_rtt = ping(wan, "Paris", "Marseille", 10)
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


def write_section(body: str, load: float) -> None:
    section = (
        f"{START}\n## WAN emulation (bench/wan_accuracy.py)\n\n"
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on {platform.node()} "
        f"({os.cpu_count()} CPUs, kernel {platform.release()}, NFQUEUE delayer: no netem; "
        f"1-min load average {load:.1f} at the start: other work shared the CPUs).\n\n"
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
    load = os.getloadavg()[0]
    body = run(args.pings)
    print(body)
    if not args.no_write:
        write_section(body, load)
        print(f"\nwritten to {DOCS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
