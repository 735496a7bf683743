"""``edgescope console``: bad input is a clear message and exit code 2, never a traceback."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner
from yarl import URL

from edgescope.cli import app
from edgescope.console.app import check_assets
from edgescope.console.targets import Credentials, from_urls
from edgescope.errors import ConfigError
from edgescope.observe.events import Events

EDGESCOPE = str(Path(sys.executable).with_name("edgescope"))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--proxy", "http://127.0.0.1:1", "--os-password", "pw", "--listen", "nowhere"],
         "expected IP:PORT"),
        (["--proxy", "ftp://x", "--os-password", "pw"], "expected an http(s) URL"),
        (["--os-password", "pw"], "name at least one proxy"),
        (["--proxy", "http://127.0.0.1:1"], "give the operator's password"),
        (["--proxy", "http://127.0.0.1:1", "--proxy", "http://127.0.0.1:2",
          "--os-password", "pw"], "one password for several sites"),
        (["--proxy", "http://10.1.2.3:20190", "--os-password", "pw"], "plain http to another"),
        (["--proxy", "http://127.0.0.1:1", "--cloud", "a", "--cloud", "b"],
         "give one --cloud per --proxy"),
        (["--proxy", "http://127.0.0.1:1", "--cloud", "a", "--clouds-file", "/nonexistent/c"],
         "no such file"),
        (["--state-dir", "/nonexistent/testbed"], "no testbed in /nonexistent/testbed"),
    ],
)  # fmt: skip
def test_bad_input_is_named(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["console", *args], env={"OS_PASSWORD": ""})
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_front_end_libraries_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="make console-assets"):
        check_assets(tmp_path)


def test_a_token_request_names_the_project_and_domains() -> None:
    [target] = from_urls(["https://10.0.0.1:20190/ignored"], Credentials("op", "pw", "ops"))
    assert target.url == "https://10.0.0.1:20190"
    assert target.auth_url == "https://10.0.0.1:20190/identity/v3"
    body = target.credentials.token_request()
    assert body["auth"]["scope"] == {"project": {"name": "ops", "domain": {"name": "Default"}}}  # type: ignore[index]
    assert "pw" not in repr(target)


async def test_the_command_watches_proxies_named_by_url(sites: Any) -> None:
    """``edgescope console --proxy URL``: the operator's token from each proxy's Keystone."""
    [paris] = await sites("Paris", identity=True, extensions={"Paris": [Events("Paris")]})
    argv = [EDGESCOPE, "console", "--proxy", paris.url, "--listen", "127.0.0.1:0"]
    env = {**os.environ, "OS_USERNAME": "admin", "OS_PASSWORD": "pw"}
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        started = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))  # hang guard
        picture: dict[str, Any] = {}
        jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address, as browsers do
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            async with session.get(started["url"]) as page:  # sets the session's cookie
                assert page.status == 200
            base = str(URL(started["url"]).with_query(None))
            for _ in range(100):
                async with session.get(base + "api/picture") as answer:
                    picture = await answer.json()
                if picture["sites"][0]["reachable"]:
                    break
                await asyncio.sleep(0.1)
        [site] = picture["sites"]
        assert site["reachable"], site["error"]
        assert site["services"] == ["image", "compute", "identity"]
    finally:
        proc.terminate()
        await proc.wait()
    assert proc.returncode == 0  # a clean stop on SIGTERM
