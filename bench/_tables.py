"""Tables of the benchmarks: printed with rich, written as Markdown; a failed row says FAILED.

>>> cells({"path": "a", "p50": 0.5, "failed": None}, "path", [("p50", 2)])
['a', '0.50']
>>> cells({"path": "b", "p50": None, "failed": "1 of 2 calls failed"}, "path", [("p50", 2)])
['b', 'FAILED: 1 of 2 calls failed']
>>> number(float("nan"))
'-'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from bench._tally import failed


@dataclass(frozen=True)
class Section:
    """One table of a benchmark's report."""

    title: str
    headers: list[str]
    rows: list[list[str]]
    note: str = ""


def number(value: float | None, digits: int = 2) -> str:
    """``value`` with ``digits`` decimals; ``-`` when it is unknown (never ``nan``)."""
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def cells(row: Mapping[str, Any], label: str, columns: Sequence[tuple[str, int]]) -> list[str]:
    """A row's cells: its label, then each column's number; a failed row: its label, then
    ``FAILED: <why>`` in the first column and nothing in the others."""
    why = failed(row)
    if why:
        return [str(row[label]), f"FAILED: {why}", *([""] * (len(columns) - 1))]
    return [str(row[label]), *(number(row[key], digits) for key, digits in columns)]


def crashed_row(why: str, width: int) -> list[str]:
    """The one row of a figure whose measurement could not run at all."""
    return ["(the whole figure)", f"FAILED: {why}", *([""] * (width - 2))]


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
    Console(width=max(120, Console().width)).print(table)


def markdown(sections: Sequence[Section]) -> str:
    """Every section as ``### title``, its table and its note."""
    return "\n\n".join(
        f"### {s.title}\n\n{md_table(s.headers, s.rows)}" + (f"\n\n{s.note}" if s.note else "")
        for s in sections
    )
