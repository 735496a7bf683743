"""``python -m bench``: the proxy benchmarks (issue 3). Prints the tables and a verdict per
target, stores everything in ``bench/results/proxy-<UTC time>.json`` (machine and measured
load included) and writes the "Proxy" section of docs/benchmarks.md from it, and plots of its tables
beside the JSON (bench/plots.py: ``proxy-<UTC time>.latency.png``, ``.fanout.png``,
``.failover.png``).

    python -m bench              # all figures, a few minutes
    python -m bench --no-write   # print only

Figures: 1) added latency per hop and throughput, direct vs HAProxy vs edgescope, plus the
HTTP-stack choice; 2) ``&`` fan-out width; 3) ``|`` fail-over; 4) ``&`` request bodies;
5) scope parsing; then, with HAProxy installed, the fast path behind the site's HAProxy
(bench/haproxy.py, its own section and results file). Every figure is compared with a
baseline measured in the same run; the targets and their verdicts are in
``bench/verdicts.py``. The WAN benchmark is separate (bench/wan_accuracy.py, needs root).
The section goes between its own markers; other sections are left alone.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import _results
from bench.body import body_figures
from bench.failover import READ_TIMEOUT, failover_figures
from bench.fanout import DELAY_MS, SLOWEST_MS, fanout_figures
from bench.parse import CALLS, parse_figures
from bench.plots import write_plots
from bench.proxy_latency import CONCURRENCY, N_LATENCY, latency_figures, stack_figures
from bench.verdicts import MAX_FANOUT_OVERHEAD_MS, describe, proxy_verdicts

DOCS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
START, END = "<!-- proxy-bench:start -->", "<!-- proxy-bench:end -->"


def md_table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def show(title: str, headers: list[str], rows: list[list[str]]) -> None:
    table = Table(title=title)
    for header in headers:
        table.add_column(header)
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def f(value: float, digits: int = 2) -> str:
    return f"{value:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    started = time.time()
    meter = _results.LoadMeter()
    figures: dict[str, list[dict[str, Any]]] = {}
    sections: list[tuple[str, list[str], list[list[str]], str]] = []

    rows = figures["latency"] = latency_figures()
    haproxy = next((r for r in rows if r["path"].startswith("HAProxy")), None)
    table = [
        [
            r["path"],
            f(r["p50"]),
            f(r["p99"]),
            f(r["added_p50"]),
            f(r["added_p99"]),
            f(r["rps"], 0),
            f(r["added_p50"] / haproxy["added_p50"], 1) + "x"
            if haproxy and haproxy["added_p50"] > 0 and r is not rows[0]
            else "-",
        ]
        for r in rows
    ]
    note = (
        f"{N_LATENCY} sequential keep-alive GETs per path, interleaved in 10 rounds; "
        f"throughput: {CONCURRENCY} concurrent keep-alive clients, median of 6 interleaved "
        f"0.5 s rounds. Targets (verdicts above): edgescope with a scope adds <= 0.5 ms p50, "
        f"<= 3x HAProxy's added latency, and serves >= 2,000 requests/s on one core."
    )
    sections.append(
        (
            "1. Added latency per hop and throughput (ms, requests/s)",
            ["path", "p50", "p99", "added p50", "added p99", "req/s", "added p50 vs HAProxy"],
            table,
            note,
        )
    )

    rows = figures["stack"] = stack_figures()
    table = [[r["path"], f(r["p50"]), f(r["p99"]), f(r["added_p50"]), f(r["rps"], 0)] for r in rows]
    sections.append(
        (
            "HTTP stack choice: one minimal streaming forwarder per stack (ms, req/s)",
            ["stack", "p50", "p99", "added p50", "req/s"],
            table,
            "Same backend, same run, same load generator; see docs/design.md '## proxy'.",
        )
    )

    rows = figures["fanout"] = fanout_figures()
    table = [
        [
            str(r["width"]),
            f(r["slowest_p50"]),
            f(r["fanout_p50"]),
            f(r["fanout_p99"]),
            f(r["added_p50"]),
            f(r["proxy_cpu_ms_per_branch"], 3),
            f(r["mem_per_fanout_kb"], 0),
            f"{r['in_flight']} ({r['failed']} failed)",
        ]
        for r in rows
    ]
    sections.append(
        (
            "2. `&` fan-out width (ms; KiB of proxy RSS per in-flight fan-out)",
            [
                "sites",
                "slowest site alone p50",
                "fan-out p50",
                "fan-out p99",
                "added p50",
                "proxy CPU ms per branch",
                "KiB per fan-out",
                "fan-outs in flight",
            ],
            table,
            f"Each site is a real listening endpoint (one process hosts them all); "
            f"each answers after {DELAY_MS:.0f} ms, the slowest after "
            f"{SLOWEST_MS:.0f} ms. Target: latency ~ slowest site + "
            f"{MAX_FANOUT_OVERHEAD_MS:g} ms. Proxy CPU per branch: the proxy's user + system "
            "time over the sequential fan-outs, divided by calls x sites.",
        )
    )

    rows = figures["failover"] = failover_figures()
    table = [
        [r["case"], f(r["p50"]), f(r["p99"]), f(r["added_p50"]), str(r["errors"])] for r in rows
    ]
    sections.append(
        (
            "3. `|` fail-over: time added when the first site fails (ms)",
            ["case", "p50", "p99", "added p50 vs baseline", "non-200 answers"],
            table,
            f"Peer read_timeout {READ_TIMEOUT * 1000:.0f} ms for the black hole (a "
            "socket that listens and never answers). Target: <= 5 ms once the "
            "breaker is open.",
        )
    )

    rows = figures["body"] = body_figures()
    table = [
        [r["strategy"], f(r["seconds"]), f(r["first_byte_s"], 3), f(r["rss_mb"], 1)] for r in rows
    ]
    sections.append(
        (
            "4. `&` request body to 2 sites: tee vs spool-first (256 MB)",
            ["strategy", "seconds", "branches start after (s)", "peak RSS growth (MB)"],
            table,
            "In-process, on edgescope.proxy.body; each branch hashes what it receives. The "
            "tee starts every branch at once with bounded memory and no disk; a spool would "
            "delay every upload until the client finished sending (decided: tee for a flat "
            "`&`, spool only where a branch may be retried or skipped, i.e. `|`).",
        )
    )

    rows = figures["parse"] = parse_figures()
    sections.append(
        (
            "5. Parsing a scope (ms per call, median)",
            ["case", "p50"],
            [[r["case"], f(r["p50_ms"], 4)] for r in rows],
            f"In-process, {CALLS} calls of `parse_scope` per case on "
            "`{nova: Paris & Corte, glance: Corte | Marseille, keystone: S<i>}`.",
        )
    )

    verdicts = proxy_verdicts(figures["latency"], figures["fanout"], figures["failover"])
    load = meter.stop()
    for title, headers, table, _ in sections:
        show(title, headers, table)
    targets = [[v.target, describe(v)] for v in verdicts]
    show("Targets", ["target", "verdict"], targets)
    machine = _results.machine()
    context = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on "
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['haproxy'] or 'no HAProxy'}; {load.sentence()}. Absolute figures move with "
        f"other work on the machine, so compare within a table. The run took "
        f"{load.wall_seconds:.0f} s. Command: `python -m bench`."
    )
    Console().print(context)
    if args.no_write:
        return
    path = _results.write(
        "proxy",
        "python -m bench",
        started,
        load,
        {"figures": figures, "verdicts": [v.as_json() for v in verdicts]},
    )
    body = "\n\n".join(
        f"### {title}\n\n{md_table(headers, table)}\n\n{note}"
        for title, headers, table, note in sections
    )
    section = (
        f"{START}\n## Proxy (issue 3)\n\n{context} Every figure below is in "
        f"`{_results.relative(path)}`.\n\n### Targets\n\n"
        f"{md_table(['target', 'verdict'], targets)}\n\n{body}\n{END}\n"
    )
    _results.write_docs_section(section, START, END)
    plots = write_plots(figures, path)
    Console().print(f"written: {_results.relative(path)} and {DOCS.name}")
    Console().print("plots: " + ", ".join(_results.relative(p) for p in plots))


def run_all() -> None:
    """Every proxy figure, then (with HAProxy installed) the fast path's (bench/haproxy.py)."""
    main()
    if shutil.which("haproxy"):
        from bench import haproxy

        haproxy.main(write="--no-write" not in sys.argv)


if __name__ == "__main__":
    run_all()
