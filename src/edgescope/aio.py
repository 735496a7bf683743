"""Small asyncio helpers shared by the proxy and the testbed.

``spawn`` is the only sanctioned way to start a background task: asyncio keeps only a
weak reference to tasks, so a task nobody holds can be garbage-collected mid-flight.
``loop_lag`` tells how late the running loop has been (a busy proxy's own timeouts).
``tune_gc`` sets up the garbage collector for a long-running server, once it has started.
"""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections import deque
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

_background: set[asyncio.Task[Any]] = set()


def spawn(coro: Coroutine[Any, Any, T], *, name: str | None = None) -> asyncio.Task[T]:
    """Start ``coro`` as a task and keep a strong reference until it finishes."""
    task = asyncio.create_task(coro, name=name)  # noqa: TID251 - this is the helper
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


class LoopLag:
    """How late this event loop runs what is due, noted by a timer every ``period`` seconds.

    A proxy busy with a wide fan-out can notice a connection that was made in time only after
    its connect timeout fired: the timeout is then its own lag, not the peer's silence
    (:meth:`worst_since` tells which). A timer handle, not a task: nothing to cancel when the
    loop closes.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, period: float = 0.1) -> None:
        self._loop = loop
        self._period = period
        self._due = loop.time() + period
        self._beats: deque[tuple[float, float]] = deque(maxlen=128)
        """(when the timer ran, how late it was), newest last."""
        loop.call_at(self._due, self._beat)

    def _beat(self) -> None:
        now = self._loop.time()
        self._beats.append((now, now - self._due))
        self._due = now + self._period
        self._loop.call_at(self._due, self._beat)

    def worst_since(self, since: float) -> float:
        """The longest this loop was late since ``since`` (its ``time()``), now included."""
        worst = max(0.0, self._loop.time() - self._due)
        for when, late in reversed(self._beats):
            if when < since:
                break
            worst = max(worst, late)
        return worst


_lags: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopLag] = weakref.WeakKeyDictionary()


def loop_lag() -> LoopLag:
    """The running loop's :class:`LoopLag`, started on first use (one per loop)."""
    loop = asyncio.get_running_loop()
    lag = _lags.get(loop)
    if lag is None:
        lag = _lags[loop] = LoopLag(loop)
    return lag


GC_YOUNG_THRESHOLD = 20_000
"""Container objects allocated (net) before a young-generation collection; Python's default
is 700, which a 100-wide ``&`` (thousands of objects alive per call) crosses ~15 times a
call, each collection then walking every object still in flight (docs/benchmarks.md, "Hot
path"). Cyclic garbage waits at most this many allocations: a few MiB."""


def tune_gc() -> None:
    """For a server that has started: what it loaded (modules, config, keys) is moved out of
    the collector's sight (``gc.freeze``), and young collections run every
    :data:`GC_YOUNG_THRESHOLD` allocations instead of 700. Reference counting still frees
    everything acyclic at once; only cycles wait longer."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
