"""Per-peer circuit breakers that fit a lossy link: a ``|`` skips a site that is really down,
and the breaker learns of a heal within about a second.

Neighbours: ``sender.py`` asks :meth:`Breaker.allow` before each call to a peer and reports
the outcome; ``probes.py`` asks :meth:`Breaker.probe_due` and feeds
:meth:`Breaker.record_probe`. Every method takes the clock (``now``) as an argument and the
jitter is an injected function: the state machine is pure.

States: *closed* (calls flow) -> *open* (calls fail at once) -> *closed* again on the first
good probe; without probes (``probe_interval = 0``), *half-open* after ``open_seconds``: one
trial call, whose success closes and whose failure re-opens.

* A failure under loss is not a dead site: it opens only after ``failure_threshold``
  failures in a row (calls and probes alike, no success between them) that span at least
  ``failure_span`` seconds, so a burst of calls failing together on one lost packet does not.
* An open breaker is probed at once, then after back-off delays ``probe_backoff_min`` x 2^k,
  capped at ``probe_backoff_max``, each times a random factor in [0.5, 1.5): never in step
  with a periodic cut. A probe that reached the peer is a round trip across the link, so it
  closes the breaker (it used to only half-open it, and a half-open breaker lets one trial
  call through and refuses every other).
* A peer is *suspect* (:attr:`Breaker.suspect`) while its last word is bad: the breaker is
  not closed, a failure since its last success, or a hedged read stopped waiting for it
  (:meth:`Breaker.record_abandoned`: another site answered first). An abandoned read is no
  failure (its answer may have been a moment away: under loss 5 % of reads are, by design of
  the hedge delay), so it never counts towards opening; but the next ``|`` read asks the
  next site at once instead of waiting the hedge delay again (:mod:`hedge`). Since such a
  read no longer waits for the peer to fail, a suspect peer is probed as an open one is (at
  once, then with back-off): the probes tell a cut (5 failures open it) from a slow answer
  (a good probe clears it). The next success, of a call or a probe, clears it.
* While suspect, the peer is also *watched* for a heal (:meth:`Breaker.watch_due`): a fresh
  connection every ``watch_period`` (jittered), whose failure is no evidence (the back-off
  probes above are), whose success closes the breaker. A connection opened in a cut waits
  for its own retransmission (a SYN, or a request on a pooled connection, is resent at most
  once a second even with ``TCP_RTO_MAX_MS``); a fresh one sent after the heal goes through
  at once, so the heal is seen within about ``watch_period`` and a round trip.
* ``on_open`` is called on each move to *open*: :class:`BreakerWatch` then gives up the calls
  still waiting on that peer, and the prober probes it. ``on_heal`` is called when a success
  clears a suspect peer: :class:`BreakerWatch` then sends the reads still waiting on that
  peer once more, on a fresh connection (:meth:`BreakerWatch.resend_on_heal`).

    >>> b = Breaker(failure_threshold=2, failure_span=1.0, jitter=lambda: 0.5)
    >>> b.record_failure(now=0.0); b.record_failure(now=0.5); b.state
    'closed'
    >>> b.record_failure(now=1.0); b.state, b.allow(now=1.1), b.probe_due(now=1.0)
    ('open', False, True)
    >>> b.probe_started(now=1.0); b.probe_due(now=1.05), b.probe_due(now=1.1)
    (False, True)
    >>> b.record_probe(True, now=1.3); b.state, b.allow(now=1.3)
    ('closed', True)
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from edgescope.errors import SiteUnreachable

T = TypeVar("T")

State = Literal["closed", "open", "half-open"]
STATE_VALUES: dict[State, int] = {"closed": 0, "half-open": 1, "open": 2}
"""Numeric form for the ``edgescope_breaker_state`` gauge."""


@dataclass(slots=True)
class Breaker:
    """One peer's breaker. Not thread-safe; the proxy runs on one event loop."""

    failure_threshold: int = 5
    """Failures in a row (no success between) that open it..."""
    open_seconds: float = 5.0
    """Without probes: how long it stays open before one trial call."""
    failure_span: float = 1.0
    """...as long as they span at least this many seconds (with a threshold above 1)."""
    probe_backoff_min: float = 0.1
    """Delay after the first failed probe of an open breaker (doubles after each)."""
    probe_backoff_max: float = 1.0
    """Largest delay between probes of an open breaker (before jitter)."""
    jitter: Callable[[], float] = field(default=random.random, repr=False)
    """A number in [0, 1): the random part of each probe delay (a test passes its own)."""
    state: State = "closed"
    failures: int = 0
    """Failures since the last success."""
    failing_since: float = 0.0
    """When the first of those failures happened."""
    opened_at: float = 0.0
    probe_failures: int = 0
    """Failed probes since it opened: the back-off step."""
    next_probe_at: float = 0.0
    trial_in_flight: bool = False
    trial_started: float = 0.0
    """When the trial in flight was allowed: after ``open_seconds`` without an outcome, a
    new trial may go (the first may have been lost without a word)."""
    abandoned: bool = False
    """A hedged read stopped waiting for the peer since its last success."""
    watch_period: float = 0.25
    """While suspect: a watch probe (fresh connection, failure not counted) this often."""
    next_watch_at: float = 0.0
    last_error: str = ""
    on_open: Callable[[], None] | None = None
    on_suspect: Callable[[], None] | None = None
    """Called when a closed, trusted peer becomes suspect (the prober probes it now)."""
    on_heal: Callable[[], None] | None = None
    """Called when a success clears a suspect peer (reads waiting on it are sent again)."""

    def allow(self, *, now: float) -> bool:
        """Whether a call may go to the peer now (never waits)."""
        if self.state == "closed":
            return True
        if self.state == "open":
            if now - self.opened_at < self.open_seconds:
                return False
            self.state = "half-open"
            self.trial_in_flight = False
        if self.trial_in_flight and now - self.trial_started < self.open_seconds:
            return False  # a trial that told nothing (cancelled...) frees its slot in time
        self.trial_in_flight, self.trial_started = True, now
        return True

    def release_trial(self) -> None:
        """The half-open trial call ended with no outcome (cancelled: a lost hedge race, a
        client gone): the next call may be the trial."""
        if self.state == "half-open":
            self.trial_in_flight = False

    def record_success(self) -> None:
        was = self.suspect
        self.state, self.failures, self.trial_in_flight, self.last_error = "closed", 0, False, ""
        self.probe_failures, self.abandoned = 0, False
        if was and self.on_heal is not None:
            self.on_heal()

    def record_abandoned(self) -> None:
        """A hedged read stopped waiting for the peer (a site asked later answered first)."""
        was = self.suspect
        self.abandoned = True
        if not was and self.on_suspect is not None:
            self.on_suspect()

    @property
    def suspect(self) -> bool:
        """Whether the peer's last word is bad: not closed, a failure or an abandoned read
        since its last success."""
        return self.state != "closed" or self.failures > 0 or self.abandoned

    def record_failure(self, *, now: float, reason: str = "") -> None:
        was = self.suspect
        if self.failures == 0:
            self.failing_since = now
        self.failures += 1
        self.last_error = reason or self.last_error
        self.trial_in_flight = False
        if self.state == "open":
            self.opened_at = now  # still failing: the open_seconds count again
        elif self.state == "half-open" or self._tripped(now):
            self._open(now)
        elif not was and self.on_suspect is not None:
            self.on_suspect()

    def _tripped(self, now: float) -> bool:
        if self.failure_threshold <= 1:
            return True  # the operator's word: one failure is a dead site
        return (
            self.failures >= self.failure_threshold
            and now - self.failing_since >= self.failure_span
        )

    def _open(self, now: float) -> None:
        self.state, self.opened_at = "open", now
        self.probe_failures, self.next_probe_at = 0, now  # probe at once
        if self.on_open is not None:
            self.on_open()

    def probe_due(self, *, now: float) -> bool:
        """Whether the prober should probe this (suspect) breaker's peer now."""
        return self.suspect and now >= self.next_probe_at

    def probe_started(self, *, now: float) -> None:
        """A probe left: the next one is due after the current back-off delay."""
        self.next_probe_at = now + self.probe_delay()

    def watch_due(self, *, now: float) -> bool:
        """Whether the prober should open a watch probe (a fresh connection) to this suspect
        breaker's peer now."""
        return self.suspect and self.watch_period > 0 and now >= self.next_watch_at

    def watch_started(self, *, now: float) -> None:
        self.next_watch_at = now + self.watch_period * (0.5 + self.jitter())

    def probe_delay(self) -> float:
        """The back-off delay after ``probe_failures`` failed probes, jittered."""
        step = min(self.probe_failures, 30)
        base = min(self.probe_backoff_max, self.probe_backoff_min * float(2**step))
        return base * (0.5 + self.jitter())

    def record_probe(self, ok: bool, *, now: float, reason: str = "") -> None:
        """A health probe's result: a good one closes the breaker from any state."""
        if ok:
            self.record_success()
            return
        if self.suspect:
            self.probe_failures += 1
            self.next_probe_at = max(self.next_probe_at, now + self.probe_delay())
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
        self._heals: dict[str, set[_HealWaiter]] = {}
        self.on_resend: Callable[[str], None] = lambda _site: None
        """Told of each read sent once more on a heal (the metrics)."""
        self.listeners: list[Callable[[str], None]] = []
        """Also told of each opening, and of a closed peer becoming suspect, with the peer's
        name (the prober, to probe it now)."""
        for site, breaker in (breakers or {}).items():
            self.attach(site, breaker)

    def attach(self, site: str, breaker: Breaker) -> None:
        """Watch ``breaker`` (``site``'s): calls waiting on ``site`` give up when it opens;
        the listeners hear of it, and of ``site`` becoming suspect."""
        breaker.on_open = functools.partial(self._open, site)
        breaker.on_suspect = functools.partial(self._suspect, site)
        breaker.on_heal = functools.partial(self._healed, site)

    def _healed(self, site: str) -> None:
        for waiter in self._heals.get(site, ()):
            if not waiter.heal.done():
                waiter.heal.set_result(None)

    def _suspect(self, site: str) -> None:
        for listener in self.listeners:
            listener(site)

    def _open(self, site: str) -> None:
        for listener in self.listeners:
            listener(site)
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

    async def resend_on_heal(
        self,
        site: str,
        first: Callable[[], Awaitable[T]],
        again: Callable[[], Awaitable[T] | None],
        *,
        most: int = 2,
        discard: Callable[[T], None] = lambda _answer: None,
    ) -> T:
        """``first()``; each time ``site`` heals meanwhile (``on_heal``: a probe or a call got
        through after a failure), also ``again()`` (at most ``most`` times; ``again`` returns
        None when it is too late to try): the first attempt to answer wins, the others are
        cancelled (an answer that came too late is given to ``discard``). The error of the
        last attempt to fail is raised once none is left.

        For idempotent reads: a read caught in a cut waits for its connection's next
        retransmission after the heal, up to a second later (more under loss, each resend
        lost in turn); its copy on a fresh connection goes at once.
        """
        loop = asyncio.get_running_loop()
        waiter = _HealWaiter(loop.create_future())
        heals = self._heals.setdefault(site, set())
        heals.add(waiter)
        attempts: list[asyncio.Task[T]] = [asyncio.ensure_future(first())]
        resent = 0
        failed: asyncio.Task[T] | None = None
        try:
            while True:
                pending: set[asyncio.Future[Any]] = {*attempts, waiter.heal}
                await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for attempt in [a for a in attempts if a.done()]:
                    attempts.remove(attempt)
                    if attempt.cancelled() or attempt.exception() is not None:
                        failed = attempt
                        continue
                    return attempt.result()
                if waiter.heal.done():
                    waiter.heal = loop.create_future()
                    retry = again() if resent < most else None
                    if retry is not None:
                        resent += 1
                        self.on_resend(site)
                        attempts.append(asyncio.ensure_future(retry))
                if not attempts:
                    assert failed is not None
                    return failed.result()  # raises its error
        finally:
            heals.discard(waiter)
            if not heals:
                self._heals.pop(site, None)
            for attempt in attempts:
                attempt.cancel()
                attempt.add_done_callback(functools.partial(_discard_late, discard))


def _discard_late(discard: Callable[[T], None], attempt: asyncio.Task[T]) -> None:
    """A cancelled attempt that answered anyway: its answer goes to ``discard``."""
    if not attempt.cancelled() and attempt.exception() is None:
        discard(attempt.result())


@dataclass(slots=True, eq=False)
class _HealWaiter:
    heal: asyncio.Future[None]


@dataclass(slots=True, eq=False)
class _Waiter:
    task: asyncio.Task[Any]
    fired: bool = False
