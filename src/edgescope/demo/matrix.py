"""The seed's "Boot VM" scenario matrix as data, and its rendering as the seed's table.

Pure: no I/O. ``probes.py`` runs each :class:`Probe` with the real ``openstack`` CLI and
returns a :class:`ProbeResult`; ``run.py`` orchestrates; this module says *what* is tried
in each cell of the table (rows: global / partial connectivity; columns: 1-DC, x-DC, *-DC),
what is expected to happen (and, where that departs from the seed's theory, why), and how
the measured outcome is printed next to it.

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
    """One real operation in one cell of the matrix, and what the semantics say it does."""

    key: str
    """Name within a row: ``1dc-paris``, ``xdc``, ``xdc-or``, ``star-and``, ``star-and-or``..."""
    row: Row
    column: Column
    kind: str
    """``boot`` (server create --wait), ``list`` (server list --all-projects) or ``drain``
    (after the heal: the writes queued during the cut were applied)."""
    label: str
    """Short text shown in the table cell: the seed's command, verbatim."""
    client_site: str
    """The site whose namespace runs the ``openstack`` command (and whose cloud it uses)."""
    scope: str | None
    image_from: str | None = None
    """For boots: the site whose ``debian`` image every member must carry."""
    sites: tuple[str, ...] = ()
    """For boots: where the server must be (one site, or each member of an ``&``); for an
    ``around`` list: the sites its rows may come from."""
    mode: str = "strict"
    """``--os-scope-mode``: ``eventual`` applies an ``&`` where reachable, queues the rest;
    ``partial`` (reads) answers with the sites that answered and names the others."""
    queued: tuple[str, ...] = ()
    """Sites an eventual boot must have queued (then applied after the heal)."""
    expect_ok: bool = True
    claim: str = ""
    """The expected outcome, derived from the semantics, in words."""
    why: str = ""
    """Where the expected outcome differs from the seed's theoretical ✓: why."""
    changed: str = ""
    """Where the probe differs from the seed's command or table: what, and why."""
    follows: str = ""
    """For a drain: the key of the eventual boot *of the same row* whose queued writes it
    follows (never another row's server, see :class:`~edgescope.demo.probes.Boots`)."""
    must_name: tuple[str, ...] = ()
    """Sites an error message must name (for expected failures), or a partial answer's
    stderr line must name as left out."""


XDC = "{nova: Paris, glance: Corte}"
XDC_OR = "{nova: Paris, glance: Corte | Marseille}"
STAR = "{nova: Paris&Corte, glance: Corte}"
STAR_OR = "{nova: Paris&Corte, glance: Corte|Marseille}"
LIST = "{nova: Paris & Corte}"
AROUND = "{nova: around(Paris, 15ms)}"


