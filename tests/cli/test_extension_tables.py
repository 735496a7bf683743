"""Each extension parses and validates its own table when a site loads (cli/extensions.py);
the core config keeps other tables raw and knows no extension's name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import sitekeys
from edgescope.cli import app
from edgescope.cli.extensions import TABLES, load_site, parse_site
from edgescope.errors import ConfigError
from edgescope.proxy.config import parse_config

RAW = {
    "site": "Paris",
    "listen": "127.0.0.1:0",
    "private_key": sitekeys.private("Paris"),
    "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
}
HEAD = (
    f'site = "Paris"\nlisten = "127.0.0.1:0"\nprivate_key = "{sitekeys.private("Paris")}"\n'
    '[[services]]\ntype = "image"\nprefix = "/image"\nbackend = "http://127.0.0.1:9"\n'
)


def test_the_core_keeps_any_other_table_raw_for_its_owner() -> None:
    config = parse_config({**RAW, "frobnicate": {"speed": 1}})
    assert config.extension_tables == {"frobnicate": {"speed": 1}}
    with pytest.raises(ConfigError, match="top level: unknown key 'colour'"):
        parse_config({**RAW, "colour": "blue"})  # not a table: never an extension's


@pytest.mark.parametrize(
    ("table", "raw", "message"),
    [
        ("replicas", {"state_dir": "x", "x": 1}, r"\[replicas\]: unknown key 'x'; valid keys: "),
        ("events", {"speed": 1}, r"\[events\]: unknown key 'speed'; valid keys: "),
        ("tracing", {"colour": 1}, r"\[tracing\]: unknown key 'colour'; valid keys: "),
        ("haproxy", {"flavour": "x"}, r"\[haproxy\]: unknown key 'flavour'; valid keys: "),
        ("directory", {"urls": "x"}, r"\[directory\]: unknown key 'urls'; valid keys: "),
    ],
)
def test_each_extension_validates_its_table_at_load(
    table: str, raw: dict[str, object], message: str
) -> None:
    assert table in TABLES
    with pytest.raises(ConfigError, match=message):
        parse_site({**RAW, table: raw})


def test_a_table_no_extension_owns_is_an_unknown_key() -> None:
    with pytest.raises(ConfigError, match=r"unknown key 'replicsa'; valid keys: .*replicas"):
        parse_site({**RAW, "replicsa": {"state_dir": "x"}})


def test_state_dir_stands_in_for_the_replicas_table_s(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="give 'state_dir'"):
        parse_site({**RAW, "replicas": {"sync_interval": 1}})
    config = parse_site({**RAW, "replicas": {"sync_interval": 1}}, state_dir=tmp_path)
    assert config.extension_tables["replicas"] == {"sync_interval": 1}


def test_proxy_run_stops_on_a_bad_extension_table_with_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + '[replicas]\nstate_dir = "state"\nx = 1\n')
    result = CliRunner().invoke(app, ["proxy", "run", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "[replicas]: unknown key 'x'; valid keys: " in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "state").exists()  # nothing was built


def test_load_site_reads_and_checks_a_file(tmp_path: Path) -> None:
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + "[events]\nqueue_size = 10\n")
    assert load_site(path).extension_tables == {"events": {"queue_size": 10}}
    path.write_text(HEAD + "[events]\nqueue_size = -1\n")
    with pytest.raises(ConfigError, match=r"events\.queue_size"):
        load_site(path)
