"""The console's watcher against real proxies: who refuses, who cannot be reached, and why."""

from __future__ import annotations

import asyncio
from html.parser import HTMLParser
from typing import Any

from edgescope.console.app import STATIC, Console
from edgescope.console.targets import Credentials, Target
from edgescope.observe.events import Events


async def watched(console: Console, until: Any, timeout: float = 10.0) -> dict[str, Any]:
    await console.watcher.start()
    try:
        for _ in range(int(timeout / 0.05)):
            sites = {s["name"]: s for s in console.picture.overview()["sites"]}
            if until(sites):
                return sites
            await asyncio.sleep(0.05)
        raise AssertionError(f"not within {timeout} s: {sites}")
    finally:
        await console.watcher.stop()


async def test_a_proxy_that_refuses_the_operator_says_why(sites: Any, refused_url: str) -> None:
    [paris] = await sites("Paris", identity=True, extensions={"Paris": [Events("Paris")]})
    auth = str(paris.proxy.config.identity.auth_url)
    targets = [
        Target("Paris", paris.url, auth, Credentials("member", "pw")),
        Target("Lyon", refused_url, refused_url + "/identity/v3", Credentials("admin", "pw")),
    ]
    console = Console(targets, retry=0.2)
    found = await watched(
        console, lambda s: "403" in s["Paris"]["error"] and "connect" in s["Lyon"]["error"]
    )
    assert "need role admin at Paris" in found["Paris"]["error"]
    assert not found["Paris"]["reachable"] and not found["Lyon"]["reachable"]


async def test_an_operator_hears_the_proxy_and_its_peers(sites: Any) -> None:
    made = await sites(
        "Paris", "Corte", identity=True, extensions={n: [Events(n)] for n in ("Paris", "Corte")}
    )
    targets = [
        Target(s.name, s.url, str(s.proxy.config.identity.auth_url), Credentials("admin", "pw"))
        for s in made
    ]
    found = await watched(
        Console(targets), lambda s: all(site["reachable"] and site["peers"] for site in s.values())
    )
    assert [p["name"] for p in found["Paris"]["peers"]] == ["Corte"]


class _Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]


def test_the_page_loads_nothing_from_outside() -> None:
    parser = _Assets()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.urls and all(url.startswith("/static/") for url in parser.urls)
    script = (STATIC / "console.js").read_text()
    assert "http://" not in script and "https://" not in script
