"""How a benchmark run ends: print its tables and verdicts, store what it measured, and write
docs/benchmarks.md only when every measured path succeeded.

    outcome = Outcome(name="proxy", ...)      # what bench/__main__.py or bench/haproxy.py measured
    sys.exit(finish([outcome], options))      # 0, or 1 when any path failed

A run with a failed path exits 1, lists every failure (the first error's status and body),
stores its JSON under artifacts/bench-failed/ (git-ignored, never bench/results/, which the
docs cite; or under ``--results``) and leaves docs/benchmarks.md unchanged, saying so. A
smoke run stores under artifacts/bench-smoke/ and never writes the docs either.
"""

from __future__ import annotations

import argparse
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from bench import _results
from bench._tables import Section, show
from bench._tally import truncated


@dataclass
class Outcome:
    """One benchmark's measured run (``proxy`` or ``haproxy``), ready to report."""

    name: str
    command: str
    started: float
    load: _results.Load
    document: dict[str, Any]
    """What is stored: figures, verdicts."""
    sections: list[Section]
    targets: list[list[str]]
    """(target, verdict) rows."""
    context: str
    """The sentence that says when, where and under which load it was measured."""
    failures: list[str]
    docs: Callable[[str], str] | None = None
    """The docs/benchmarks.md section, given the stored result's path."""
    markers: tuple[str, str] = ("", "")
    extra: list[str] = field(default_factory=list)
    """Lines printed after the tables."""
    plot: Callable[[Path], list[Path]] | None = None
    """Draws plots beside the stored result of a run with no failure."""


@dataclass(frozen=True)
class Options:
    smoke: bool = False
    """Tiny counts; results under artifacts/bench-smoke/, never the docs."""
    store: bool = True
    """Store the JSON (``--no-write``: print only)."""
    docs: bool = True
    """Write docs/benchmarks.md after a run with no failure (``--no-docs``: never)."""
    results: Path | None = None
    """Where the JSON goes (default: bench/results/, or artifacts/ for a smoke run)."""

    @classmethod
    def parse(cls, prog: str, argv: Sequence[str] | None = None) -> Options:
        parser = argparse.ArgumentParser(prog=prog)
        parser.add_argument(
            "--smoke",
            action="store_true",
            help="every path, a few calls each (< 1 min); never writes docs/",
        )
        parser.add_argument("--no-write", action="store_true", help="print only")
        parser.add_argument(
            "--no-docs",
            action="store_true",
            help="store the result, leave docs/benchmarks.md unchanged",
        )
        parser.add_argument("--results", type=Path, help="folder for the result JSON")  # fmt: skip
        args = parser.parse_args(argv)
        return cls(args.smoke, not args.no_write, not (args.no_docs or args.smoke or args.no_write),
                   args.results)  # fmt: skip

    def folder(self, failed: bool) -> Path:
        """``--results``, else: a failed run artifacts/bench-failed/, a smoke run
        artifacts/bench-smoke/, a full run with no failure bench/results/."""
        if self.results is not None:
            return self.results
        if failed:
            return _results.ARTIFACTS / "bench-failed"
        return _results.ARTIFACTS / "bench-smoke" if self.smoke else _results.RESULTS


def crash_reason(exc: BaseException) -> str:
    """A figure that could not run at all: the exception, printed in full, and its summary."""
    traceback.print_exception(exc)
    return truncated(f"{type(exc).__name__}: {exc}", 400)


def finish(outcomes: Sequence[Outcome], options: Options) -> int:
    """Print, store, write the docs when nothing failed; the exit status."""
    console = Console(width=max(120, Console().width))
    failures = [f"{o.name}: {why}" for o in outcomes for why in o.failures]
    stored: dict[str, Path] = {}
    for outcome in outcomes:
        for section in outcome.sections:
            show(section.title, section.headers, section.rows)
        show(f"Targets ({outcome.name})", ["target", "verdict"], outcome.targets)
        for line in outcome.extra:
            console.print(line, markup=False)
        console.print(outcome.context, markup=False)
        if options.store:
            document = {**outcome.document, "failed": outcome.failures, "smoke": options.smoke}
            path = _results.write(outcome.name, outcome.command, outcome.started, outcome.load,
                                  document, options.folder(bool(failures)))  # fmt: skip
            stored[outcome.name] = path
            console.print(f"stored: {_results.relative(path)}", markup=False)
            if outcome.plot is not None and not failures:
                plots = outcome.plot(path)
                console.print("plots: " + ", ".join(_results.relative(p) for p in plots))
    if failures:
        console.print(f"[bold red]FAILED[/]: {len(failures)} measured path(s) did not succeed:")
        for line in failures:
            console.print(f"  - {line}", markup=False, soft_wrap=True)
        console.print("docs/benchmarks.md left unchanged (a failed run writes no figure).")
        return 1
    if options.docs:
        for outcome in outcomes:
            if outcome.docs is not None and outcome.name in stored:
                text = outcome.docs(_results.relative(stored[outcome.name]))
                _results.write_docs_section(text, *outcome.markers)
        console.print("written: docs/benchmarks.md")
    else:
        console.print("docs/benchmarks.md left unchanged (" + (
            "smoke run" if options.smoke else "--no-docs" if options.store else "--no-write"
        ) + ").")  # fmt: skip
    return 0


def measured_at(started: float, load: _results.Load, command: str) -> str:
    """``Measured <when> on <machine>; <load>. ... Command: `<command>`.``"""
    machine = _results.machine()
    return (
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(started))} on "
        f"{machine['cpus']} CPUs ({machine['cpu_model']}), Python {machine['python']}, "
        f"{machine['haproxy'] or 'no HAProxy'}; {load.sentence()}. Absolute figures move with "
        f"other work on the machine, so compare within a table. The run took "
        f"{load.wall_seconds:.0f} s. Command: `{command}`."
        + (" A smoke run: a few calls per path, to show every path works; its figures are"
           " not comparable with anything." if "--smoke" in command else "")
    )  # fmt: skip
