"""The report of bench/haproxy.py: its tables, ratios and verdicts, and the "Behind the site's
HAProxy" section of docs/benchmarks.md (written only after a run with no failed path).

    python -m bench.haproxy [--smoke] [--no-docs] [--no-write]
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from bench import _results
from bench._run import Options, Outcome, crash_reason, finish, measured_at
from bench._tables import Section, cells, crashed_row, md_table
from bench._tally import failures, first_failed
from bench.haproxy import CONCURRENCY, FULL, haproxy_figures, ratio_incomplete
from bench.verdicts import describe, haproxy_verdicts

START, END = "<!-- haproxy-bench:start -->", "<!-- haproxy-bench:end -->"
RATIO_LABELS = {
    "fast_path_p50": ("1-DC call, fast path / plain HAProxy: p50", 3),
    "fast_path_rps": ("1-DC call, plain HAProxy / fast path: req/s", 3),
    "behind_haproxy_p50": ("scoped call, HAProxy + edgescope / edgescope alone: p50", 2),
    "behind_haproxy_rps": ("scoped call, edgescope alone / HAProxy + edgescope: req/s", 2),
    "two_proxies_rps": ("scoped calls, two proxies / one behind HAProxy: req/s", 2),
}


def figures_section(figures: dict[str, Any], crashed: str | None) -> Section:
    headers = ["path", "p50 (ms)", "p99 (ms)", "req/s"]
    if crashed is not None:
        return Section("Figures", headers, [crashed_row(crashed, len(headers))])
    rows = [cells(r, "path", [("p50", 2), ("p99", 2), ("rps", 0)]) for r in figures["rows"]]
    return Section("Figures", headers, rows)


def ratio_rows(figures: dict[str, Any]) -> list[list[str]]:
    ratios, rows = figures.get("ratios", {}), []
    for name, (label, digits) in RATIO_LABELS.items():
        value = ratios.get(name)
        rows.append([label, "-" if value is None else f"{value:.{digits}f}×"])
    cpu = figures.get("haproxy_cpu_us")
    if cpu and first_failed(figures["rows"][:2]) is None:  # the two unscoped paths
        plain, fast = cpu.values()
        rows.append(["HAProxy's CPU per 1-DC call, fast path / plain (µs)",
                     f"{fast:.1f} / {plain:.1f} µs: +{fast - plain:.1f} µs"])  # fmt: skip
    return rows


def split_sentence(split: dict[str, int]) -> str:
    total = sum(split.values()) or 1
    shares = ", ".join(f"{name} {100 * n / total:.1f} %" for name, n in sorted(split.items()))
    return f"HAProxy's round robin gave the two proxies {shares} of the scoped calls."


def note(figures: dict[str, Any]) -> str:
    return (
        f"One backend (an aiohttp endpoint), Debian's HAProxy running `site_config` (the "
        f"testbed's configuration: {figures['rules']} fast-path lines in the frontend: the "
        "scope ACLs, the fail-closed 503 and the `use_backend`), and real `edgescope proxy "
        "run` processes. *Unscoped*: a plain 186-byte token and an OpenStack request id, what "
        "nearly every call of a site carries; the plain frontend is in the same HAProxy "
        "process with no rules. *edgescope alone*: the same proxy's image listener called "
        f"directly. Latency: {FULL.calls} sequential keep-alive GETs per path, one path after "
        f"the other call by call (no drift between them); throughput: {CONCURRENCY} "
        f"concurrent keep-alive clients, 2xx answers only, median of {FULL.rounds} "
        f"interleaved {FULL.seconds / FULL.rounds:.0f} s rounds. Every call of a path must "
        "answer 2xx for its figures to count. Two proxies: the same config on 127.0.0.1 and "
        "127.0.0.2 (two controllers), HAProxy's round robin between them; on 2 CPUs shared "
        "by the load generator, HAProxy, the backend and the proxies (and other work), one "
        "proxy already finds no idle CPU, so a second one cannot add throughput here: the "
        "figure shows it costs none and shares the calls evenly. HAProxy's CPU per call: "
        "the CPU time of its threads (`/proc/<pid>/task/*/schedstat`, in ns) over "
        f"{FULL.cpu_turns} alternating turns of {FULL.cpu_calls:,} unscoped calls through "
        "each frontend: what the rules cost, free of the latency noise of a shared machine."
    )


def outcome(smoke: bool) -> Outcome:
    """Measure the section's figures (one run); a run that raises is FAILED as a whole."""
    started, meter = time.time(), _results.LoadMeter()
    crashed = None
    try:
        figures = haproxy_figures(smoke)
    except Exception as exc:  # reported as a FAILED figure; the run exits 1
        figures, crashed = {"rows": [], "ratios": {}}, crash_reason(exc)
    load = meter.stop()
    rows = figures["rows"]
    verdicts = haproxy_verdicts(
        figures["ratios"], ratio_incomplete(rows) if crashed is None else {}
    )
    targets = [[v.target, describe(v)] for v in verdicts]
    table = figures_section(figures, crashed)
    ratio_table = Section("Ratios", ["ratio", "measured"], ratio_rows(figures))
    command = "python -m bench.haproxy" + (" --smoke" if smoke else "")
    context = measured_at(started, load, command)
    split = split_sentence(figures["split"]) if crashed is None else ""
    lost = [f"the whole figure: {crashed}"] if crashed else failures("behind HAProxy", rows, "path")

    def docs(path: str) -> str:
        return (
            f"{START}\n## Behind the site's HAProxy (issue 12)\n\n{context} Every figure below "
            f"is in `{path}`.\n\n### Targets\n\n{md_table(['target', 'verdict'], targets)}\n\n"
            f"### Ratios\n\n{md_table(ratio_table.headers, ratio_table.rows)}\n\n"
            f"### Figures\n\n{md_table(table.headers, table.rows)}\n\n"
            f"{note(figures)} {split}\n{END}\n"
        )

    return Outcome(
        name="haproxy",
        command=command,
        started=started,
        load=load,
        document={
            "figures": figures,
            "crashed": crashed,
            "verdicts": [v.as_json() for v in verdicts],
        },
        sections=[
            Section("Behind the site's HAProxy (ms, req/s)", table.headers, table.rows),
            ratio_table,
        ],
        targets=targets,
        context=context,
        failures=lost,
        docs=docs,
        markers=(START, END),
        extra=[split] if split else [],
    )


def main(argv: Sequence[str] | None = None) -> int:
    options = Options.parse("python -m bench.haproxy", argv)
    return finish([outcome(options.smoke)], options)
