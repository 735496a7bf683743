"""Health probes of the peers in use: they feed the breakers and measure each peer's RTT.

Probes go only to peers a call went to recently (``probe_recent`` seconds), or whose breaker
is not closed, all at once but at most ``probe_concurrency`` in flight: probe traffic grows
with the peers a site talks to, not with the size of the edge. A peer nobody uses is never
probed; the first call to it is the check (a failed call counts against its breaker, like a
failed probe), and from then on it is probed. A probe that failed while this proxy's own
loop lagged (a wide fan-out) is no evidence against the peer.

    prober = Prober(sender, config.breaker)
    await prober.round()          # one round; the proxy runs one every probe_interval
"""

from __future__ import annotations

import asyncio
import time

from yarl import URL

from edgescope.aio import loop_lag
from edgescope.errors import SiteUnreachable
from edgescope.proxy.config import BreakerConfig
from edgescope.proxy.protocol import HEALTH_PATH
from edgescope.proxy.sender import OWN_LAG_SHARE, Sender


class Prober:
    """Probes the peers in use; remembers each one's last round-trip time."""

    def __init__(self, sender: Sender, config: BreakerConfig) -> None:
        self.sender = sender
        self.config = config
        self.rtt_ms: dict[str, float] = {}
        """Last successful probe's round trip, per peer (what the console draws)."""
        self.sent = 0
        """Probes sent since start (what ``bench/scale.py`` counts)."""

    async def run(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), self.config.probe_interval)
            except TimeoutError:
                await self.round()

    async def round(self) -> list[str]:
        """Probe every peer in use now, concurrently (bounded); returns whom it probed."""
        names = self.sender.peers.recently_used(self.config.probe_recent)
        gate = asyncio.Semaphore(max(1, self.config.probe_concurrency))

        async def one(name: str) -> None:
            async with gate:
                await self.probe(name)

        await asyncio.gather(*(one(name) for name in names))
        return names

    async def probe(self, name: str) -> bool:
        peer = self.sender.peers.get(name)
        if peer is None:
            return False
        breaker = self.sender.peers.breaker(name)
        self.sent += 1
        started, lag, since = time.monotonic(), loop_lag(), asyncio.get_running_loop().time()
        timeout = min(peer.connect_timeout, 1.0)
        try:
            await self.sender.upstream.get_json(
                name,
                URL(str(peer.url).rstrip("/") + HEALTH_PATH),
                timeout=timeout,
                ssl=self.sender.peer_ssl,
            )
        except Exception as exc:  # any failure is evidence, never a crash
            if lag.worst_since(since) >= timeout * OWN_LAG_SHARE:
                return False  # this proxy was too busy to tell: no evidence either way
            reason = exc.reason if isinstance(exc, SiteUnreachable) else str(exc)
            breaker.record_probe(False, now=time.monotonic(), reason=reason)
            self.sender.metrics.set_breaker(name, breaker.state)
            return False
        self.rtt_ms[name] = round((time.monotonic() - started) * 1000, 3)
        breaker.record_probe(True, now=time.monotonic())
        self.sender.metrics.set_breaker(name, breaker.state)
        return True
