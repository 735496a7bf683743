"""The tables of ``python -m bench`` (figures 1-5), from the rows it measured; a row whose
calls did not all succeed shows FAILED and why, a figure that could not run at all one
FAILED row (``crashed``). The "Proxy" section of docs/benchmarks.md is made from these.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bench._tables import Section, cells, crashed_row, number
from bench._tally import failed
from bench.failover import READ_TIMEOUT
from bench.fanout import DELAY_MS, SLOWEST_MS
from bench.parse import CALLS
from bench.proxy_latency import CONCURRENCY, FULL
from bench.verdicts import HAPROXY_PREFIX, MAX_FANOUT_OVERHEAD_MS

Rows = list[dict[str, Any]]
LABELS = {"latency": "path", "stack": "path", "fanout": "width", "failover": "case",
          "body": "strategy", "parse": "case"}  # fmt: skip
"""The column that names a row, per figure."""


def failures(figures: Mapping[str, Rows], crashed: Mapping[str, str]) -> list[str]:
    """``<figure>, <row>: <why>`` for every failed row and every figure that crashed."""
    out = [f"{name} (the whole figure): {why}" for name, why in crashed.items()]
    for name, rows in figures.items():
        out += [f"{name}, {row[LABELS[name]]}: {why}" for row in rows if (why := failed(row))]
    return out


def _table(
    rows: Rows, crashed: str | None, label: str, columns: list[tuple[str, int]]
) -> list[list[str]]:
    if crashed is not None:
        return [crashed_row(crashed, len(columns) + 1)]
    return [cells(row, label, columns) for row in rows]


def latency_section(rows: Rows, crashed: str | None) -> Section:
    haproxy = next((r for r in rows if str(r["path"]).startswith(HAPROXY_PREFIX)), None)
    base = haproxy["added_p50"] if haproxy and not failed(haproxy) else None
    columns = [("p50", 2), ("p99", 2), ("added_p50", 2), ("added_p99", 2), ("rps", 0)]
    table = _table(rows, crashed, "path", columns)
    for row, line in zip([] if crashed else rows, table, strict=False):
        ratio = ""
        if not failed(row):
            first = row is rows[0]
            ratio = "-" if first or not base else number(row["added_p50"] / base, 1) + "x"
        line.append(ratio)
    if crashed:
        table[0].append("")
    return Section(
        "1. Added latency per hop and throughput (ms, requests/s)",
        ["path", "p50", "p99", "added p50", "added p99", "req/s", "added p50 vs HAProxy"],
        table,
        f"{FULL.calls} sequential keep-alive GETs per path, interleaved in {FULL.rounds} "
        f"rounds; throughput: {CONCURRENCY} concurrent keep-alive clients, 2xx answers only, "
        f"median of {FULL.rps_rounds} interleaved {FULL.seconds / FULL.rps_rounds:g} s rounds. "
        "Two proxies: Paris and Corte each list the other as a peer with its public key, as "
        "deployed (no TLS here). Targets (verdicts above): edgescope with a scope adds "
        "<= 0.5 ms p50, <= 3x HAProxy's added latency, and serves >= 2,000 requests/s on one "
        "core.",
    )


def stack_section(rows: Rows, crashed: str | None) -> Section:
    return Section(
        "HTTP stack choice: one minimal streaming forwarder per stack (ms, req/s)",
        ["stack", "p50", "p99", "added p50", "req/s"],
        _table(rows, crashed, "path", [("p50", 2), ("p99", 2), ("added_p50", 2), ("rps", 0)]),
        "Same backend, same run, same load generator; see docs/design.md '## proxy'.",
    )


def fanout_section(rows: Rows, crashed: str | None) -> Section:
    columns = [
        ("slowest_p50", 2),
        ("fanout_p50", 2),
        ("fanout_p99", 2),
        ("added_p50", 2),
        ("proxy_cpu_ms_per_branch", 3),
        ("mem_per_fanout_kb", 0),
        ("in_flight", 0),
    ]
    return Section(
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
        _table(rows, crashed, "width", columns),
        f"Each site is a real listening endpoint (one process hosts them all); each answers "
        f"after {DELAY_MS:.0f} ms, the slowest after {SLOWEST_MS:.0f} ms. Target: latency ~ "
        f"slowest site + {MAX_FANOUT_OVERHEAD_MS:g} ms. Proxy CPU per branch: the proxy's user "
        "+ system time over the sequential fan-outs, divided by calls x sites. A width's "
        "figures count only when every call (the slowest site alone, the sequential and the "
        "concurrent fan-outs) answered 2xx. The proxy's limits are raised to the width "
        "(`max_fanout`, `max_scope_sites`, `max_scope_bytes`).",
    )


def failover_section(rows: Rows, crashed: str | None) -> Section:
    return Section(
        "3. `|` fail-over: time added when the first site fails (ms)",
        ["case", "p50", "p99", "added p50 vs baseline"],
        _table(rows, crashed, "case", [("p50", 2), ("p99", 2), ("added_p50", 2)]),
        f"Peer read_timeout {READ_TIMEOUT * 1000:.0f} ms for the black hole (a socket that "
        "listens and never answers), 30 s for the others. Every call must answer 2xx (the "
        "`|` reaches Good). "
        "Target: <= 5 ms once the breaker is open.",
    )


def body_section(rows: Rows, crashed: str | None) -> Section:
    size = rows[0]["size"] // 2**20 if rows else 256
    return Section(
        f"4. `&` request body to 2 sites: tee vs spool-first ({size} MB)",
        ["strategy", "seconds", "branches start after (s)", "peak RSS growth (MB)"],
        _table(rows, crashed, "strategy", [("seconds", 2), ("first_byte_s", 3), ("rss_mb", 1)]),
        "In-process, on edgescope.proxy.body; each branch hashes what it receives. The tee "
        "starts every branch at once with bounded memory and no disk; a spool would delay "
        "every upload until the client finished sending (decided: tee for a flat `&`, spool "
        "only where a branch may be retried or skipped, i.e. `|`).",
    )


def parse_section(rows: Rows, crashed: str | None) -> Section:
    return Section(
        "5. Parsing a scope (ms per call, median)",
        ["case", "p50"],
        _table(rows, crashed, "case", [("p50_ms", 4)]),
        f"In-process, {CALLS} calls of `parse_scope` per case on "
        "`{nova: Paris & Corte, glance: Corte | Marseille, keystone: S<i>}`.",
    )


SECTIONS = {"latency": latency_section, "stack": stack_section, "fanout": fanout_section,
            "failover": failover_section, "body": body_section, "parse": parse_section}  # fmt: skip


def sections(figures: Mapping[str, Rows], crashed: Mapping[str, str]) -> list[Section]:
    return [make(figures.get(name, []), crashed.get(name)) for name, make in SECTIONS.items()]
