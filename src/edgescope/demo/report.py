"""The demo's HTML report: the seed's table, each probe's time, the partial phase's timeline.

One self-contained file (inline CSS and SVG, nothing fetched), written beside the markdown
table by ``edgescope demo`` (``state-wan/demo-report.html``). Pure: results in, text out.

    html = render_html(results, note="emulated WAN ...", phases=[Phase("Paris–Corte cut", t0, t1)])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from edgescope.demo.matrix import (
    COLUMNS,
    DEPARTURES_TITLE,
    ROW_TITLES,
    ROWS,
    ProbeResult,
    summary,
    verdict,
)

BAR_WIDTH = 560
"""Pixels of the longest bar (charts scale to it)."""
LINE = 22


@dataclass(frozen=True)
class Phase:
    """A window of the run worth drawing (wall-clock unix seconds)."""

    name: str
    start: float
    end: float


def render_html(
    results: Sequence[ProbeResult],
    *,
    note: str,
    phases: Sequence[Phase] = (),
    title: str = "edgescope demo: the seed's Boot VM table, measured",
    generated: float | None = None,
) -> str:
    good, run = verdict(results)
    line, departures = summary(results)
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(generated or time.time()))
    parts = [
        f"<h1>{escape(title)}</h1>",
        f"<p>{escape(note)}</p>",
        f'<p class="verdict {"good" if good == run else "bad"}">{escape(line)} '
        f"(generated {when}).</p>",
        departures_list(departures),
        "<h2>The seed's table</h2>",
        seed_table(results),
        "<h2>Each probe's time</h2>",
        timings_chart(results),
        "<h2>The partial phase</h2>",
        timeline_chart(results, phases),
        "<h2>Every probe</h2>",
        details_table(results),
    ]
    return _PAGE.format(title=escape(title), body="\n".join(parts))


def departures_list(departures: Sequence[str]) -> str:
    """The probes whose expectation or command is not the seed's, and why ('' if none)."""
    if not departures:
        return ""
    items = "".join(f"<li>{escape(d)}</li>" for d in departures)
    return f'<p>{escape(DEPARTURES_TITLE)}</p><ul class="departures">{items}</ul>'


def seed_table(results: Sequence[ProbeResult]) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in COLUMNS)
    rows = []
    for row in ROWS:
        cells = []
        for column in COLUMNS:
            mine = [r for r in results if r.probe.row == row and r.probe.column == column]
            cells.append(f'<td class="{_cell_class(mine)}">{"".join(map(_probe_line, mine))}</td>')
        rows.append(f"<tr><th>{escape(ROW_TITLES[row])}</th>{''.join(cells)}</tr>")
    return f'<table class="seed"><tr><th></th>{head}</tr>{"".join(rows)}</table>'


def _cell_class(results: Sequence[ProbeResult]) -> str:
    if not results or all(r.skipped for r in results):
        return "skipped"
    return "as-expected" if all(r.as_expected or r.skipped for r in results) else "unexpected"


def _probe_line(result: ProbeResult) -> str:
    probe = result.probe
    seconds = "" if result.skipped else f" <span class='time'>{result.seconds:.1f} s</span>"
    expected = "expected" if probe.expect_ok == result.succeeded else "NOT expected"
    if result.skipped:
        expected = "skipped"
    return (
        f'<div class="probe" data-probe="{escape(probe.row)}/{escape(probe.key)}">'
        f"<b>{escape(result.symbol)}</b> <code>{escape(probe.label)}</code>{seconds}"
        f"<br><small>{escape(probe.claim)} ({expected})</small></div>"
    )


def timings_chart(results: Sequence[ProbeResult]) -> str:
    """One bar per probe that ran, its length its time."""
    ran = [r for r in results if not r.skipped]
    if not ran:
        return "<p>No probe ran.</p>"
    longest = max(r.seconds for r in ran) or 1.0
    label_width, height = 330, LINE * len(ran) + 10
    bars = []
    for i, result in enumerate(ran):
        y = i * LINE + 5
        width = max(1.0, result.seconds / longest * BAR_WIDTH)
        label = f"{result.probe.row} · {result.probe.column} · {result.probe.label}"
        bars.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape(label[:52])}</text>"
            f'<rect class="{_bar_class(result)}" x="{label_width}" y="{y}" width="{width:.1f}" '
            f'height="{LINE - 6}" data-seconds="{result.seconds:.3f}"/>'
            f'<text x="{label_width + width + 4:.1f}" y="{y + 14}">{result.seconds:.1f} s</text>'
        )
    total = label_width + BAR_WIDTH + 60
    return f'<svg class="chart" width="{total}" height="{height}">{"".join(bars)}</svg>'


