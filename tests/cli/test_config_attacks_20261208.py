"""Odd values in a site's TOML (``inf``, ``nan``, fractions where counts go, bad URLs) stop
``edgescope proxy run`` with a clear error, never a traceback or a proxy running oddly
(TOML has ``inf`` and ``nan`` literals). docs/attacks/20261208.md F3."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.cli.test_extension_tables import HEAD
from typer.testing import CliRunner

import sitekeys
from edgescope.cli import app
from edgescope.cli.extensions import load_site
from edgescope.errors import ConfigError

TRACING = '[tracing]\notlp_endpoint = "http://127.0.0.1:4318/v1/traces"\n'


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (TRACING + "max_queue = inf\n", r"tracing\.max_queue"),  # was OverflowError
        (TRACING + "remember = nan\n", r"tracing\.remember"),  # was ValueError
        (TRACING + "max_queue = 0.5\n", r"tracing\.max_queue"),  # was a queue of 0
        (TRACING + "export_timeout = nan\n", r"tracing\.export_timeout"),
        (TRACING + "export_timeout = inf\n", r"tracing\.export_timeout"),
        ('[tracing]\notlp_endpoint = "http://127.0.0.1:99999/"\n', "otlp_endpoint"),
        ('[tracing]\notlp_endpoint = "http://[::1/x"\n', "otlp_endpoint"),
        ("[events]\nstate_interval = nan\n", r"events\.state_interval"),
        ("[events]\nmax_stream_seconds = nan\n", r"events\.max_stream_seconds"),
        ("[events]\nwrite_timeout = inf\n", r"events\.write_timeout"),
        ("[limits]\nhop_window = inf\n", r"limits\.hop_window"),
        ("[breaker]\nprobe_interval = inf\n", r"breaker\.probe_interval"),
    ],
)
def test_an_odd_number_is_a_clear_error_at_load(tmp_path: Path, table: str, message: str) -> None:
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + table)
    with pytest.raises(ConfigError, match=message):
        load_site(path)


def test_proxy_run_refuses_an_infinite_queue_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + TRACING + "max_queue = inf\n")
    result = CliRunner().invoke(app, ["proxy", "run", "--config", str(path)])
    assert result.exit_code == 2, result.output
    assert "tracing.max_queue" in result.output and "Traceback" not in result.output


def test_large_finite_numbers_still_load(tmp_path: Path) -> None:
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + TRACING + "max_queue = 100000\n[events]\nwrite_timeout = 1e6\n")
    assert set(load_site(path).extension_tables) == {"tracing", "events"}


DIRECTORY = (
    '[directory]\nstate_dir = "d"\nendorsement_file = "e.json"\n'
    f'authorities = ["{sitekeys.public("Authority")}"]\n'
)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[replicas]\nstate_dir = 's'\nqueue_max_ops = 1.5\n", r"replicas\.queue_max_ops"),
        ("[events]\noperator_roles = ['']\n", r"events\.operator_roles"),
        (DIRECTORY + 'url = "http://paris:1"\nfanout = 0.5\n', r"fanout"),  # gossiped to none
        (DIRECTORY + 'url = "http://paris:1"\nmax_sites = 0.5\n', r"max_sites"),  # kept none
        (DIRECTORY + 'url = "not a url"\n', r"url"),  # published to every peer
    ],
)
def test_a_value_taken_oddly_is_a_clear_error_at_load(
    tmp_path: Path, table: str, message: str
) -> None:
    """Values the old parsers took and ran with oddly (a fraction where a count goes was
    rounded down, often to 0; an empty role; a site URL that is none)."""
    path = tmp_path / "paris.toml"
    path.write_text(HEAD + table)
    with pytest.raises(ConfigError, match=message):
        load_site(path)


@pytest.mark.parametrize("url", ["http://127.0.0.1:99999", "http://[::1/x", "http://a:b:c/"])
def test_a_url_yarl_cannot_read_is_a_clear_error(tmp_path: Path, url: str) -> None:
    """A peer's or a backend's URL with a port out of range or a broken IPv6 literal raised
    yarl's ValueError out of the loader (a traceback from ``proxy run``)."""
    path = tmp_path / "paris.toml"
    peer = f'[[peers]]\nname = "Corte"\nurl = "{url}"\npublic_key = "{sitekeys.public("Corte")}"\n'
    path.write_text(HEAD + peer)
    with pytest.raises(ConfigError, match=r"peers\[0\]\.url: .* must be an http"):
        load_site(path)
