"""Replicas are an extension the proxy is handed: built from ``[replicas]`` or ``--state-dir``."""

from __future__ import annotations

from pathlib import Path

import pytest

import sitekeys
from edgescope.cli.extensions import build_extensions, parse_site
from edgescope.errors import ConfigError
from edgescope.proxy.config import parse_config
from edgescope.replicas.extension import Replicas
from edgescope.replicas.registry import FILENAME

RAW = {
    "site": "Paris",
    "listen": "127.0.0.1:0",
    "private_key": sitekeys.private("Paris"),
    "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
}


def test_off_without_a_replicas_table_or_state_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGESCOPE_REPLICAS_DIR", "/nowhere")  # no longer read by the proxy
    assert build_extensions(parse_config(RAW), None) == []


def test_a_replicas_table_names_the_registry_relative_to_the_config(tmp_path: Path) -> None:
    config = parse_config(
        {**RAW, "replicas": {"state_dir": "state", "replay_interval": 0.5}}, base_dir=tmp_path
    )
    [replicas] = build_extensions(config, None)
    assert isinstance(replicas, Replicas)
    assert replicas.registry.path == tmp_path / "state" / FILENAME
    assert replicas.replayer.interval == 0.5
    replicas.registry.close()


def test_state_dir_option_overrides_the_table(tmp_path: Path) -> None:
    config = parse_config({**RAW, "replicas": {"state_dir": "/elsewhere"}})
    [replicas] = build_extensions(config, tmp_path / "Paris")
    assert isinstance(replicas, Replicas)
    assert replicas.registry.path == tmp_path / "Paris" / FILENAME
    replicas.registry.close()


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({}, "give 'state_dir' .* or 'database'"),
        ({"state_dir": "x", "replay": 1}, "unknown key 'replay'"),
        (
            {"state_dir": "x", "replay_interval": -1},
            "replay_interval: expected a number from 0",
        ),
        ({"state_dir": "x", "database": "sqlite:///x"}, "not both"),
        ({"database": "mysql://u:pw@h:nope/db"}, "not a database URL"),
        ({"database": "/var/lib/x"}, "expected a database URL"),
        ({"database": "mysql+pymysql://u@h/db", "claim_seconds": 0}, "claim_seconds"),
    ],
)
def test_bad_replicas_tables_are_clear_errors(table: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_extensions(parse_config({**RAW, "replicas": table}), None)


def test_database_url_is_taken_as_given(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    table = {"database": url, "sync_interval": 0.1, "lease_seconds": 3, "claim_seconds": 9}
    [replicas] = build_extensions(parse_config({**RAW, "replicas": table}), None)
    assert isinstance(replicas, Replicas)
    assert replicas.registry.url == url and replicas.sync_interval == 0.1
    assert (replicas.claims.seconds, replicas.claims.lease_seconds) == (9.0, 3.0)
    assert replicas.replayer.claims is replicas.parts.guard.claims is replicas.claims
    replicas.registry.close()


def test_replicas_table_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"\[replicas\]: expected a table"):
        parse_site({**RAW, "replicas": "state"})
