"""Who may use the console and with whose credentials (issue 20, finding 7): a Host
allow-list against DNS rebinding, a session token for its page and API, each site's own
operator from clouds.yaml, and no password in clear to another host."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from conftest import StartConsole
from edgescope.console.app import host_allowed
from edgescope.console.targets import Credentials, from_clouds, from_urls
from edgescope.errors import ConfigError
from edgescope.observe.events import Events

EDGESCOPE = str(Path(sys.executable).with_name("edgescope"))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8470", True),
        ("[::1]:8470", True),
        ("10.0.0.5:8470", True),  # an address: no page of another origin can use it
        ("localhost:8470", True),
        ("console.example:8470", True),  # given with --allow-host
        ("Console.Example.", True),
        ("rebind.attacker.example:8470", False),
        ("localhost.attacker.example", False),
        ("", False),
        ("bad host:1", False),
    ],
)
def test_the_host_must_name_the_console(host: str, allowed: bool) -> None:
    assert host_allowed(host, ["console.example"]) is allowed


async def test_a_rebinding_page_and_a_page_without_the_token_get_nothing(
    sites: Any, start_console: StartConsole
) -> None:
    [paris] = await sites("Paris", identity=True, extensions={"Paris": [Events("Paris")]})
    url = URL(await start_console([paris]))
    base = url.with_query(None)
    token = url.query["token"]
    jar = aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP address, as browsers do
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        # without the token: the page, the picture and the feed are refused
        for path in ("", "api/picture", "api/events"):
            async with browser.get(base / path) as answer:
                assert answer.status == 401, path
                assert "open the URL the console printed" in await answer.text()
        async with browser.get(base.with_query(token="guess")) as answer:
            assert answer.status == 401
        async with browser.get(base / "api/picture", headers={"X-Console-Token": token}) as ok:
            assert ok.status == 200 and (await ok.json())["sites"][0]["name"] == "Paris"
        # the printed URL: a cookie, and the token leaves the address bar
        async with browser.get(url, allow_redirects=False) as answer:
            assert answer.status == 303 and answer.headers["Location"] == "/"
            cookie = answer.headers["Set-Cookie"]
            assert token in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
        async with browser.get(base) as page:
            assert page.status == 200 and "<html" in (await page.text()).lower()
        async with browser.get(base / "api/picture") as picture:
            assert picture.status == 200
        # DNS rebinding: the attacker's name resolves to the console, the browser sends its
        # own cookies for that name (none) and that name as Host: 403, whatever else it has
        rebound = {"Host": f"rebind.attacker.example:{base.port}", "X-Console-Token": token}
        for path in ("", "api/picture", "api/events", "static/console.js"):
            async with browser.get(base / path, headers=rebound) as answer:
                assert answer.status == 403, path
                assert "calls" not in await answer.text()


async def test_each_site_is_watched_as_its_own_operator_from_clouds_yaml(
    sites: Any, tmp_path: Path
) -> None:
    """``--cloud`` per ``--proxy``: each site's Keystone gets its own operator's password,
    never the ``OS_PASSWORD`` of the environment."""
    made = await sites(
        "Paris", "Corte", identity=True, extensions={n: [Events(n)] for n in ("Paris", "Corte")}
    )
    clouds = {
        site.name.lower(): {
            "auth": {
                "auth_url": str(site.proxy.config.identity.auth_url),
                "username": f"admin-of-{site.name}",
                "password": f"pw-{site.name}",
                "project_name": "admin",
            }
        }
        for site in made
    }
    clouds_file = tmp_path / "clouds.yaml"
    clouds_file.write_text(json.dumps({"clouds": clouds}))  # JSON is YAML
    argv = [EDGESCOPE, "console", "--listen", "127.0.0.1:0", "--clouds-file", str(clouds_file)]
    for site in made:
        argv += ["--proxy", site.url, "--cloud", site.name.lower()]
    env = {**os.environ, "OS_USERNAME": "admin", "OS_PASSWORD": "one-for-all"}
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        # a hang guard, not a timing: starting the CLI took over 30 s at load 39
        started = json.loads(await asyncio.wait_for(proc.stdout.readline(), 120))
        token = URL(started["url"]).query["token"]
        picture: dict[str, Any] = {}
        async with aiohttp.ClientSession(headers={"X-Console-Token": token}) as session:
            for _ in range(100):
                async with session.get(URL(started["url"]).with_query(None) / "api/picture") as a:
                    picture = await a.json()
                watched = [s for s in picture["sites"] if s["watched"]]
                if all(s["reachable"] for s in watched):
                    break
                await asyncio.sleep(0.1)
        assert [s["name"] for s in watched] == ["paris", "corte"]
        assert all(s["reachable"] for s in watched), watched
    finally:
        proc.terminate()
        await proc.wait()
    for site in made:
        logins = {r["issued_to"] for r in site.seen if "issued_to" in r} - {"edgescope"}
        assert logins == {f"admin-of-{site.name}"}, (site.name, logins)


def test_plain_http_to_another_host_is_refused_unless_asked_for(tmp_path: Path) -> None:
    creds = Credentials("admin", "pw")
    with pytest.raises(ConfigError, match="plain http to another host"):
        from_urls(["http://paris.example:20190"], creds)
    [target] = from_urls(["http://paris.example:20190"], creds, allow_http=True)
    assert target.auth_url == "http://paris.example:20190/identity/v3"
    [target] = from_urls(["https://paris.example:20190"], creds)
    assert target.url == "https://paris.example:20190"
    clouds = tmp_path / "clouds.yaml"
    auth = {"auth_url": "http://keystone.example/v3", "username": "u", "password": "p"}
    clouds.write_text(json.dumps({"clouds": {"paris": {"auth": auth}}}))
    with pytest.raises(ConfigError, match=r"cloud .paris.: .* plain http to another host"):
        from_clouds([("https://paris.example:20190", "paris")], clouds)
    with pytest.raises(ConfigError, match="'nowhere'"):
        from_clouds([("https://paris.example:20190", "nowhere")], clouds)
    [target] = from_clouds([("https://paris.example:20190", "paris")], clouds, allow_http=True)
    assert (target.auth_url, target.credentials.username) == ("http://keystone.example/v3", "u")
