"""The seed's "Boot VM" scenario matrix as data, and its rendering as the seed's table.

Pure: no I/O. ``probes.py`` runs each :class:`Probe` with the real ``openstack`` CLI and
returns a :class:`ProbeResult`; ``run.py`` orchestrates; this module says *what* is tried
in each cell of the table (rows: global / partial connectivity; columns: 1-DC, x-DC, *-DC),
what the seed claims should happen, and how the measured outcome is printed next to it.

    >>> [p.key for p in probes_for("global")][:2]
    ['1dc-paris', '1dc-corte']
    >>> result = ProbeResult(probe("partial", "xdc"), succeeded=False, seconds=2.1, detail="503")
    >>> result.symbol, result.as_expected
    ('✗', True)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rich.table import Table
from rich.text import Text

Row = Literal["global", "partial"]
Column = Literal["1-DC", "x-DC", "*-DC"]
ROWS: tuple[Row, ...] = ("global", "partial")
COLUMNS: tuple[Column, ...] = ("1-DC", "x-DC", "*-DC")
ROW_TITLES: dict[Row, str] = {
    "global": "Boot VM — global",
    "partial": "Boot VM — partial",
}
CUT = ("Paris", "Corte")
"""The pair cut during the *partial* row."""
OK, FAIL = "✓", "✗"


@dataclass(frozen=True)
class Probe:
    """One real operation in one cell of the matrix, and what the seed says it should do."""

    key: str
    """Name within a row: ``1dc-paris``, ``1dc-corte``, ``xdc``, ``star-and``, ``star-or``."""
    row: Row
    column: Column
    kind: str
    """What to do: ``boot`` (server create --wait) or ``list`` (server list --all-projects)."""
    label: str
    """Short text shown in the table cell."""
    client_site: str
    """The site whose namespace runs the ``openstack`` command (and whose cloud it uses)."""
    scope: str | None
    image_from: str | None = None
    """For boots: the site whose ``debian`` image the server must carry."""
    image_by_id: bool = False
    """Name the image by that site's id instead of ``debian``: across a cut, OSC's lookup by
    name stops at the proxy's 503 (Corte unreachable, Marseille 404 for ``debian`` as an id)."""
    expect_ok: bool = True
    claim: str = ""
    """The seed's expected outcome, in words."""
    must_name: tuple[str, ...] = ()
    """Sites an error message must name (for expected failures)."""


def _row(row: Row) -> tuple[Probe, ...]:
    cut = row == "partial"
    return (
        Probe("1dc-paris", row, "1-DC", "boot", "Paris, no scope", "Paris", None, "Paris",
              claim="boots at Paris"),
        Probe("1dc-corte", row, "1-DC", "boot", "Corte, no scope", "Corte", None, "Corte",
              claim="boots at Corte"),
        Probe(
            "xdc", row, "x-DC", "boot", "{nova: Paris, glance: Corte}", "Paris",
            "{nova: Paris, glance: Corte}", "Corte",
            expect_ok=not cut,
            claim="fails fast, naming Corte" if cut else "boots at Paris with Corte's image",
            must_name=("Corte",) if cut else (),
        ),
        Probe(
            "star-and", row, "*-DC", "list", "{nova: Paris & Corte} server list", "Paris",
            "{nova: Paris & Corte}",
            expect_ok=not cut,
            claim=(
                "fails, saying Paris answered and Corte is unreachable"
                if cut
                else "lists both sites' servers, each with its Site"
            ),
            must_name=("Paris", "Corte") if cut else (),
        ),
        Probe(
            "star-or", row, "*-DC", "boot",
            "{nova: Paris, glance: Corte | Marseille}" + (" --image <its id>" if cut else ""),
            "Paris", "{nova: Paris, glance: Corte | Marseille}", "Marseille" if cut else "Corte",
            image_by_id=cut,
            claim="falls back to Marseille's image" if cut else "boots with Corte's image",
        ),
    )  # fmt: skip


MATRIX: tuple[Probe, ...] = (*_row("global"), *_row("partial"))
"""Every probe, global row first. The partial row runs with Paris–Corte cut."""


def probes_for(row: Row, matrix: Sequence[Probe] = MATRIX) -> list[Probe]:
    return [p for p in matrix if p.row == row]


def probe(row: Row, key: str, matrix: Sequence[Probe] = MATRIX) -> Probe:
    """The probe of ``row`` named ``key`` (``probe("partial", "xdc")``)."""
    for candidate in matrix:
        if candidate.row == row and candidate.key == key:
            return candidate
    raise KeyError(f"no probe {key!r} in row {row!r}")


