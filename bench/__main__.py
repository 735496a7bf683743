"""``python -m bench``: the proxy benchmarks (issue 3); prints tables, writes docs/benchmarks.md.

    python -m bench              # all figures, a few minutes
    python -m bench --no-write   # print only

Figures: 1) added latency per hop and throughput, direct vs HAProxy vs edgescope, plus the
HTTP-stack choice; 2) ``&`` fan-out width; 3) ``|`` fail-over. Every figure is compared with
a baseline measured in the same run. The WAN benchmark is separate (bench/wan_accuracy.py,
needs root). The section goes between its own markers; other sections are left alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.body import body_figures
from bench.failover import READ_TIMEOUT, failover_figures
from bench.fanout import DELAY_MS, SLOWEST_MS, fanout_figures
from bench.proxy_latency import CONCURRENCY, N_LATENCY, latency_figures, stack_figures

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
    load_before = os.getloadavg()[0]
    sections: list[tuple[str, list[str], list[list[str]], str]] = []

    rows = latency_figures()
    by = {r["path"]: r for r in rows}
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
    local = by["edgescope, X-Scope {image: Paris} (local)"]
    note = (
        f"{N_LATENCY} sequential keep-alive GETs per path, interleaved in 10 rounds; "
        f"throughput: {CONCURRENCY} concurrent keep-alive clients, median of 6 interleaved "
        f"0.5 s rounds. Targets: edgescope adds "
        f"<= 0.5 ms p50 (measured {local['added_p50']:.2f} ms with a scope), <= 3x HAProxy's "
        f"added latency, >= 2,000 requests/s on one core (measured {local['rps']:.0f})."
    )
    sections.append(
        (
            "1. Added latency per hop and throughput (ms, requests/s)",
            ["path", "p50", "p99", "added p50", "added p99", "req/s", "added p50 vs HAProxy"],
            table,
            note,
        )
    )

    rows = stack_figures()
    table = [[r["path"], f(r["p50"]), f(r["p99"]), f(r["added_p50"]), f(r["rps"], 0)] for r in rows]
    sections.append(
        (
            "HTTP stack choice: one minimal streaming forwarder per stack (ms, req/s)",
            ["stack", "p50", "p99", "added p50", "req/s"],
            table,
            "Same backend, same run, same load generator; see docs/design.md '## proxy'.",
        )
    )

    rows = fanout_figures()
    table = [
        [
            str(r["width"]),
            f(r["slowest_p50"]),
            f(r["fanout_p50"]),
            f(r["fanout_p99"]),
            f(r["added_p50"]),
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
                "KiB per fan-out",
                "fan-outs in flight",
            ],
            table,
            f"Each site is a real listening endpoint (one process hosts them all); "
            f"each answers after {DELAY_MS:.0f} ms, the slowest after "
            f"{SLOWEST_MS:.0f} ms. Target: latency ~ slowest site + 2 ms.",
        )
    )

    rows = failover_figures()
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

    rows = body_figures()
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

    for title, headers, table, _ in sections:
        show(title, headers, table)
    cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    haproxy_version = subprocess.run(
        ["haproxy", "-v"], capture_output=True, text=True, check=False
    ).stdout.splitlines()[:1]
    context = (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on "
        f"{cpu} shared cores (load average {load_before:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at the end; absolute figures vary 2-5x with other work on "
        f"the machine, so compare within a table), "
        f"Python {platform.python_version()}, "
        f"{haproxy_version[0] if haproxy_version else 'no HAProxy'}; "
        f"run took {time.time() - started:.0f} s. Command: `python -m bench`."
    )
    body = "\n\n".join(
        f"### {title}\n\n{md_table(headers, table)}\n\n{note}"
        for title, headers, table, note in sections
    )
    section = f"{START}\n## Proxy (issue 3)\n\n{context}\n\n{body}\n{END}\n"
    Console().print(context)
    if not args.no_write:
        write_section(section)


def write_section(section: str) -> None:
    text = DOCS.read_text() if DOCS.exists() else "# edgescope benchmarks\n\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section.rstrip("\n") + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


if __name__ == "__main__":
    main()
