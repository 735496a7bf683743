"""The proxy extension that feeds an operator's console: calls and state, live, for operators.

``GET /edgescope/events`` is a stream of server-sent events: one ``call`` event per call the
proxy answered (who, the scope, the route: which site each branch went to, its status, time
and the breaker's word), and a ``state`` event every ``state_interval`` seconds (each peer's
breaker, failures, last error and RTT; replica sets and writes queued per target site, when
the replicas extension runs). ``GET /edgescope/events/state`` answers the state once, as
JSON. Both need an ``X-Auth-Token`` holding one of ``operator_roles`` at this site's Keystone
(checked once per connection): anonymous clients, other users and peers get nothing.

A stream ends after ``max_stream_seconds`` (the console reconnects, so a revoked token stops
working), or when a write to a console that stopped reading waits ``write_timeout``.

    [events]
    operator_roles = ["admin"]   # who may watch (roles at this site's Keystone)
    queue_size = 1000            # events kept per console; past it, dropped and counted
    max_subscribers = 8          # consoles at once; one more gets a 503
    state_interval = 1.0         # seconds between state events

    events = Events.from_config("Paris", EventsConfig.parse(table), replicas=replicas)
    proxy = SiteProxy(config, extensions=[replicas, events])
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import web

from edgescope.aio import spawn
from edgescope.errors import ConfigError, EdgescopeError, Refused, SiteUnreachable
from edgescope.observe.feed import Feed, FeedFull, Subscriber, call_event, state_event
from edgescope.proxy.call import Call
from edgescope.proxy.carriers import REQUEST_ID_HEADER, new_request_id
from edgescope.proxy.extension import ProxyServices, StatusSource
from edgescope.proxy.metrics import Bound
from edgescope.proxy.protocol import EVENTS_PATH, EVENTS_STATE_PATH
from edgescope.proxy.responses import refusal_response

MAX_STATE_INTERVAL = 4.0
"""Consoles take a stream silent for 5 s for a dead one (edgescope.console.watch)."""


class ReplicaSummary(Protocol):
    """What the replicas extension tells the console (sets, writes queued per site)."""

    async def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class EventsConfig:
    """The ``[events]`` table of a site's proxy config."""

    operator_roles: tuple[str, ...] = ("admin",)
    queue_size: int = 1000
    max_subscribers: int = 8
    state_interval: float = 1.0
    max_stream_seconds: float = 600.0
    write_timeout: float = 10.0

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> EventsConfig:
        defaults = cls()
        known = {name: getattr(defaults, name) for name in cls.__slots__}
        unknown = sorted(set(raw) - set(known))
        if unknown:
            raise ConfigError(
                f"[events]: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(known))}"
            )
        roles = raw.get("operator_roles", list(defaults.operator_roles))
        named = isinstance(roles, list) and all(isinstance(r, str) and r for r in roles)
        if not named or not roles:
            raise ConfigError(
                f"events.operator_roles: expected a list of role names, got {roles!r}"
            )
        values: dict[str, Any] = {"operator_roles": tuple(roles)}
        for name in ("queue_size", "max_subscribers"):
            value = raw.get(name, known[name])
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"events.{name}: expected a positive integer, got {value!r}")
            values[name] = value
        for name in ("state_interval", "max_stream_seconds", "write_timeout"):
            value = raw.get(name, known[name])
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not 0 < value < math.inf  # nan fails this too
            ):
                raise ConfigError(f"events.{name}: expected a positive number, got {value!r}")
            values[name] = float(value)
        if values["state_interval"] > MAX_STATE_INTERVAL:
            raise ConfigError(
                f"events.state_interval: at most {MAX_STATE_INTERVAL} s (a console takes a "
                f"stream silent for longer for a dead one), got {values['state_interval']}"
            )
        return cls(**values)


