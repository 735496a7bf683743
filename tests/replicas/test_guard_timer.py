"""The write guard's waits against an injected timer: no sleep, no wall clock.

A real registry (SQLite in a temporary folder) holds the claims and leases, as two proxies
of one site share it; the other proxy is played by calling the registry directly. The
guard's waits (``Claims.wait``, the polling back-off) run on a fake timer whose ``sleep``
moves time on at once, so a 10 s wait takes none and its schedule can be checked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgescope.errors import Refused
from edgescope.proxy.call import BranchReply
from edgescope.proxy.protocol import REPLAYED_HEADER
from edgescope.replicas.clock import Clock
from edgescope.replicas.guard import Claims, WriteGuard
from edgescope.replicas.registry import Registry


class FakeTimer:
    """``sleep`` adds to ``now`` and returns: time passes only when the guard waits."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    registry = Registry(tmp_path)
    yield registry
    registry.close()


class Backend:
    """The local branch's send: counts how often the write reached the backend."""

    def __init__(self) -> None:
        self.calls = 0

    async def send(self) -> BranchReply:
        self.calls += 1
        return BranchReply("Paris", 201, {"Content-Type": "application/json"}, b'{"id": "x"}')


def guard_of(registry: Registry, timer: FakeTimer) -> WriteGuard:
    claims = Claims(owner="Paris/me", wait=10.0)
    return WriteGuard(registry, Clock("Paris"), claims, timer=timer)


async def test_a_write_another_proxy_is_applying_is_refused_after_the_wait(
    registry: Registry,
) -> None:
    timer, backend = FakeTimer(), Backend()
    guard = guard_of(registry, timer)
    registry.claim_apply("key-1", "Paris/other", 330.0)
    started = time.monotonic()
    with pytest.raises(Refused) as refused:
        await guard.guarded_write(None, guard.clock.now(), "key-1", backend.send)
    assert refused.value.status == 503 and refused.value.title == "Write In Progress"
    assert backend.calls == 0
    assert timer.now - 1000.0 > 10.0  # it waited out Claims.wait, on the fake timer
    assert timer.sleeps[:5] == [0.05, 0.1, 0.2, 0.4, 0.5]  # the back-off, capped at 0.5 s
    assert time.monotonic() - started < 10.0  # and not on the wall clock


async def test_a_write_another_proxy_applied_is_answered_from_the_record(
    registry: Registry,
) -> None:
    timer, backend = FakeTimer(), Backend()
    guard = guard_of(registry, timer)
    registry.claim_apply("key-2", "Paris/other", 330.0)
    registry.complete_apply("key-2", "Paris/other", 201, b'{"id": "y"}', {"X-A": "1"})
    reply = await guard.guarded_write(None, guard.clock.now(), "key-2", backend.send)
    assert (reply.status, reply.body) == (201, b'{"id": "y"}')
    assert reply.headers[REPLAYED_HEADER] == "1" and backend.calls == 0
    assert timer.sleeps == []


async def test_a_set_another_proxy_holds_is_refused_after_the_wait(registry: Registry) -> None:
    timer, backend = FakeTimer(), Backend()
    guard = guard_of(registry, timer)
    assert registry.acquire("set:s1", "Paris/other", 30.0)
    with pytest.raises(Refused) as refused:
        await guard.guarded_write("s1", guard.clock.now(), None, backend.send)
    assert refused.value.status == 503 and "is writing to s1" in refused.value.message
    assert backend.calls == 0 and timer.now - 1000.0 > 10.0
    assert set(timer.sleeps) == {0.05}


async def test_a_free_write_is_applied_once_and_then_replayed(registry: Registry) -> None:
    timer, backend = FakeTimer(), Backend()
    guard = guard_of(registry, timer)
    first = await guard.guarded_write("s2", guard.clock.now(), "key-3", backend.send)
    again = await guard.guarded_write("s2", guard.clock.now(), "key-3", backend.send)
    assert first.status == again.status == 201 and backend.calls == 1
    assert again.headers[REPLAYED_HEADER] == "1" and timer.sleeps == []
