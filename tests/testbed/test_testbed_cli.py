"""``edgescope testbed``: bad input gets one clear line and exit code 2, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgescope.cli import app
from edgescope.testbed import Testbed

runner = CliRunner()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--sites", "Paris,1Corte"], "invalid site name '1Corte'"),
        (["up", "--sites", "Paris,paris"], "distinct"),
        (["up", "--catalog", "kolla"], "invalid --catalog"),
        (["up", "--port-base", "40000"], "ephemeral range"),
        (["status"], "no testbed in"),
        (["down"], "no testbed in"),
        (["logs", "Paris", "glance"], "no testbed in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["testbed", *args, "--state-dir", str(tmp_path / "state")])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_logs_of_unknown_site_or_service(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris", "Corte"])
    for args, message in ((["Lyon", "glance"], "unknown site 'Lyon'"),
                          (["Paris", "cinder"], "unknown service 'cinder'")):  # fmt: skip
        result = runner.invoke(app, ["testbed", "logs", *args, "--state-dir", str(tmp_path)])
        assert result.exit_code == 2 and message in result.output


def test_a_state_folder_keeps_its_sites(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris", "Corte"])
    result = runner.invoke(app, ["testbed", "up", "--sites", "Paris", "--state-dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "holds a testbed of sites Paris,Corte" in result.output


def test_status_and_env_of_a_stopped_testbed(tmp_path: Path) -> None:
    Testbed.create(tmp_path, ["Paris"], port_base=10000)
    status = runner.invoke(app, ["testbed", "status", "--state-dir", str(tmp_path)])
    assert status.exit_code == 0
    assert "10100" in status.output and "down" in status.output
    env = runner.invoke(app, ["testbed", "env", "--state-dir", str(tmp_path)])
    assert env.output.strip() == f"export OS_CLIENT_CONFIG_FILE={tmp_path.resolve()}/clouds.yaml"


WAN_COMMANDS = [["partition", "Paris", "Corte"], ["heal"], ["wan-link", "Paris", "Corte"],
                ["wan-status"]]  # fmt: skip


@pytest.mark.parametrize("command", WAN_COMMANDS)
def test_wan_commands_find_the_wan_from_the_testbed_state_dir(
    tmp_path: Path, command: list[str]
) -> None:
    """`--state-dir` is the testbed's folder; the WAN is the one recorded at `up --wan`."""
    wan_state = tmp_path / "wan-of-this-testbed"
    Testbed.create(tmp_path / "state-wan", ["Paris", "Corte"], wan_state=wan_state)
    result = runner.invoke(app, ["testbed", *command, "--state-dir", str(tmp_path / "state-wan")])
    assert result.exit_code == 2, result.output
    assert f"no WAN is up (no {wan_state}/state.json)" in " ".join(result.output.split())


@pytest.mark.parametrize("command", WAN_COMMANDS)
def test_wan_commands_of_a_testbed_without_wan(tmp_path: Path, command: list[str]) -> None:
    result = runner.invoke(app, ["testbed", *command, "--state-dir", str(tmp_path / "none")])
    assert result.exit_code == 2 and "no testbed in" in result.output
    Testbed.create(tmp_path, ["Paris", "Corte"])
    result = runner.invoke(app, ["testbed", *command, "--state-dir", str(tmp_path)])
    assert result.exit_code == 2 and "runs without a WAN" in result.output
    assert "Traceback" not in result.output
