"""Small asyncio helpers shared by the proxy and the testbed.

``spawn`` is the only sanctioned way to start a background task: asyncio keeps only a
weak reference to tasks, so a task nobody holds can be garbage-collected mid-flight.
"""

from __future__ import annotations

import asyncio
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
