"""``edgescope demo`` refuses bad requests cleanly (exit 2, one line, no traceback)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from edgescope.cli import app
from edgescope.demo.run import DemoOptions, open_network
from edgescope.testbed import Testbed

runner = CliRunner()


def test_sites_must_include_the_seed_sites(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--sites", "Paris,Corte", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "needs the sites Paris, Corte, Marseille" in result.output
    assert "Traceback" not in result.output


def test_bad_site_name_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--sites", "Paris,,Co rte", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output


def test_a_folder_holding_another_testbed_is_refused(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris", "Corte", "Marseille", "Nice"])  # plan only, starts nothing
    result = runner.invoke(app, ["demo", "--no-wan", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds a testbed of Paris,Corte,Marseille,Nice" in result.output


def test_a_catalog_mode_is_checked_and_must_match_the_folders(tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--catalog", "direct", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "invalid --catalog 'direct'" in result.output
    Testbed.create(tmp_path, ["Paris", "Corte", "Marseille"])  # HAProxy in front: the default
    args = ["demo", "--no-wan", "--catalog", "proxy", "--state-dir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "holds a testbed with --catalog haproxy" in result.output
    assert "Traceback" not in result.output


def test_no_wan_runs_on_loopback_and_says_why(tmp_path: Path) -> None:
    network = open_network(DemoOptions(wan=False, state_dir=tmp_path))
    assert network.wan is None and "--no-wan" in network.note


def test_an_existing_loopback_testbed_is_reused_as_it_is(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris", "Corte", "Marseille"])
    network = open_network(DemoOptions(state_dir=tmp_path))
    assert network.wan is None and "holds a loopback testbed" in network.note


def test_wan_asked_for_on_a_loopback_folder_is_refused(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris", "Corte", "Marseille"])
    result = runner.invoke(app, ["demo", "--wan", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "--wan asked for" in result.output