def timeline_chart(results: Sequence[ProbeResult], phases: Sequence[Phase]) -> str:
    """The partial row on a time axis from the cut: when each probe ran, the cut, the heal."""
    partial = [r for r in results if r.probe.row == "partial" and r.started is not None]
    if not phases or not partial:
        return "<p>No partial phase: the link could not be cut (no emulated WAN).</p>"
    start = min([p.start for p in phases] + [r.started or 0 for r in partial])
    end = max([p.end for p in phases] + [(r.started or 0) + r.seconds for r in partial])
    scale = BAR_WIDTH / max(end - start, 1e-6)
    label_width, top = 260, 24
    height = top + LINE * len(partial) + 30

    def x(at: float) -> float:
        return label_width + (at - start) * scale

    shapes = []
    for phase in phases:
        shapes.append(
            f'<rect class="phase" x="{x(phase.start):.1f}" y="{top - 18}" '
            f'width="{(phase.end - phase.start) * scale:.1f}" height="{height - top}"/>'
            f'<text x="{x(phase.start) + 4:.1f}" y="{top - 6}">{escape(phase.name)}</text>'
            f'<line class="heal" x1="{x(phase.end):.1f}" x2="{x(phase.end):.1f}" '
            f'y1="{top - 18}" y2="{height - 12}"/>'
            f'<text x="{x(phase.end) + 4:.1f}" y="{height - 14}">healed</text>'
        )
    for i, result in enumerate(partial):
        y = top + i * LINE
        began = result.started or start
        shapes.append(
            f'<text x="{label_width - 6}" y="{y + 14}" text-anchor="end">'
            f"{escape((result.probe.column + ' · ' + result.probe.label)[:40])}</text>"
            f'<rect class="{_bar_class(result)}" x="{x(began):.1f}" y="{y}" '
            f'width="{max(1.0, result.seconds * scale):.1f}" height="{LINE - 6}" '
            f'data-start="{began - start:.3f}" data-seconds="{result.seconds:.3f}"/>'
        )
    axis = (
        f'<text x="{label_width}" y="{height - 2}">0 s</text>'
        f'<text x="{label_width + BAR_WIDTH}" y="{height - 2}" text-anchor="end">'
        f"{end - start:.0f} s</text>"
    )
    total = label_width + BAR_WIDTH + 80
    return (
        f'<svg class="chart timeline" width="{total}" height="{height}">'
        f"{''.join(shapes)}{axis}</svg>"
    )


def _bar_class(result: ProbeResult) -> str:
    return "bar ok" if result.as_expected else "bar bad"


def details_table(results: Sequence[ProbeResult]) -> str:
    rows = [
        "<tr><th>row</th><th>column</th><th>probe</th><th>outcome</th><th>time</th>"
        "<th>detail</th></tr>"
    ]
    for r in results:
        detail = r.detail + "".join(f"; ! {p}" for p in r.problems)
        rows.append(
            f"<tr><td>{escape(r.probe.row)}</td><td>{escape(r.probe.column)}</td>"
            f"<td><code>{escape(r.probe.label)}</code></td><td>{escape(r.symbol)}</td>"
            f"<td>{r.seconds:.1f} s</td><td>{escape(detail)}</td></tr>"
        )
    return f'<table class="details">{"".join(rows)}</table>'


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 2em; color: #212121; }}
table {{ border-collapse: collapse; margin-bottom: 1em; }}
th, td {{ border: 1px solid #ccc; padding: .4em .6em; vertical-align: top; text-align: left; }}
td.as-expected {{ background: #e8f5e9; }} td.unexpected {{ background: #ffebee; }}
td.skipped {{ background: #f5f5f5; }} .probe {{ margin-bottom: .4em; }}
.time {{ color: #555; }} .verdict.good {{ color: #2e7d32; }} .verdict.bad {{ color: #c62828; }}
svg.chart {{ font: 12px system-ui, sans-serif; display: block; margin-bottom: 1em; }}
rect.bar.ok {{ fill: #66bb6a; }} rect.bar.bad {{ fill: #ef5350; }}
rect.phase {{ fill: #ffcdd2; opacity: .5; }} line.heal {{ stroke: #2e7d32; stroke-width: 2; }}
table.details td {{ font-size: 12px; }}
</style></head>
<body>
{body}
</body></html>
"""