@dataclass(frozen=True)
class ProbeResult:
    """What one probe did: whether the operation succeeded, how long it took, what was seen."""

    probe: Probe
    succeeded: bool
    seconds: float
    detail: str
    problems: tuple[str, ...] = field(default=())
    """Checks that did not hold (wrong site, wrong image, an error not naming a site...)."""
    skipped: bool = False

    @property
    def symbol(self) -> str:
        if self.skipped:
            return "–"
        return OK if self.succeeded and not self.problems else FAIL

    @property
    def as_expected(self) -> bool:
        """The outcome matches the seed's claim, and every check on real state held."""
        return not self.skipped and self.succeeded == self.probe.expect_ok and not self.problems


def _cell(results: Iterable[ProbeResult]) -> Text:
    text = Text()
    for i, result in enumerate(results):
        if i:
            text.append("\n")
        colour = "green" if result.as_expected else ("dim" if result.skipped else "bold red")
        if result.skipped:
            text.append(f"– {result.probe.label}\n  skipped: {result.detail}", style="dim")
            continue
        text.append(f"{result.symbol} {result.seconds:5.1f} s ", style=colour)
        text.append(result.probe.label)
        expected = OK if result.probe.expect_ok else FAIL
        verdict = "as expected" if result.as_expected else "NOT as expected"
        text.append(f"\n  expected {expected} ({result.probe.claim}): {verdict}", style=colour)
        text.append(f"\n  {result.detail}", style="dim")
        for problem in result.problems:
            text.append(f"\n  ! {problem}", style="red")
    return text


def render_table(results: Sequence[ProbeResult], *, title: str = "") -> Table:
    """The seed's table: one row per connectivity, one column per scenario, probes per cell."""
    table = Table(title=title or None, show_lines=True, expand=False)
    table.add_column("Boot VM", style="bold", no_wrap=True)
    for column in COLUMNS:
        table.add_column(column, ratio=1, min_width=28)
    for row in ROWS:
        in_row = [r for r in results if r.probe.row == row]
        if not in_row:
            continue
        cells = [_cell(r for r in in_row if r.probe.column == column) for column in COLUMNS]
        table.add_row(ROW_TITLES[row], *cells)
    return table


def render_summary_grid(results: Sequence[ProbeResult]) -> str:
    """The seed's compact grid (``Boot VM  1-DC  x-DC  *-DC``), one symbol per probe.

    >>> print(render_summary_grid([]))
    Boot VM   1-DC   x-DC   *-DC
    """
    lines = [f"{'Boot VM':<9} {'1-DC':<6} {'x-DC':<6} {'*-DC'}".rstrip()]
    for row in ROWS:
        in_row = [r for r in results if r.probe.row == row]
        if not in_row:
            continue
        cells = [
            "".join(r.symbol for r in in_row if r.probe.column == column) or "-"
            for column in COLUMNS
        ]
        lines.append(f"{row:<9} {cells[0]:<6} {cells[1]:<6} {cells[2]}")
    return "\n".join(lines)


def render_markdown(results: Sequence[ProbeResult]) -> str:
    """A markdown table of every probe (for docs and logs): cell, outcome, expected, time."""
    lines = [
        "| Boot VM | scenario | probe | outcome | expected | time | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        expected = OK if r.probe.expect_ok else FAIL
        label = r.probe.label.replace("|", "\\|")
        detail = (r.detail + "".join(f"; ! {p}" for p in r.problems)).replace("|", "\\|")
        mark = "" if r.as_expected or r.skipped else " (NOT as expected)"
        lines.append(
            f"| {r.probe.row} | {r.probe.column} | {label} | {r.symbol}{mark} | {expected} "
            f"| {r.seconds:.1f} s | {detail} |"
        )
    return "\n".join(lines)


def verdict(results: Sequence[ProbeResult]) -> tuple[int, int]:
    """(probes whose outcome matched the seed's claim, probes run)."""
    run = [r for r in results if not r.skipped]
    return sum(r.as_expected for r in run), len(run)


__all__ = [
    "COLUMNS",
    "CUT",
    "MATRIX",
    "ROWS",
    "Column",
    "Probe",
    "ProbeResult",
    "Row",
    "probe",
    "probes_for",
    "render_markdown",
    "render_summary_grid",
    "render_table",
    "verdict",
]
