"""Every tier ran: under ``CI=true`` a skip is a failure, and a count per tier ends the output.

The tiers are the markers' combinations (README): ``fast`` (neither testbed nor wan),
``testbed``, ``wan`` and ``testbed+wan``; the ``mariadb`` row counts the tests marked mariadb,
which belong to one of the four as well. The counts are printed after pytest's summary and
written to ``artifacts/test-tiers.json`` (``$EDGESCOPE_ARTIFACTS`` if set). tests/conftest.py
registers the plugin; tests/test_ci_tiers.py runs it under pytester.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Generator
from pathlib import Path

import pytest

TIERS = ("fast", "testbed", "wan", "testbed+wan")
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "deselected")
_RANK = {"passed": 0, "xfailed": 1, "skipped": 2, "failed": 3}


def under_ci() -> bool:
    """``CI`` set to anything but empty, 0, false or no (CI services set ``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def tier_of(item: pytest.Item) -> tuple[str, bool]:
    """(tier, marked mariadb) from the item's markers (not its keywords: a folder is named
    ``testbed`` too)."""
    names = {mark.name for mark in item.iter_markers()}
    testbed, wan = "testbed" in names, "wan" in names
    tier = "testbed+wan" if testbed and wan else "testbed" if testbed else "wan" if wan else "fast"
    return tier, "mariadb" in names


def _skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        path, line, reason = longrepr
        reason = str(reason).removeprefix("Skipped: ")
        return f"{reason} ({path}:{line + 1 if isinstance(line, int) else line})"
    return str(longrepr)


class CiTiers:
    """The plugin: one instance per pytest run."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.ci = under_ci()
        self.tiers: dict[str, tuple[str, bool]] = {}
        self.outcomes: dict[str, str] = {}
        self.collection_errors = 0
        self.started = time.time()
        self.exitstatus: int | None = None  # set when the session finishes

    # -- a skip under CI is a failure, with its reason ---------------------------------------

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        self.tiers[item.nodeid] = tier_of(item)
        if self.ci and report.skipped and not hasattr(report, "wasxfail"):
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true, which allows no skip: {_skip_reason(report)}"
        return report

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_make_collect_report(
        self, collector: pytest.Collector
    ) -> Generator[None, pytest.CollectReport, pytest.CollectReport]:
        report = yield
        if self.ci and report.skipped:  # a module-level skip: the whole file would go unseen
            report.outcome = "failed"
            report.longrepr = f"skipped under CI=true, which allows no skip: {_skip_reason(report)}"
        return report

    # -- counting ------------------------------------------------------------------------------

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        for item in items:
            self.tiers[item.nodeid] = tier_of(item)
            self.outcomes[item.nodeid] = "deselected"

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collection_errors += 1

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            outcome = "failed"
        elif report.skipped:
            outcome = "xfailed" if hasattr(report, "wasxfail") else "skipped"
        else:
            outcome = "passed"  # an xpass that is not strict passes
        before = self.outcomes.get(report.nodeid)
        if before is None or _RANK[outcome] > _RANK[before]:
            self.outcomes[report.nodeid] = outcome

    def counts(self) -> dict[str, dict[str, int]]:
        """{tier: {outcome: n}} for the four tiers and the mariadb row."""
        table = {name: Counter[str]() for name in (*TIERS, "mariadb")}
        for nodeid, outcome in self.outcomes.items():
            tier, mariadb = self.tiers.get(nodeid, ("fast", False))
            table[tier][outcome] += 1
            if mariadb:
                table["mariadb"][outcome] += 1
        return {name: {o: counter[o] for o in OUTCOMES} for name, counter in table.items()}

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self.exitstatus = int(exitstatus)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """After pytest's last line (its short summary may be long): the table, the file."""
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is None or config.option.collectonly or self.exitstatus is None:
            return
        counts = self.counts()
        write = reporter.write_line
        reporter.write_sep("=", "tests per tier" + " (CI=true: a skip fails)" * self.ci)
        write(f"{'tier':<12}" + "".join(f"{o:>11}" for o in OUTCOMES))
        for name, row in counts.items():
            label = "(mariadb)" if name == "mariadb" else name
            write(f"{label:<12}" + "".join(f"{row[o]:>11}" for o in OUTCOMES))
        if self.collection_errors:
            write(f"collection errors: {self.collection_errors}")
        write(f"written to {self.write_json(counts, self.exitstatus)}")

    def write_json(self, counts: dict[str, dict[str, int]], exitstatus: int) -> Path:
        folder = Path(os.environ.get("EDGESCOPE_ARTIFACTS") or self.config.rootpath / "artifacts")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "test-tiers.json"
        document = {
            "args": list(self.config.invocation_params.args),
            "markexpr": self.config.option.markexpr,
            "ci": self.ci,
            "exitstatus": int(exitstatus),
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started)),
            "seconds": round(time.time() - self.started, 1),
            "collection_errors": self.collection_errors,
            "tiers": {name: row for name, row in counts.items() if name != "mariadb"},
            "mariadb": counts["mariadb"],
        }
        path.write_text(json.dumps(document, indent=2) + "\n")
        return path


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(CiTiers(config), "edgescope-ci-tiers")
