"""``edgescope demo --app swift``'s rendering and option (its run: tests/testbed/swift)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from edgescope.cli import app
from edgescope.demo.swift import Cell
from edgescope.demo.swift_show import render_markdown, render_table

CELLS = [
    Cell("global", 3, "download {swift-object: Corte | Marseille}", True, True, 2.56,
         "same bytes, served by Corte"),
    Cell("partial", 1, "upload {swift-object: Corte}", False, True, 1.0, ".data at Corte"),
]  # fmt: skip


def test_an_unknown_app_is_a_usage_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["demo", "--app", "k8s", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "invalid --app 'k8s': choose openstack or swift" in result.output
    assert "Traceback" not in result.output


def test_markdown_escapes_the_or_of_scopes() -> None:
    rows = render_markdown(CELLS).splitlines()
    assert rows[2] == (
        "| global | 3. \\| : Corte \\| Marseille | `download {swift-object: Corte \\| Marseille}`"
        " | OK | OK | 2.56 | same bytes, served by Corte |"
    )
    assert all(row.count(" | ") == 6 for row in rows[2:])


def test_table_marks_a_cell_not_as_expected() -> None:
    console = Console(width=200, record=True)
    console.print(render_table(CELLS))
    text = console.export_text()
    assert "served by Corte" in text
    assert "OK (expected a failure)" in text  # the partial upload at a cut site succeeded
    assert "partial (Paris–Corte cut)" in text
