"""What ``edgescope demo --app swift`` prints: progress on stderr, the table on stdout.

Also stores the cells as JSON and markdown next to the sites (``swift-demo.json``,
``swift-demo.md`` in the state folder). :mod:`edgescope.demo.swift` does the work.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from edgescope.demo.swift import COLUMNS, ROWS, Cell, SwiftDemoOptions, run_swift_demo
from edgescope.errors import EdgescopeError

_out = Console()
_err = Console(stderr=True, soft_wrap=True)
_ROW_TITLES = {"global": "global", "partial": "partial (Paris–Corte cut)"}


def render_table(cells: list[Cell]) -> Table:
    table = Table(title="Swift's scenarios, measured (real swift CLI at Paris, X-Scope)")
    table.add_column("")
    for title in COLUMNS.values():
        table.add_column(title)
    for row in ROWS:
        mine = {c.column: c for c in cells if c.row == row}
        table.add_row(_ROW_TITLES[row], *(_text(mine.get(col)) for col in COLUMNS))
    return table


def _text(cell: Cell | None) -> str:
    if cell is None:
        return "-"
    colour = "green" if cell.as_expected else "red"
    outcome = "OK" if cell.ok else "fails"
    wanted = "" if cell.as_expected else f" (expected {'OK' if cell.expect_ok else 'a failure'})"
    return f"[{colour}]{outcome}{wanted}[/{colour}] {cell.seconds:.1f} s\n{cell.detail}"


def render_markdown(cells: list[Cell]) -> str:
    lines = ["| row | scenario | command | expected | result | seconds | detail |",
             "|---|---|---|---|---|---|---|"]  # fmt: skip
    for c in cells:
        fields = [c.row, COLUMNS[c.column], f"`{c.command}`", "OK" if c.expect_ok else "fails",
                  "OK" if c.ok else "fails", f"{c.seconds:.2f}", c.detail]  # fmt: skip
        lines.append("| " + " | ".join(f.replace("|", "\\|") for f in fields) + " |")
    return "\n".join(lines)


def main(wan: bool | None, down: bool, state_dir: Path) -> None:
    """Run the Swift demo and print it; exit 1 when a cell is not as expected."""
    options = SwiftDemoOptions(wan, down, state_dir / "swift")
    try:
        outcome = run_swift_demo(options, lambda text: _err.print(text, highlight=False))
    except EdgescopeError as exc:
        _err.print(f"[red]error:[/red] {exc}", highlight=False)
        raise typer.Exit(1) from None
    cells = outcome.cells
    good = sum(c.as_expected for c in cells)
    _out.print(f"[bold]network:[/bold] {outcome.network}", highlight=False)
    memory = ", ".join(f"{s} {b / 2**20:.0f} MiB" for s, b in outcome.memory.items())
    _out.print(f"[bold]sites up in {outcome.up_seconds:.0f} s[/bold] (resident: {memory})")
    wide = Console(width=max(_out.width, 150)) if not _out.is_terminal else _out
    wide.print(render_table(cells))
    colour = "green" if good == len(cells) else "red"
    _out.print(
        f"[{colour}]{good}/{len(cells)} outcomes as expected[/{colour}] in "
        f"{outcome.total_seconds:.0f} s; partial = Paris–Corte cut during the row, healed after."
    )
    options.state_dir.mkdir(parents=True, exist_ok=True)
    stored = {
        "network": outcome.network,
        "up_seconds": outcome.up_seconds,
        "memory_bytes": outcome.memory,
        "total_seconds": outcome.total_seconds,
        "cells": [asdict(c) for c in cells],
    }
    (options.state_dir / "swift-demo.json").write_text(json.dumps(stored, indent=1))
    markdown = options.state_dir / "swift-demo.md"
    markdown.write_text(f"{outcome.network}\n\n{render_markdown(cells)}\n")
    _out.print(f"every probe's detail: {markdown}", highlight=False)
    hint = outcome.hint if down else f"try: {outcome.hint}"
    _out.print(hint, highlight=False, soft_wrap=True)
    if good != len(cells):
        raise typer.Exit(1)
