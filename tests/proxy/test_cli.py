"""``edgescope proxy gen-config`` and ``edgescope proxy status``."""

from __future__ import annotations

import asyncio
import json
import tomllib
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

import sitekeys
from edgescope.cli import app
from edgescope.proxy.config import load_config

SitesFactory = Any

ENDPOINTS = [
    {
        "ID": "1",
        "Region": "RegionOne",
        "Service Name": "keystone",
        "Service Type": "identity",
        "Enabled": True,
        "Interface": "public",
        "URL": "http://127.0.0.1:20100/v3",
    },
    {
        "ID": "2",
        "Region": "RegionOne",
        "Service Name": "glance",
        "Service Type": "image",
        "Enabled": True,
        "Interface": "public",
        "URL": "http://127.0.0.1:9292",
    },
    {
        "ID": "3",
        "Region": "RegionOne",
        "Service Name": "nova",
        "Service Type": "compute",
        "Enabled": True,
        "Interface": "public",
        "URL": "http://127.0.0.1:8774/v2.1",
    },
    {
        "ID": "4",
        "Region": "RegionOne",
        "Service Name": "nova",
        "Service Type": "compute",
        "Enabled": True,
        "Interface": "internal",
        "URL": "http://10.0.0.1:8774/v2.1",
    },
]


def test_gen_config_from_endpoint_list(tmp_path: Path) -> None:
    (tmp_path / "endpoints.json").write_text(json.dumps(ENDPOINTS))
    keygen = CliRunner().invoke(app, ["proxy", "keygen", "--out", str(tmp_path / "paris.key")])
    assert keygen.exit_code == 0 and keygen.stdout.startswith("ed25519:"), keygen.output
    assert (tmp_path / "paris.key").stat().st_mode & 0o777 == 0o600
    again = CliRunner().invoke(app, ["proxy", "keygen", "--out", str(tmp_path / "paris.key")])
    assert again.exit_code == 2 and "--force" in again.output  # never overwritten by mistake
    result = CliRunner().invoke(
        app,
        [
            "proxy",
            "gen-config",
            "--site",
            "Paris",
            "--listen",
            "127.0.0.1:20190",
            "--private-key-file",
            "paris.key",
            "--endpoints",
            str(tmp_path / "endpoints.json"),
            "--peer",
            "Corte=http://127.0.0.1:20290",
            "--peer-key",
            f"Corte={sitekeys.public('Corte')}",
            "--output",
            str(tmp_path / "paris.toml"),
        ],
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "paris.toml").read_text()
    assert "# catalog URL through the proxy: http://127.0.0.1:20190/compute/v2.1" in text
    config = load_config(tmp_path / "paris.toml")
    assert [(s.type, s.prefix, str(s.backend)) for s in config.services] == [
        ("identity", "/identity", "http://127.0.0.1:20100"),
        ("image", "/image", "http://127.0.0.1:9292"),
        ("compute", "/compute", "http://127.0.0.1:8774"),
    ]
    assert config.peers[0].name == "Corte"
    assert tomllib.loads(text)["site"] == "Paris"


def test_gen_config_errors_exit_2(tmp_path: Path) -> None:
    gen_config = ["proxy", "gen-config", "--site", "Paris", "--listen", "127.0.0.1:1"]
    gen_config += ["--private-key-file", "k"]
    result = CliRunner().invoke(
        app, [*gen_config, "--interface", "admin"], input=json.dumps(ENDPOINTS)
    )
    assert result.exit_code == 2 and "no admin endpoint" in result.output
    result = CliRunner().invoke(app, gen_config, input="not json")
    assert result.exit_code == 2 and "openstack endpoint list -f json" in result.output
    assert "Traceback" not in result.output


async def test_status_table(sites: SitesFactory, tmp_path: Path, refused_url: str) -> None:
    paris, corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    await paris.get("/image/echo", headers={"X-Scope": "{image: Lyon}"})
    port = paris.proxy.addresses["main"][1]
    key, corte_key, lyon_key = (sitekeys.private("Paris"), sitekeys.public("Corte"),
                                sitekeys.public("Lyon"))  # fmt: skip
    (tmp_path / "paris.toml").write_text(
        f'site = "Paris"\nlisten = "127.0.0.1:{port}"\nprivate_key = "{key}"\n'
        '[[services]]\ntype = "image"\nprefix = "/image"\nbackend = "http://127.0.0.1:1"\n'
        f'[[peers]]\nname = "Corte"\nurl = "{corte.url}"\npublic_key = "{corte_key}"\n'
        f'[[peers]]\nname = "Lyon"\nurl = "{refused_url}"\npublic_key = "{lyon_key}"\n'
    )
    runner = CliRunner()
    result = await asyncio.to_thread(
        runner.invoke, app, ["proxy", "status", "--config", str(tmp_path / "paris.toml"), "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["peer"]: row for row in json.loads(result.output)}
    assert rows["Corte"]["reachable"] and rows["Corte"]["breaker"] == "unused"  # never called
    assert not rows["Lyon"]["reachable"] and "refused" in rows["Lyon"]["error"]
    result = await asyncio.to_thread(
        runner.invoke, app, ["proxy", "status", "--config", str(tmp_path / "paris.toml")]
    )
    assert result.exit_code == 0 and "Corte" in result.output and "Lyon" in result.output


def test_bad_config_exits_2(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('site = "Paris"\n')
    result = CliRunner().invoke(app, ["proxy", "run", "--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2 and "missing 'listen'" in result.output


def test_an_error_naming_a_table_keeps_its_brackets(tmp_path: Path) -> None:
    """The message is text, not rich markup: ``[limits]`` is printed, not swallowed."""
    (tmp_path / "bad.toml").write_text(
        f'site = "Paris"\nlisten = "127.0.0.1:0"\nprivate_key = "{sitekeys.private("Paris")}"\n'
        '[[services]]\ntype = "image"\nprefix = "/image"\nbackend = "http://127.0.0.1:9"\n'
        "[limits]\nspeed = 1\n"
    )
    result = CliRunner().invoke(app, ["proxy", "run", "--config", str(tmp_path / "bad.toml")])
    assert result.exit_code == 2 and "[limits]: unknown key 'speed'" in result.output
