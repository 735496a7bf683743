"""The console's web application (aiohttp): the page, its assets, the picture and its changes.

    GET /              the page (static/index.html)
    GET /static/...    its script, style and vendored libraries (cytoscape, from npm)
    GET /api/picture   the whole picture as JSON: sites, links, the last calls
    GET /api/events    server-sent events: ``overview`` (sites and links, on every change)
                       and ``call`` (each call a proxy reports); each browser has a bounded
                       queue, a browser that does not keep up misses events (and is told
                       how many in the next overview)

The front-end libraries are installed from the npm registry by the build (``make
console-assets``, i.e. ``npm ci`` in ``console/web``) and served from this package, never
fetched by the browser at run time.

    app = console_app(Console(targets, picture))
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from aiohttp import web

from edgescope.console.picture import Picture
from edgescope.console.targets import Target
from edgescope.console.watch import Watcher
from edgescope.errors import ConfigError
from edgescope.observe.feed import Feed, FeedFull, encode

STATIC = Path(__file__).with_name("static")
VENDORED = ("vendor/cytoscape.min.js",)
"""Files the build copies from node_modules (see the Makefile's console-assets)."""
BROWSER_QUEUE = 500
MAX_BROWSERS = 16
HEARTBEAT = 1.0
"""Seconds between overviews sent to an idle browser (its clock for 'last heard')."""


def check_assets(static: Path = STATIC) -> None:
    """Fail clearly, before listening, when the vendored libraries were not built."""
    missing = [name for name in VENDORED if not (static / name).is_file()]
    if missing:
        raise ConfigError(
            f"the console's front-end libraries are not built ({', '.join(missing)} missing "
            f"in {static}): run `make console-assets` (npm ci in console/web)"
        )


class Console:
    """The picture, the watcher that fills it, and the browsers' feed."""

    def __init__(
        self,
        targets: list[Target] | tuple[Target, ...],
        *,
        seen_from: str | None = None,
        wan_state: Path | None = None,
        retry: float = 2.0,
    ) -> None:
        self.picture = Picture([t.site for t in targets], seen_from)
        self.feed = Feed(BROWSER_QUEUE, MAX_BROWSERS)
        self.watcher = Watcher(targets, self.picture, self.feed, wan_state=wan_state, retry=retry)


def console_app(console: Console, static: Path = STATIC) -> web.Application:
    check_assets(static)
    app = web.Application()

    async def index(request: web.Request) -> web.FileResponse:
        return web.FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    async def picture(request: web.Request) -> web.Response:
        return web.json_response(console.picture.snapshot())

    async def events(request: web.Request) -> web.StreamResponse:
        try:
            browser = console.feed.subscribe()
        except FeedFull as exc:
            raise web.HTTPServiceUnavailable(text=str(exc)) from None
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        try:
            await response.prepare(request)
            await response.write(encode("picture", console.picture.snapshot()))
            while True:
                try:
                    chunk = await asyncio.wait_for(browser.queue.get(), HEARTBEAT)
                except TimeoutError:
                    overview = {**console.picture.overview(), "missed": browser.dropped}
                    chunk = encode("overview", {**overview, "now": time.time()})
                if not chunk:
                    break  # the console stops
                await asyncio.wait_for(response.write(chunk), 10.0)
        except (ConnectionError, TimeoutError):
            pass  # the browser left, or stopped reading
        finally:
            console.feed.unsubscribe(browser)
        return response

    async def started(app: web.Application) -> None:
        await console.watcher.start()

    async def closing(app: web.Application) -> None:
        console.feed.close()  # ends every browser's stream before the server waits on it
        await console.watcher.stop()

    app.router.add_get("/", index)
    app.router.add_get("/api/picture", picture)
    app.router.add_get("/api/events", events)
    app.router.add_static("/static/", static, follow_symlinks=False)
    app.on_startup.append(started)
    app.on_shutdown.append(closing)
    return app


def started_line(url: str, seen_from: str | None) -> str:
    """The one JSON line ``edgescope console`` prints once it listens."""
    return json.dumps({"event": "started", "url": url, "seen_from": seen_from})
