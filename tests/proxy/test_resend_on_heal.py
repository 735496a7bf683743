"""A read waiting on a peer is sent once more when the peer heals; watch probes of a suspect
peer (breaker.py). Real asyncio futures, no sleeps: each attempt ends when the test says."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from edgescope.errors import SiteUnreachable
from edgescope.proxy import probes
from edgescope.proxy.breaker import Breaker, BreakerWatch


def test_a_suspect_peer_is_watched_every_period_and_a_healthy_one_never() -> None:
    b = Breaker(jitter=lambda: 0.5, watch_period=0.25)
    assert not b.watch_due(now=0.0)  # closed, no failure: nothing to watch for
    b.record_failure(now=1.0)
    assert b.watch_due(now=1.0)
    b.watch_started(now=1.0)
    assert not b.watch_due(now=1.2) and b.watch_due(now=1.25)
    for step in range(20):  # no back-off: a watch stays on the period, however long the cut
        now = 2.0 + step * 0.25
        b.record_probe(False, now=now)
        assert b.watch_due(now=now)
        b.watch_started(now=now)
    b.record_probe(True, now=9.0)
    assert not b.watch_due(now=100.0)


def test_a_success_after_a_failure_tells_on_heal_once() -> None:
    healed: list[int] = []
    b = Breaker(jitter=lambda: 0.5)
    b.on_heal = lambda: healed.append(1)
    b.record_success()  # was never suspect
    b.record_failure(now=0.0)
    b.record_success()
    b.record_success()
    assert healed == [1]


class Attempts:
    """Attempts whose outcome the test sets: ``first``/``again`` for resend_on_heal."""

    def __init__(self) -> None:
        self.futures: list[asyncio.Future[str]] = []
        self.late = True

    async def _one(self) -> str:
        future: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        return await future

    def again(self) -> object:
        return self._one() if self.late else None


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def _watch() -> tuple[BreakerWatch, Breaker, list[str]]:
    watch, breaker, resent = BreakerWatch(), Breaker(), []
    watch.attach("Corte", breaker)
    watch.on_resend = resent.append
    return watch, breaker, resent


async def test_a_heal_sends_the_read_again_and_the_first_answer_wins() -> None:
    watch, breaker, resent = _watch()
    attempts, discarded = Attempts(), []
    call = asyncio.ensure_future(
        watch.resend_on_heal("Corte", attempts._one, attempts._one, discard=discarded.append)
    )
    await _settle()
    assert len(attempts.futures) == 1
    breaker.record_failure(now=0.0)
    breaker.record_probe(True, now=1.0)  # the heal
    await _settle()
    assert len(attempts.futures) == 2 and resent == ["Corte"]
    attempts.futures[1].set_result("fresh")
    assert await call == "fresh"
    await _settle()
    assert attempts.futures[0].cancelled()  # the one caught in the cut is given up


async def test_without_a_heal_the_read_is_sent_once() -> None:
    watch, breaker, resent = _watch()
    attempts = Attempts()
    call = asyncio.ensure_future(watch.resend_on_heal("Corte", attempts._one, attempts._one))
    await _settle()
    breaker.record_success()  # a success of a peer never suspect is no heal
    await _settle()
    attempts.futures[0].set_result("first")
    assert await call == "first" and resent == [] and len(attempts.futures) == 1


async def test_at_most_two_resends_and_the_last_error_is_raised() -> None:
    watch, breaker, resent = _watch()
    attempts = Attempts()
    call = asyncio.ensure_future(watch.resend_on_heal("Corte", attempts._one, attempts._one))
    await _settle()
    for step in range(4):
        breaker.record_failure(now=float(step))
        breaker.record_success()
        await _settle()
    assert len(attempts.futures) == 3 and resent == ["Corte", "Corte"]
    for future in attempts.futures:
        future.set_exception(SiteUnreachable("Corte", "timed out"))
        await _settle()
    with pytest.raises(SiteUnreachable, match="timed out"):
        await call


async def test_a_failed_first_attempt_waits_for_the_resend_in_flight() -> None:
    watch, breaker, _ = _watch()
    attempts = Attempts()
    call = asyncio.ensure_future(watch.resend_on_heal("Corte", attempts._one, attempts._one))
    await _settle()
    breaker.record_failure(now=0.0)
    breaker.record_success()
    await _settle()
    attempts.futures[0].set_exception(SiteUnreachable("Corte", "timed out"))
    await _settle()
    assert not call.done()
    attempts.futures[1].set_result("fresh")
    assert await call == "fresh"


async def test_too_late_to_resend_keeps_the_first_attempt_and_its_error() -> None:
    watch, breaker, resent = _watch()
    attempts = Attempts()
    attempts.late = False
    call = asyncio.ensure_future(watch.resend_on_heal("Corte", attempts._one, attempts.again))
    await _settle()
    breaker.record_failure(now=0.0)
    breaker.record_success()
    await _settle()
    assert len(attempts.futures) == 1 and resent == []
    attempts.futures[0].set_exception(SiteUnreachable("Corte", "read timed out"))
    with pytest.raises(SiteUnreachable, match="read timed out"):
        await call


async def test_a_cancelled_call_cancels_its_attempts_and_discards_a_late_answer() -> None:
    watch, breaker, _ = _watch()
    attempts, discarded = Attempts(), []
    call = asyncio.ensure_future(
        watch.resend_on_heal("Corte", attempts._one, attempts._one, discard=discarded.append)
    )
    await _settle()
    call.cancel()
    await _settle()
    assert call.cancelled() and attempts.futures[0].cancelled()
    breaker.record_failure(now=0.0)
    breaker.record_success()  # nobody waits any more: nothing is sent
    await _settle()
    assert len(attempts.futures) == 1 and discarded == []


async def test_a_good_watch_probe_heals_before_it_measures_the_handshake(
    sites: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The handshake RTT a good probe also measures is one more crossing: under loss its SYN
    may wait a second for its retransmission. The heal (the breaker closed, the reads waiting
    on the peer sent again) must not wait for it."""
    paris, _ = await sites("Paris", "Corte")
    prober = paris.proxy.prober
    breaker = prober.sender.peers.breaker("Corte")
    healed: list[str] = []
    breaker.on_heal = lambda: healed.append("Corte")
    breaker.record_failure(now=0.0, reason="a cut")
    measuring, lossy = asyncio.Event(), asyncio.Event()

    async def slow_handshake(url: object, timeout: float) -> float | None:
        measuring.set()
        await lossy.wait()  # its SYN lost: released by the test, not by a clock
        return None

    monkeypatch.setattr(probes, "handshake_rtt_ms", slow_handshake)
    probe = asyncio.ensure_future(prober.probe("Corte", watch=True))
    await asyncio.wait(
        {probe, asyncio.ensure_future(measuring.wait())},
        timeout=10,
        return_when=asyncio.FIRST_COMPLETED,
    )
    assert measuring.is_set(), "the probe never got an answer from Corte"
    assert healed == ["Corte"] and not breaker.suspect
    lossy.set()
    assert await probe
    assert "Corte" in prober.services
