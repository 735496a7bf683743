"""Real proxies on loopback (``sites``, ``replica_sites``), a console in front of them, and a
real browser (``page``): the console's tests need no OpenStack."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pytest
from aiohttp import web

from browser import chromium, screenshot, wait_for
from edgescope.console.app import Console, console_app
from edgescope.console.targets import Credentials, Target
from loopback import proxy_fixtures, replica_fixtures

sites = proxy_fixtures().sites
refused_url = proxy_fixtures().refused_url
replica_sites = replica_fixtures().replica_sites
OPERATOR = Credentials("admin", "pw")

StartConsole = Callable[[Sequence[Any]], Awaitable[str]]


def targets_of(made: Sequence[Any]) -> tuple[Target, ...]:
    """The console's targets for loopback sites (named by their site, not their host), each
    operator's token from the site's own Keystone (the backend the proxy's [identity] uses)."""
    return tuple(
        Target(site.name, site.proxy.url, str(site.proxy.config.identity.auth_url), OPERATOR)
        for site in made
    )


@pytest.fixture
async def start_console() -> AsyncIterator[StartConsole]:
    """``url = await start_console(sites)``: a console watching those sites' proxies (the
    URL carries the session's token, as the one ``edgescope console`` prints)."""
    runners: list[web.AppRunner] = []

    async def start(made: Sequence[Any]) -> str:
        console = Console(targets_of(made), retry=0.3)
        app = console_app(console)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        runners.append(runner)
        sock = socket.create_server(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        return console.page_url(f"http://127.0.0.1:{sock.getsockname()[1]}/")

    yield start
    for runner in runners:
        await runner.cleanup()


class Page:
    """The browser, driven from async tests: every Selenium call runs in a thread, so the
    proxies and the console on the test's loop keep serving meanwhile."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver

    async def open(self, url: str) -> None:
        await asyncio.to_thread(self.driver.get, url)

    async def wait(self, what: str, condition: Callable[[Any], Any], timeout: float = 30) -> Any:
        return await asyncio.to_thread(wait_for, self.driver, what, condition, timeout)

    async def run(self, action: Callable[[Any], Any]) -> Any:
        return await asyncio.to_thread(action, self.driver)

    async def shot(self, name: str) -> None:
        await asyncio.to_thread(screenshot, self.driver, name)


@pytest.fixture
async def page() -> AsyncIterator[Page]:
    browser = chromium()
    driver = await asyncio.to_thread(browser.__enter__)
    try:
        yield Page(driver)
    finally:
        await asyncio.to_thread(browser.__exit__, None, None, None)
