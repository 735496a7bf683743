"""The console's I/O towards the proxies: one event stream per proxy, and the WAN's state.

A :class:`Watcher` keeps a stream open to every target's ``/edgescope/events`` with a token
of the operator at that site (asked for again when refused), feeds the :class:`Picture` and
passes every change on to the browsers through a bounded :class:`~edgescope.observe.feed.Feed`.
A proxy that cannot be reached, or refuses, is shown as such with the reason, and tried
again every ``retry`` seconds. On a testbed with a WAN, the WAN's cuts are read every second.

    watcher = Watcher(targets, picture, feed, wan_state=Path("/run/edgescope/wan"))
    await watcher.start(); ...; await watcher.stop()
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp

from edgescope.aio import spawn
from edgescope.console.picture import Picture
from edgescope.console.targets import Target
from edgescope.errors import Refused
from edgescope.observe.feed import Feed
from edgescope.proxy.protocol import EVENTS_PATH

log = logging.getLogger("edgescope.console")
READ_TIMEOUT = 5.0
"""A stream silent this long is dead: proxies send their state every second (a cut link
drops packets silently, so no error would come)."""


MAX_EVENT = 1024 * 1024
"""The largest event a proxy may send (its data lines together): past it the stream is
dropped as broken (ValueError) and opened again, so a proxy cannot grow the console's memory."""


class SseParser:
    """Server-sent events, line by line: ``feed(line)`` returns ``(event, data)`` when one ends."""

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self.kind = "message"
        self.data: list[str] = []
        self.size = 0
        self.max_event = max_event

    def feed(self, line: str) -> tuple[str, str] | None:
        line = line.rstrip("\r\n")
        if not line:
            if not self.data:
                return None
            event = (self.kind, "\n".join(self.data))
            self.kind, self.data, self.size = "message", [], 0
            return event
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self.kind = value
        elif name == "data":
            self.size += len(value) + 1
            if self.size > self.max_event:
                raise ValueError(f"an event of over {self.max_event} bytes (the console's bound)")
            self.data.append(value)
        return None


class Watcher:
    """Streams from every target into the picture, changes out to the browsers."""

    def __init__(
        self,
        targets: Sequence[Target],
        picture: Picture,
        feed: Feed,
        *,
        wan_state: Path | None = None,
        retry: float = 2.0,
    ) -> None:
        self.targets = tuple(targets)
        self.picture = picture
        self.feed = feed
        self.wan_state = wan_state
        self.retry = retry
        self._tokens: dict[str, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(sock_connect=3.0, sock_read=READ_TIMEOUT)
        self._session = aiohttp.ClientSession(timeout=timeout)
        for target in self.targets:
            self._tasks.append(spawn(self._watch(target), name=f"console-{target.site}"))
        if self.wan_state is not None:
            self._tasks.append(spawn(self._watch_wan(self.wan_state), name="console-wan"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def changed(self) -> None:
        """Tell the browsers the sites or links changed."""
        if self.feed.subscribers:
            self.feed.publish("overview", self.picture.overview())

    # -- one proxy --------------------------------------------------------------------------

    async def _watch(self, target: Target) -> None:
        while True:
            try:
                await self._stream(target)
                reason = "the stream ended"
            except Refused as exc:  # a proxy or a Keystone said no: shown as the site's error
                reason = str(exc)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                reason = _reason(exc)
            self.picture.lost(target.site, reason)
            self.changed()
            await asyncio.sleep(self.retry)

    async def _stream(self, target: Target) -> None:
        assert self._session is not None
        token = self._tokens.get(target.site) or await self._token(target)
        headers = {"X-Auth-Token": token, "Accept": "text/event-stream"}
        async with self._session.get(target.url + EVENTS_PATH, headers=headers) as response:
            if response.status == 401:
                self._tokens.pop(target.site, None)
            if response.status != 200:
                raise Refused(response.status, f"{target.site}'s proxy answered {response.status}: "
                              f"{_message(await response.read())}")  # fmt: skip
            self.picture.connected(target.site)
            self.changed()
            parser = SseParser()
            async for raw in response.content:
                event = parser.feed(raw.decode("utf-8", "replace"))
                if event is not None:
                    self._take(target.site, *event)

    def _take(self, site: str, kind: str, data: str) -> None:
        try:
            doc: dict[str, Any] = json.loads(data)
        except (ValueError, RecursionError):  # a proxy's event, whatever it sent
            return
        if kind == "state":
            self.picture.state(site, doc)
            self.changed()
        elif kind == "call":
            event = self.picture.call(site, doc)
            if self.feed.subscribers:
                self.feed.publish("call", event)

    async def _token(self, target: Target) -> str:
        """A token of the operator at ``target``'s site (a password login at its Keystone)."""
        assert self._session is not None
        body = target.credentials.token_request()
        async with self._session.post(target.auth_url + "/auth/tokens", json=body) as response:
            if response.status != 201 or "X-Subject-Token" not in response.headers:
                raise Refused(
                    response.status,
                    f"{target.site}'s Keystone refused the operator "
                    f"{target.credentials.username!r}: {response.status} "
                    f"{_message(await response.read())}",
                )
            token = response.headers["X-Subject-Token"]
        self._tokens[target.site] = token
        return token

    # -- the WAN (testbed) ------------------------------------------------------------------

    async def _watch_wan(self, state_dir: Path) -> None:
        from edgescope.testbed.wan import Wan

        while True:
            try:
                wan = await asyncio.to_thread(Wan.attach, state_dir)
                rtt = {frozenset((lk.a, lk.b)): lk.rtt_ms for lk in wan.topology.links}
                if self.picture.wan([sorted(c) for c in wan.cuts], rtt):
                    self.changed()
            except Exception as exc:  # the WAN went down, or its state is being rewritten
                log.debug("WAN state unreadable: %s", exc)
            await asyncio.sleep(1.0)


def _message(body: bytes) -> str:
    """The message of an OpenStack error body, else the start of the body."""
    try:
        return str(json.loads(body)["error"]["message"])[:300]
    except (ValueError, KeyError, TypeError):
        return body[:200].decode("utf-8", "replace")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer (timed out)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    return str(exc) or type(exc).__name__
