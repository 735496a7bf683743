"""``edgescope wan ...`` and the testbed commands it registers: clean output, clean errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner
from wan_support import unique_prefix

from edgescope.cli.wan import app, register_commands

runner = CliRunner()


def test_commands_without_a_wan_fail_cleanly(tmp_path: Path) -> None:
    for args in (["status"], ["partition", "Paris", "Corte"], ["heal"]):
        result = runner.invoke(app, [*args, "--wan-state", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert "no WAN is up" in result.output and "Traceback" not in result.output
    assert (
        runner.invoke(app, ["down", "--wan-state", str(tmp_path)]).output.strip() == "no WAN is up"
    )


def test_bad_topology_file_is_a_user_error(tmp_path: Path) -> None:
    topo = tmp_path / "t.toml"
    topo.write_text('[[sites]]\nname = "A"\n[[sites]]\nname = "B"\n')
    result = runner.invoke(app, ["up", "--topology", str(topo), "--wan-state", str(tmp_path)])
    assert result.exit_code == 2
    assert "no link between A and B" in result.output


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--backend", "tc"], "unknown backend 'tc'; valid backends: auto, nfqueue, netem"),
        (["--prefix", "Bad Prefix"], "prefix 'Bad Prefix' must be"),
        (["--sites", "Paris,Lyon"], "unknown site 'Lyon'; valid sites: Paris, Corte, Marseille"),
    ],
)
def test_bad_up_options_are_user_errors(tmp_path: Path, option: list[str], message: str) -> None:
    result = runner.invoke(app, ["up", *option, "--wan-state", str(tmp_path)])
    assert result.exit_code == 2
    assert message in result.output


def test_register_commands_adds_the_wan_commands_to_testbed() -> None:
    testbed = typer.Typer()
    register_commands(testbed)
    names = {c.name for c in testbed.registered_commands}
    assert names == {"partition", "heal", "wan-link", "wan-status"}


@pytest.mark.wan
def test_cli_round_trip(netns_ok: None, tmp_path: Path) -> None:
    state = ["--wan-state", str(tmp_path)]
    result = runner.invoke(
        app, ["up", "--prefix", unique_prefix(), "--sites", "Paris,Corte", *state]
    )
    assert result.exit_code == 0, result.output
    try:
        assert "10.66.0.2" in result.output
        result = runner.invoke(app, ["partition", "paris", "corte", *state])
        assert result.exit_code == 0 and "Paris–Corte cut in" in result.output
        bad = runner.invoke(app, ["partition", "Paris", "Lyon", *state])
        assert bad.exit_code == 2 and "valid sites: Paris, Corte" in bad.output
        status = json.loads(runner.invoke(app, ["status", "--json", *state]).output)
        assert status["cuts"] == [["Corte", "Paris"]] and status["delayer_alive"] is True
        result = runner.invoke(app, ["link", "Paris", "Corte", "--rtt", "40", *state])
        assert "rtt 40 ms" in result.output
        result = runner.invoke(app, ["heal", *state])
        assert "cuts left: none" in result.output
    finally:
        result = runner.invoke(app, ["down", *state])
    assert result.exit_code == 0 and "WAN down" in result.output
