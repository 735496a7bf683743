"""The subprocess runner and the log tail used by the scenarios."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgescope.openstack.cli_runner import Cli, CliFailed, LogTail


def test_log_tail_sees_only_new_json_records(tmp_path: Path) -> None:
    log = tmp_path / "proxy.log"
    log.write_text(json.dumps({"old": True}) + "\n")
    tail = LogTail(log)
    with log.open("a") as handle:
        handle.write("2026-11-25 INFO edgescope.proxy.access " + json.dumps({"status": 200}) + "\n")
        handle.write("not json at all\n")
    assert list(tail.json_records()) == [{"status": 200}]
    assert LogTail(tmp_path / "missing.log").lines() == []


def test_cli_passes_cloud_scope_and_config_file(tmp_path: Path) -> None:
    script = tmp_path / "fake-openstack"
    script.write_text('#!/bin/sh\necho "$OS_CLIENT_CONFIG_FILE $*"\n[ "$1" != --fail ]\n')
    script.chmod(0o755)
    cli = Cli(tmp_path / "clouds.yaml", executable=str(script))
    out = cli.value("server", "list", cloud="Paris", scope="{nova: Corte}")
    assert (
        out == f"{tmp_path}/clouds.yaml --os-cloud Paris --os-scope {{nova: Corte}} "
        "server list -f value"
    )
    with pytest.raises(CliFailed, match="exited 1"):
        cli.run("--fail")
    assert [r.ok for r in cli.history] == [True, False]
