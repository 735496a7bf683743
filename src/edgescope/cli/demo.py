"""``edgescope demo``: 3 sites on an emulated WAN, the seed's "Boot VM" table, measured.

Thin: the work is in :mod:`edgescope.demo` (``run.py`` orchestrates, ``matrix.py`` renders).
This module parses options, shows rich progress on stderr and prints the table on stdout.

    $ edgescope demo                       # WAN when root + netns, else loopback (says why)
    $ edgescope demo --no-wan --down       # loopback, tear everything down afterwards
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from edgescope.demo.matrix import (
    DEPARTURES_TITLE,
    ProbeResult,
    render_markdown,
    render_summary_grid,
    render_table,
    summary,
    verdict,
)
from edgescope.demo.report import render_html
from edgescope.demo.run import DemoOptions, DemoUsageError, Reporter, run_demo
from edgescope.errors import EdgescopeError
from edgescope.testbed.layout import CatalogMode, TestbedUsageError, parse_sites

_out = Console()
_err = Console(stderr=True, soft_wrap=True)
_USAGE_ERRORS = (DemoUsageError, TestbedUsageError, ValueError)


class _RichReporter(Reporter):
    """Progress lines: one per stage, one per site while it starts, one per probe."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[str, TaskID] = {}
        self.current: TaskID | None = None

    def _finish_current(self) -> None:
        if self.current is not None:
            self.progress.update(self.current, total=1, completed=1)
            self.current = None

    def step(self, message: str) -> None:
        self._finish_current()
        self.current = self.progress.add_task(f"[bold]{message}[/bold]", total=None)

    def site(self, site: str, message: str) -> None:
        label = "RabbitMQ" if site == "*" else site
        if site not in self.tasks:
            self.tasks[site] = self.progress.add_task("", total=None)
        self.progress.update(self.tasks[site], description=f"  {label}: {message}")
        if message.startswith("up ("):
            self.progress.update(self.tasks[site], total=1, completed=1)

    def probe_started(self, label: str) -> None:
        self._finish_current()
        self.current = self.progress.add_task(f"  {label}", total=None)

    def probe_done(self, result: ProbeResult) -> None:
        if self.current is not None:
            mark = "green" if result.as_expected else "red"
            self.progress.update(
                self.current,
                description=f"  [{mark}]{result.symbol}[/{mark}] {result.probe.row}: "
                f"{result.probe.column} {result.probe.label} ({result.seconds:.1f} s)",
            )
        self._finish_current()

    def close(self) -> None:
        self._finish_current()
        for task in self.tasks.values():
            self.progress.update(task, total=1, completed=1)


def demo(
    sites: Annotated[str, typer.Option(help="Comma-separated sites.")] = "Paris,Corte,Marseille",
    wan: Annotated[
        bool | None,
        typer.Option(
            "--wan/--no-wan",
            help="Sites in network namespaces on an emulated WAN (default: when root "
            "and namespaces allow it, else loopback).",
        ),
    ] = None,
    topology: Annotated[
        Path | None, typer.Option(help="WAN topology TOML (default: the shipped Renater one).")
    ] = None,
    down: Annotated[bool, typer.Option("--down", help="Tear everything down afterwards.")] = False,
    state_dir: Annotated[
        Path,
        typer.Option(
            "--state-dir",
            envvar="EDGESCOPE_DEMO_STATE_DIR",
            help="Testbed folder (the WAN fault tests reuse a WAN testbed left here).",
        ),
    ] = Path("state-wan"),
    catalog: Annotated[
        str | None,
        typer.Option(
            help="'haproxy' (each site behind its HAProxy, the default for a new testbed) or "
            "'proxy' (the plain mode: the catalog points at the proxy)."
        ),
    ] = None,
    app: Annotated[
        str,
        typer.Option(help="'openstack' (the Boot VM table) or 'swift' (Swift's scenarios 1-3)."),
    ] = "openstack",
) -> None:
    """Bring up 3 sites, run the seed's Boot VM matrix under global and partial connectivity."""
    if app == "swift":  # its own module: edgescope.demo.swift
        from edgescope.demo.swift_show import main as swift_demo

        return swift_demo(wan, down, state_dir)
    try:
        if app != "openstack":
            raise DemoUsageError(f"invalid --app {app!r}: choose openstack or swift")
        names = tuple(parse_sites(sites))
        modes: dict[str | None, CatalogMode | None] = {
            None: None,
            "haproxy": "haproxy",
            "proxy": "proxy",
        }
        if catalog not in modes:
            raise DemoUsageError(f"invalid --catalog {catalog!r}: choose haproxy or proxy")
        options = DemoOptions(names, wan, topology, down, state_dir, modes[catalog])
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=_err, transient=False) as progress:
            reporter = _RichReporter(progress)
            try:
                outcome = run_demo(options, reporter)
            finally:
                reporter.close()
    except EdgescopeError as exc:
        _err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        raise typer.Exit(2 if isinstance(exc, _USAGE_ERRORS) else 1) from None
    except KeyboardInterrupt:
        _err.print("[red]interrupted[/red] (the Paris–Corte link was healed)")
        raise typer.Exit(130) from None
    good, run = verdict(outcome.results)
    kinds = ", ".join(f"{site} {kind}" for site, kind in outcome.testbed_kinds.items())
    _out.print(f"[bold]network:[/bold] {outcome.network.note}", highlight=False)
    _out.print(f"[bold]sites up in {outcome.testbed_seconds:.0f} s[/bold] ({kinds})")
    title = "The seed's table, measured (real openstack CLI, --os-scope)"
    wide = Console(width=max(_out.width, 150)) if not _out.is_terminal else _out
    wide.print(render_table(outcome.results, title=title))
    _out.print(render_summary_grid(outcome.results))
    colour = "green" if good == run else "red"
    line, departures = summary(outcome.results)
    _out.print(
        f"[{colour}]{line}[/{colour}] in {outcome.total_seconds:.0f} s; "
        "partial = Paris–Corte cut during the run, healed after.",
        highlight=False,
    )
    if departures:
        _out.print(DEPARTURES_TITLE, highlight=False)
        for departure in departures:
            _out.print(f"  - {departure}", highlight=False, markup=False)
    saved = _save_markdown(options.state_dir, outcome.results, outcome.network.note)
    report = options.state_dir / "demo-report.html"
    report.write_text(
        render_html(outcome.results, note=outcome.network.note, phases=outcome.phases)
    )
    _out.print(f"every probe's detail: {saved}; the report: {report}", highlight=False)
    if outcome.torn_down:
        _out.print("testbed and WAN torn down (--down)")
    else:
        _out.print(f"the sites are up; try: {outcome.hint}", highlight=False, soft_wrap=True)
    if good != run:
        raise typer.Exit(1)


def _save_markdown(state_dir: Path, results: list[ProbeResult], note: str) -> Path:
    """The probes as a markdown table next to the testbed (for reports and docs)."""
    path = state_dir / "demo-results.md"
    state_dir.mkdir(parents=True, exist_ok=True)
    line, departures = summary(results)
    listed = "".join(f"\n- {d}" for d in departures)
    told = f"{line}.\n\n{DEPARTURES_TITLE}{listed}" if departures else f"{line}."
    grid = render_summary_grid(results)
    path.write_text(f"{note}\n\n{grid}\n\n{told}\n\n{render_markdown(results)}\n")
    return path


def register(app: typer.Typer) -> None:
    """Add ``edgescope demo`` to the top-level app."""
    app.command(name="demo")(demo)
