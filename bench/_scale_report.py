"""The tables of ``bench/scale.py``: printed, and the "Scale" section of docs/benchmarks.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from bench import _results
from bench.verdicts import TARGET_MS_PER_BRANCH, describe, scale_incomplete, scale_verdict

START, END = "<!-- scale-bench:start -->", "<!-- scale-bench:end -->"


def seconds(value: float | None) -> str:
    return "not within the timeout" if value is None else f"{value:.1f} s"


def tables(figures: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """(title, headers, rows) of every table."""
    out = []
    boot, idle = figures["bootstrap"], figures["idle"]
    rows = [
        ["all proxies started", seconds(boot["start_s"])],
        ["every proxy knows every site (cold start, one seed each)", seconds(boot["converged_s"])],
        ["a new site is usable from the entry (one seed)",
         seconds(figures["join"]["usable_from_entry_s"])],
        ["every proxy knows the new site", seconds(figures["join"]["known_everywhere_s"])],
        ["every proxy knows a site left", seconds(figures["leave"]["known_everywhere_s"])],
    ]  # fmt: skip
    cut = figures.get("partition")
    if cut:
        rows += [
            [f"the other 90 % know news during a cut of {cut['cut_sites']} sites",
             seconds(cut["majority_converged_s"])],
            ["after the heal, news of both sides known everywhere",
             seconds(cut["heal_converged_s"])],
            ["after the heal, an & over the cut sites the entry had tried succeeds",
             seconds(cut["cut_sites_usable_s"])],
        ]  # fmt: skip
    out.append(("Directory convergence", ["event", "time"], rows))
    after = figures["after_fanout"]
    rows = [
        ["directory syncs started / proxy / s", f"{idle['syncs_per_proxy_s']:.2f}", "-"],
        ["syncs that exchanged versions / proxy / s", f"{idle['exchanges_per_proxy_s']:.3f}", "-"],
        ["probes / proxy / s (median, max)",
         f"{idle['probes_per_proxy_s_median']:.2f}, {idle['probes_per_proxy_s_max']:.2f}",
         f"{after['probes_per_proxy_s_median']:.2f}, {after['probes_per_proxy_s_max']:.2f}"],
        ["entry proxy: peers in use, probes / s",
         f"{idle['entry_peers_in_use']}, {idle['entry_probes_per_s']:.1f}",
         f"{after['entry_peers_in_use']}, {after['entry_probes_per_s']:.1f}"],
    ]  # fmt: skip
    out.append(("Background traffic per proxy", ["", "idle edge", "after the & fan-outs"], rows))
    rows = [
        [
            str(r["width"]),
            complete(r),
            f"{r['farthest_rtt_ms']:.0f}",
            f"{r['bare_p50_ms']:.0f}",
            f"{r['fanout_p50_ms']:.0f}",
            f"{r['fanout_p50_ms'] - r['bare_p50_ms']:+.0f}",
            f"{r['raw_cpu_ms_per_branch']:.3f}",
            f"{r['bare_cpu_ms_per_branch']:.3f}",
            f"{r['entry_cpu_ms_per_branch']:.3f}",
            f"{r['entry_cpu_ms_per_branch'] / max(r['bare_cpu_ms_per_branch'], 1e-9):.1f}x",
        ]
        for r in figures["fanout"]
    ]
    out.append(
        (
            "& fan-out from the entry site",
            ["sites", "complete", "farthest RTT ms", "bare aiohttp p50 ms", "edgescope p50 ms",
             "added ms", "raw asyncio CPU ms/branch", "bare aiohttp CPU ms/branch",
             "entry CPU ms/branch", "CPU vs bare aiohttp"],
            rows,
        )
    )  # fmt: skip
    if cut:
        used, unused = cut["or_through_cut_in_use"], cut["or_through_cut_unused"]
        rows = [
            [str(i + 1), f"{a['status']}, {a['ms']:.0f} ms", f"{b['status']}, {b['ms']:.0f} ms"]
            for i, (a, b) in enumerate(zip(used, unused, strict=True))
        ]
        out.append(
            (
                "| through three cut sites, then a reachable one (one call after the other)",
                ["call", "cut sites in use (probed)", "cut sites never called"],
                rows,
            )
        )
    memory = figures["memory"]
    rows = [["RSS per proxy (with its backend), median over workers",
             f"{memory['per_proxy_kb_median'] / 1024:.1f} MiB"]]  # fmt: skip
    out.append(("Memory", ["", ""], rows))
    return out


def complete(row: dict[str, Any]) -> str:
    """``5/5``; with ``FAILED`` when a call or a baseline call did not complete."""
    text = f"{row['ok']}/{row['calls']}"
    return text if scale_incomplete(row) is None else f"FAILED: {text}"


def failures(figures: dict[str, Any]) -> list[str]:
    """Every ``&`` width whose calls or baseline calls did not all complete."""
    return [
        f"`&` over {row['width']} sites: {why}"
        for row in figures["fanout"]
        if (why := scale_incomplete(row))
    ]


def notes(figures: dict[str, Any]) -> list[str]:
    """What went wrong along the way: syncs with no answer, incomplete ``&`` calls."""
    out = []
    for phase in ("join", "leave"):
        failed = figures[phase].get("unanswered_syncs")
        if failed:
            reasons = ", ".join(f"{n} {why}" for why, n in sorted(failed.items()))
            out.append(f"Syncs with no answer during the {phase}: {reasons}.")
    out += [f"FAILED: {line}" for line in failures(figures)]
    for row in figures["fanout"]:
        if any(row.get("tcp_entry", {}).values()) or any(row.get("tcp_peers", {}).values()):
            out.append(
                f"TCP counters during the `&` over {row['width']} sites: entry "
                f"{row['tcp_entry']}, peers {row['tcp_peers']}."
            )
        for call in row.get("incomplete", []):
            out.append(
                f"Incomplete `&` over {row['width']} sites: status {call['status']} after "
                f"{call['ms']} ms, {call['items']} items; branches: {call['sites'][:200]}; "
                f"answer: {call['body'][:300]}"
            )
    return out


def report(
    figures: dict[str, Any], load: _results.Load, path: Path | None, *, write_docs: bool
) -> int:
    """Print the tables; write the docs section after a run with no failure. The exit status:
    1 when an ``&`` or its baseline did not complete (the docs are then left unchanged)."""
    console = Console(width=max(120, Console().width))
    for title, headers, rows in tables(figures):
        table = Table(title=title)
        for header in headers:
            table.add_column(header)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    cut = figures.get("partition")
    if cut:
        console.print(f"the cut side kept serving: {cut['cut_side_serves']}")
    for line in notes(figures):
        console.print(line, markup=False)
    console.print(load.sentence())
    if path is not None:
        console.print(f"stored: {_results.relative(path)}", markup=False)
    if failures(figures):
        console.print("FAILED: docs/benchmarks.md left unchanged (a failed run writes no figure).")
        return 1
    if write_docs and path is not None:
        _results.write_docs_section(markdown(figures, load, path), START, END)
        console.print("written: docs/benchmarks.md")
    return 0


def markdown(figures: dict[str, Any], load: _results.Load, path: Path) -> str:
    where = (
        f"{figures['zones']} zones in network namespaces of the emulated WAN (RTT 10 ms per zone "
        "apart, up to "
        f"{10 * (figures['zones'] - 1)} ms; none inside a zone)"
        if figures["wan"]
        else f"{figures['zones']} zones on 127.0.0.1 (no WAN delays, no partition)"
    )
    context = (
        f"`python -m bench.scale`: {figures['sites']} real proxies, each with its own listener "
        f"and backend, in {where}; gossip every {figures['gossip_interval']} s to "
        f"{figures['gossip_fanout']} sites. {load.sentence()}. Every figure is in "
        f"`{_results.relative(path)}`."
    )
    body = []
    for title, headers, rows in tables(figures):
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        body.append(f"### {title}\n\n" + "\n".join(lines))
    widest = max(figures["fanout"], key=lambda r: r["width"])
    judged = scale_verdict(widest)
    verdict = (
        f"Target (issue 14): at most {TARGET_MS_PER_BRANCH} ms of entry-proxy CPU per branch, "
        f"judged at {widest['width']} sites on a complete run: {describe(judged)}. Against "
        f"{widest['bare_cpu_ms_per_branch']:.3f} ms for a bare aiohttp client doing nothing "
        f"but the same GETs and {widest['raw_cpu_ms_per_branch']:.3f} ms for a bare asyncio "
        "protocol (prebuilt request, no HTTP library)"
        + ("; docs/scale.md explains the gap." if judged.met is False else ".")
    )
    remarks = "".join(f"\n- {line}" for line in notes(figures))
    return (
        f"{START}\n## Scale (issue 14)\n\n{context}\n\n"
        + "\n\n".join(body)
        + (f"\n\n{verdict}\n" + (f"\nAlong the way:\n{remarks}\n" if remarks else ""))
        + f"{END}\n"
    )
