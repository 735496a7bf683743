"""The console's web application (aiohttp): the page, its assets, the picture and its changes.

    GET /              the page (static/index.html)
    GET /static/...    its script, style and vendored libraries (cytoscape, from npm)
    GET /api/picture   the whole picture as JSON: sites, links, the last calls
    GET /api/events    server-sent events: ``overview`` (sites and links, on every change)
                       and ``call`` (each call a proxy reports); each browser has a bounded
                       queue, a browser that does not keep up misses events (and is told
                       how many in the next overview)

Who may: every request must name the console by a ``Host`` it knows (an IP address,
``localhost``, or a name given with ``--allow-host``): a DNS-rebinding page, whose ``Host``
is its own name, gets a 403. The page and the API need the console's session token, made
when it starts and printed only in its URL (``/?token=...``): opening that URL sets it as a
cookie (HttpOnly, SameSite=Strict) and redirects to ``/``; ``/api/*`` without the cookie (or
an ``X-Console-Token`` header) is a 401. Only the static assets (public code) need no token.

The front-end libraries are installed from the npm registry by the build (``make
console-assets``, i.e. ``npm ci`` in ``console/web``) and served from this package, never
fetched by the browser at run time.

    app = console_app(Console(targets, picture))
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

from aiohttp import web
from yarl import URL

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
        self.token = secrets.token_urlsafe(32)
        """The session token: the page's URL carries it, its cookie then (see the module)."""

    def page_url(self, base: str) -> str:
        """The URL to open (``base`` is ``http://host:port/``): the only place the token is."""
        return str(URL(base).with_query(token=self.token))


TOKEN_HEADER = "X-Console-Token"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def host_allowed(host: str, allowed: Iterable[str] = ()) -> bool:
    """Whether a ``Host`` header names this console: an IP address (a DNS-rebinding page
    always uses its own *name*), ``localhost``, or one of ``allowed``."""
    try:
        name = URL(f"http://{host}").raw_host or ""
    except ValueError:
        return False
    name = name.strip("[]").rstrip(".").lower()
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    return name == "localhost" or name in {a.rstrip(".").lower() for a in allowed}


def _guard(console: Console, allowed_hosts: Iterable[str]) -> Callable[..., object]:
    allowed = tuple(allowed_hosts)
    cookie = "edgescope_console_" + hashlib.sha256(console.token.encode()).hexdigest()[:12]

    def holds_token(request: web.Request) -> bool:
        given = request.cookies.get(cookie) or request.headers.get(TOKEN_HEADER) or ""
        return secrets.compare_digest(given.encode(), console.token.encode())

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not host_allowed(request.host, allowed):
            raise web.HTTPForbidden(
                text=f"edgescope console: {request.host[:100]!r} is not a name of this "
                "console (an IP address, localhost, or --allow-host NAME)"
            )
        if request.path.startswith("/static/") or holds_token(request):
            return await handler(request)
        given = request.query.get("token", "")
        if request.path == "/" and secrets.compare_digest(given.encode(), console.token.encode()):
            found = web.HTTPSeeOther("/")  # the token leaves the address bar and the history
            found.set_cookie(cookie, console.token, httponly=True, samesite="Strict", path="/")
            raise found
        raise web.HTTPUnauthorized(
            text="edgescope console: open the URL the console printed when it started "
            "(it carries this session's token)"
        )

    return guard


def console_app(
    console: Console, static: Path = STATIC, allowed_hosts: Iterable[str] = ()
) -> web.Application:
    """The console's app; ``allowed_hosts``: names (besides IP addresses and localhost) the
    browser may call it by."""
    check_assets(static)
    app = web.Application(middlewares=[_guard(console, allowed_hosts)])  # type: ignore[list-item]

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