class Events:
    """Calls and state as server-sent events for operators: the proxy extension."""

    name = "events"
    events = ("observe", "bind_status", "bounds", "closing")

    def __init__(
        self,
        site: str,
        config: EventsConfig | None = None,
        *,
        replicas: ReplicaSummary | None = None,
    ) -> None:
        self.site = site
        self.config = config or EventsConfig()
        self.replicas = replicas
        self.feed = Feed(self.config.queue_size, self.config.max_subscribers)
        self._status: StatusSource | None = None
        self._services: ProxyServices | None = None
        self._ticker: asyncio.Task[None] | None = None

    # -- Extension and Observer --------------------------------------------------------------

    def routes(self) -> Sequence[web.RouteDef]:
        return [web.get(EVENTS_PATH, self._stream), web.get(EVENTS_STATE_PATH, self._state)]

    def bind_status(self, status: StatusSource) -> None:
        self._status = status

    def bounds(self) -> Sequence[Bound]:
        """The consoles connected, and the events queued for them (dropped when full)."""
        feed = self.feed
        return (
            Bound("event_subscribers", lambda: len(feed.subscribers), feed.max_subscribers,
                  lambda: feed.refused),
            Bound("event_queue", lambda: sum(s.queue.qsize() for s in feed.subscribers),
                  feed.queue_size * feed.max_subscribers, lambda: feed.dropped),
        )  # fmt: skip

    def closing(self) -> None:
        self.feed.close()

    async def start(self, proxy: ProxyServices) -> None:
        self._services = proxy
        self._ticker = spawn(self._tick(), name=f"edgescope-events-{self.site}")

    async def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker

    def observe(self, call: Call, status: int, seconds: float) -> None:
        if self.feed.subscribers:
            self.feed.publish("call", call_event(call, status, seconds, self.site))

    # -- state ----------------------------------------------------------------------------

    async def state(self, dropped: int = 0) -> dict[str, Any]:
        status = self._status() if self._status is not None else {"site": self.site}
        replicas = await self.replicas.summary() if self.replicas is not None else None
        return state_event(status, replicas, dropped=dropped)

    async def _tick(self) -> None:
        """A state event to every console each ``state_interval`` (nothing when none)."""
        while True:
            await asyncio.sleep(self.config.state_interval)
            if not self.feed.subscribers:
                continue
            state = await self.state()
            for subscriber in list(self.feed.subscribers):
                self.feed.offer_state(subscriber, {**state, "dropped": subscriber.dropped})

    # -- endpoints --------------------------------------------------------------------------

    async def _state(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, self._answer_state)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        return await self._guarded(request, self._answer_stream)

    async def _guarded(
        self,
        request: web.Request,
        answer: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        request_id = new_request_id()
        try:
            await self._check_operator(request)
            return await answer(request)
        except EdgescopeError as refusal:  # a refusal, the replica registry's failure
            if refusal.answer() is None:
                raise
            return refusal_response(refusal, request_id)

    async def _answer_state(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(await self.state(), headers={REQUEST_ID_HEADER: new_request_id()})

    async def _answer_stream(self, request: web.Request) -> web.StreamResponse:
        try:
            subscriber = self.feed.subscribe()
        except FeedFull as exc:
            raise Refused(503, str(exc), title="Too Many Consoles") from None
        try:
            response = web.StreamResponse(
                headers={
                    "Content-Type": "text/event-stream",
                    "Cache-Control": "no-cache",
                    "X-Accel-Buffering": "no",
                }
            )
            await response.prepare(request)
            self.feed.offer_state(subscriber, await self.state())
            await self._pump(subscriber, response)
            return response
        finally:
            self.feed.unsubscribe(subscriber)

    async def _pump(self, subscriber: Subscriber, response: web.StreamResponse) -> None:
        """Write the subscriber's events until the stream's time is up or the console is gone."""
        config = self.config
        ends = time.monotonic() + config.max_stream_seconds
        while (left := ends - time.monotonic()) > 0:
            try:
                chunk = await asyncio.wait_for(subscriber.queue.get(), min(left, 15.0))
            except TimeoutError:
                chunk = b": keep-alive\n\n"
            if not chunk:
                return  # the proxy stops
            try:
                await asyncio.wait_for(response.write(chunk), config.write_timeout)
            except (TimeoutError, ConnectionError):
                return  # a console that stopped reading, or left: its stream ends

    async def _check_operator(self, request: web.Request) -> None:
        """Let the request through when its token holds an operator role here."""
        token = request.headers.get("X-Auth-Token", "")
        if not token:
            raise Refused(401, "the events of a proxy need an X-Auth-Token")
        services = self._services
        if services is None:
            raise Refused(503, "the events extension is not started yet", title="Starting")
        try:
            held = await services.token_roles(token)
        except SiteUnreachable as exc:
            message = f"cannot check the token: {exc.reason}"
            raise Refused(503, message, title="Identity Unreachable") from None
        roles = set(self.config.operator_roles)
        if not held & roles:
            wanted = " or ".join(sorted(roles))
            raise Refused(403, f"the events of {self.site} need role {wanted} at {self.site}")