def _row(row: Row) -> tuple[Probe, ...]:
    cut = row == "partial"
    common = (
        Probe("1dc-paris", row, "1-DC", "boot", "Paris, no scope", "Paris", None, "Paris",
              ("Paris",), claim="boots at Paris"),
        Probe("1dc-corte", row, "1-DC", "boot", "Corte, no scope", "Corte", None, "Corte",
              ("Corte",), claim="boots at Corte"),
        Probe("xdc-or", row, "x-DC", "boot", XDC_OR, "Paris", XDC_OR,
              "Marseille" if cut else "Corte", ("Paris",),
              claim="falls back to Marseille's debian, by name" if cut
              else "boots at Paris with Corte's debian"),
    )  # fmt: skip
    if not cut:
        return (
            *common[:2],
            Probe("xdc", row, "x-DC", "boot", XDC, "Paris", XDC, "Corte", ("Paris",),
                  claim="boots at Paris with Corte's debian"),
            common[2],
            Probe("star-and", row, "*-DC", "boot", STAR, "Paris", STAR, "Corte",
                  ("Paris", "Corte"), claim="one server, ACTIVE at Paris and at Corte, "
                  "both members with Corte's debian"),
            Probe("star-and-or", row, "*-DC", "boot", STAR_OR, "Paris", STAR_OR, "Corte",
                  ("Paris", "Corte"), claim="one server at Paris and Corte, Corte's debian"),
            Probe("star-list", row, "*-DC", "list", f"{LIST} server list", "Paris", LIST,
                  claim="one row per server; a replicated one once, Site 'Paris & Corte'"),
            Probe("around-list", row, "*-DC", "list", f"{AROUND} server list", "Paris",
                  AROUND, sites=("Paris", "Marseille"),
                  claim="rows from Paris and Marseille only: Corte (20 ms) is outside 15 ms",
                  changed="not in the seed: the sites of the '&' are chosen by the RTTs "
                  "Paris's proxy measured (issue 25)"),
        )  # fmt: skip
    return (
        *common[:2],
        Probe("xdc", row, "x-DC", "boot", XDC, "Paris", XDC, "Corte", ("Paris",),
              expect_ok=False, claim="fails fast, naming Corte", must_name=("Corte",),
              why="Corte's image cannot cross the cut; nothing in the scope says where else"),
        common[2],
        Probe("star-and", row, "*-DC", "boot", STAR, "Paris", STAR, "Corte",
              ("Paris", "Corte"), expect_ok=False, must_name=("Corte",),
              claim="fails, naming Corte; nothing is left at Paris (all or nothing)",
              why="strict '&' is all or nothing, and Corte is cut"),
        Probe("star-and-or", row, "*-DC", "boot", f"{STAR_OR} --os-scope-mode eventual",
              "Paris", STAR_OR, "Marseille", ("Paris",), mode="eventual", queued=("Corte",),
              claim="boots at Paris with Marseille's debian; Corte's boot queued",
              changed="the seed's command plus --os-scope-mode eventual: a strict '&' is all "
              "or nothing and Corte is cut; eventual applies it where reachable, queues Corte"),
        Probe("star-list", row, "*-DC", "list", f"{LIST} server list", "Paris", LIST,
              expect_ok=False, must_name=("Paris", "Corte"),
              claim="fails, saying Paris answered and Corte is unreachable",
              why="a strict '&' read needs every member"),
        Probe("star-list-partial", row, "*-DC", "list",
              f"{LIST} server list --os-scope-mode partial", "Paris", LIST, mode="partial",
              must_name=("Corte",),
              claim="exits 0 with Paris's servers only; a stderr line says Corte did not answer",
              changed="the seed's command plus --os-scope-mode partial: opts in to the merged "
              "answer of the sites that answered (the strict cell beside it stays)"),
        Probe("star-drain", row, "*-DC", "drain", "after the heal: the queued boot",
              "Paris", STAR_OR, sites=("Corte",), follows="star-and-or",
              claim="Corte's member of this row's eventual boot is applied, ACTIVE",
              changed="not in the seed's table: checks that the boot queued during the cut "
              "is applied after the heal"),
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
    started: float | None = None
    """Wall-clock time the probe began (unix seconds; the report's timeline)."""

    @property
    def symbol(self) -> str:
        if self.skipped:
            return "–"
        return OK if self.succeeded and not self.problems else FAIL

    @property
    def as_expected(self) -> bool:
        """The outcome matches the probe's expectation (``expect_ok``; where that is not the
        seed's theory, :func:`departures` says why), and every check on real state held."""
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
        if result.probe.why:
            text.append(f"\n  seed: ✓ in theory; here ✗ because {result.probe.why}", style="dim")
        if result.probe.changed:
            text.append(f"\n  differs from the seed: {result.probe.changed}", style="dim")
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
    """(probes whose outcome matched their expectation, probes run)."""
    run = [r for r in results if not r.skipped]
    return sum(r.as_expected for r in run), len(run)


def departures(probes: Iterable[Probe]) -> list[str]:
    """One line per probe whose expectation or command is not the seed's, saying why.

    The seed's table for this approach claims ✓ in every cell, in theory.

    >>> departures([probe("partial", "xdc")])[0].split("}: ")[1].split(": ")[0]
    'expected ✗ where the seed claims ✓ in theory'
    """
    lines = []
    for p in probes:
        where = f"{p.row} {p.column} {p.label}"
        if not p.expect_ok:
            lines.append(f"{where}: expected ✗ where the seed claims ✓ in theory: {p.why}")
        if p.changed:
            lines.append(f"{where}: {p.changed}")
    return lines


def summary(results: Sequence[ProbeResult]) -> tuple[str, list[str]]:
    """The verdict line, and the departures from the seed among the probes that ran.

    The verdict counts outcomes against each probe's own expectation; where that is not the
    seed's theory, the departures say so, apart: never "as the seed claims".
    """
    good, run = verdict(results)
    skipped = sum(r.skipped for r in results)
    line = f"{good}/{run} probes came out as expected" + (
        f" ({skipped} skipped)" if skipped else ""
    )
    return line, departures(r.probe for r in results if not r.skipped)


DEPARTURES_TITLE = "Where the expectation or the command is not the seed's (✓ in theory), and why:"


__all__ = [
    "COLUMNS",
    "CUT",
    "DEPARTURES_TITLE",
    "MATRIX",
    "ROWS",
    "Column",
    "Probe",
    "ProbeResult",
    "Row",
    "departures",
    "probe",
    "probes_for",
    "render_markdown",
    "render_summary_grid",
    "render_table",
    "summary",
    "verdict",
]
