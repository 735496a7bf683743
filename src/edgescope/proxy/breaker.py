"""Per-peer circuit breakers, so a ``|`` skips a site known to be down without waiting.

Neighbours: ``server.py`` asks :meth:`Breaker.allow` before each call to a peer and reports
the outcome; its probe loop feeds :meth:`Breaker.record_probe`. The clock is an argument.

States: *closed* (calls flow; ``failure_threshold`` consecutive failures open it) ->
*open* (calls fail at once for ``open_seconds``) -> *half-open* (one trial call; success
closes, failure re-opens). A successful health probe moves open to half-open early, and
half-open (no trial in flight) to closed: a peer that answers its probes for a while is
trusted again even when no call came by to try it.
``on_open`` is called on each move to *open*: :class:`BreakerWatch` then gives up the calls
still waiting on that peer.

    >>> b = Breaker(failure_threshold=1, open_seconds=5.0)
    >>> b.record_failure(now=0.0); b.state, b.allow(now=1.0), b.allow(now=6.0), b.state
    ('open', False, True, 'half-open')
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from edgescope.errors import SiteUnreachable

T = TypeVar("T")

State = Literal["closed", "open", "half-open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half-open": 1, "open": 2}
"""Numeric form for the ``edgescope_breaker_state`` gauge."""


@dataclass(slots=True)
class Breaker:
    """One peer's breaker. Not thread-safe; the proxy runs on one event loop."""

    failure_threshold: int = 3
    open_seconds: float = 5.0
    state: State = "closed"
    failures: int = 0
    opened_at: float = 0.0
    trial_in_flight: bool = False
    last_error: str = ""
    on_open: Callable[[], None] | None = None

    def allow(self, *, now: float) -> bool:
        """Whether a call may go to the peer now."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.open_seconds:
                return False
            self.state = "half-open"
            self.trial_in_flight = False
        if self.trial_in_flight:
            return False
        self.trial_in_flight = True
        return True

    def record_success(self) -> None:
        self.state, self.failures, self.trial_in_flight, self.last_error = "closed", 0, False, ""

    def record_failure(self, *, now: float, reason: str = "") -> None:
        self.failures += 1
        self.last_error = reason or self.last_error
        self.trial_in_flight = False
        if self.state == "half-open" or self.failures >= max(1, self.failure_threshold):
            was_open = self.state == "open"
            self.state, self.opened_at = "open", now
            if not was_open and self.on_open is not None:
                self.on_open()

    def record_probe(self, ok: bool, *, now: float, reason: str = "") -> None:
        """A health probe result: cheap evidence, weaker than a real call."""
        if ok:
            if self.state == "open":
                self.state, self.trial_in_flight = "half-open", False
            elif self.state == "closed" or not self.trial_in_flight:
                self.record_success()
        else:
            self.record_failure(now=now, reason=reason)


class BreakerWatch:
    """Lets a call waiting on a peer give up as soon as that peer's breaker opens.

    A call in flight when a link drops would otherwise wait its full ``read_timeout`` (its
    pooled connection needs no connect) though probes and other calls have already declared
    the peer down; a ``|`` then moves on at once. The waiting task is cancelled, as
    ``asyncio.timeout`` does, and the cancellation becomes :class:`SiteUnreachable`: no extra
    task per call, which matters for a 1,000-site fan-out.
    """

    def __init__(self, breakers: Mapping[str, Breaker] | None = None) -> None:
        self._waiting: dict[str, set[_Waiter]] = {}
        for site, breaker in (breakers or {}).items():
            self.attach(site, breaker)

    def attach(self, site: str, breaker: Breaker) -> None:
        """Watch ``breaker`` (``site``'s): calls waiting on ``site`` give up when it opens."""
        breaker.on_open = functools.partial(self._open, site)

    def _open(self, site: str) -> None:
        for waiter in self._waiting.pop(site, set()):
            if not waiter.fired:
                waiter.fired = True
                waiter.task.cancel(msg="edgescope: the breaker opened")

    async def unless_opened(self, site: str, call: Coroutine[Any, Any, T]) -> T:
        """``await call``, or raise :class:`SiteUnreachable` once ``site``'s breaker opens."""
        task = asyncio.current_task()
        assert task is not None
        waiter = _Waiter(task)
        waiting = self._waiting.setdefault(site, set())
        waiting.add(waiter)
        try:
            return await call
        except asyncio.CancelledError:
            if waiter.fired and task.uncancel() == 0:
                raise SiteUnreachable(
                    site, "given up: its circuit breaker opened meanwhile"
                ) from None
            raise
        finally:
            waiting.discard(waiter)


@dataclass(slots=True, eq=False)
class _Waiter:
    task: asyncio.Task[Any]
    fired: bool = False
