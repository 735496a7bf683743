"""Health probes of the peers in use: they feed the breakers and measure each peer's RTT.

Probes go only to peers a call went to recently (``probe_recent`` seconds), or whose breaker
is not closed, all at once but at most ``probe_concurrency`` in flight: probe traffic grows
with the peers a site talks to, not with the size of the edge. A peer nobody uses is never
probed; the first call to it is the check (a failed call counts against its breaker, like a
failed probe), and from then on it is probed. A probe that failed while this proxy's own
loop lagged (a wide fan-out) is no evidence against the peer.

A probe's answer (``/edgescope/health``) also says which services the peer runs: with the
RTTs, what ``around``/``nearest`` resolve from (:meth:`SiteProxy.network_view`). For them a
peer's RTT is the least of its last :data:`RTT_SAMPLES` path samples; ``rtt_ms`` keeps the
last probe's own round trip. A path sample is the round trip of a TCP handshake with the
peer's address as the kernel measured it (:func:`handshake_rtt_ms`: SYN to SYN-ACK, answered
by the peer's kernel), so neither proxy's scheduling is in it: on a loaded host the probe's
HTTP round trip also holds the time both proxies waited for a CPU (a 10 ms path measured
16-45 ms, least of 5, at load 35 on 2 cores), which would push near peers out of an
``around``. Where the kernel does not say (no ``TCP_INFO``), the probe's round trip is the
sample.

A peer whose breaker is not closed, or that is suspect (a failure, or a hedged read that
stopped waiting for it, since its last success), is also probed on its breaker's own schedule:
at once when it opens or becomes suspect, then with jittered back-off
(:meth:`~breaker.Breaker.probe_due`), at most :data:`MAX_PROBES_PER_PEER` at a time and
:data:`MAX_PROBES` in all (a peer whose probe is due waits for a slot). A probe
waits the peer's ``connect_timeout`` (one SYN retransmission fits in the default 2 s).

While suspect, a peer is also *watched* (:meth:`~breaker.Breaker.watch_due`): every
``watch_period`` (0.25 s, jittered) a probe on a fresh connection, waiting at most
:data:`WATCH_TIMEOUT`, at most :data:`MAX_WATCHES_PER_PEER` of them and
:data:`MAX_WATCHES` in all in flight; its failure is no evidence (only the probes above
count), its success closes the breaker. Probes sent in a cut wait for their connection's
retransmission (a second apart at best): the heal is seen by the first watch sent after it.
A fresh connection races three connects (:class:`~forward.RacingConnector`: a lost SYN does
not wait a second), and a good probe tells the breaker before it measures the handshake RTT.

    prober = Prober(sender, config.breaker)
    await prober.round()          # one round; the proxy runs one every probe_interval
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Callable

from yarl import URL

from edgescope.aio import loop_lag, spawn
from edgescope.errors import SiteUnreachable
from edgescope.proxy.config import BreakerConfig
from edgescope.proxy.forward import get_json_from
from edgescope.proxy.protocol import HEALTH_PATH
from edgescope.proxy.sender import OWN_LAG_SHARE, Sender

MAX_PROBES_PER_PEER = 3
"""Probes of one troubled peer in flight at once (they overlap under back-off)."""
MAX_PROBES = 64
"""Probes of troubled peers in flight at once, all peers together: a hundred dead sites (a
client naming them, a directory of dead newcomers) stay suspect for good, and 3 sockets
each would pile up (424 probe tasks for 120 dead peers; tests/proxy/test_attacks_20261207b)."""
MAX_WATCHES_PER_PEER = 4
"""Watch probes of one suspect peer in flight at once."""
MAX_WATCHES = 64
"""Watch probes in flight at once, all peers together."""
WATCH_TIMEOUT = 1.0
"""A watch probe waits at most this (and the peer's ``connect_timeout``): by then a later
one, on a connection opened after it, has gone."""
RTT_SAMPLES = 5
"""Probes whose least RTT is a peer's RTT for ``around``/``nearest``."""
MAX_SERVICES = 64
"""A health answer naming more services than this is read as naming none (a hostile peer)."""
_SERVICE_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


class Prober:
    """Probes the peers in use; remembers each one's last round-trip time."""

    def __init__(
        self, sender: Sender, config: BreakerConfig, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.sender = sender
        self.config = config
        self.clock = clock
        """Seconds, monotonic: a probe's round trip and its breaker's time (a test's clock)."""
        self.rtt_ms: dict[str, float] = {}
        """Last successful probe's round trip, per peer (what the console draws)."""
        self.services: dict[str, frozenset[str]] = {}
        """The services each peer's last health answer named."""
        self._samples: dict[str, deque[float]] = {}
        self.sent = 0
        """Probes sent since start (what ``bench/scale.py`` counts)."""
        self._in_flight: dict[str, int] = {}
        self._watching: dict[str, int] = {}
        self._tried: dict[str, float] = {}
        """When each troubled peer's last probe or watch left (slots go to the least lately
        tried)."""
        self.watches = 0
        """Watch probes sent since start."""
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self, stopping: asyncio.Event) -> None:
        """Rounds every ``probe_interval``; troubled peers on their breakers' schedule."""
        wake = self._wake
        self.sender.watch.listeners.append(lambda _site: wake.set())
        stop_waiter = spawn(_set_when(stopping, wake))
        rounds: asyncio.Task[list[str]] | None = None
        next_round = self.clock() + self.config.probe_interval
        try:
            while not stopping.is_set():
                now = self.clock()
                self.probe_troubled(now)
                if now >= next_round:
                    if rounds is None or rounds.done():
                        rounds = spawn(self.round())
                    next_round = now + self.config.probe_interval
                wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(0.01, self._next_due(next_round)))
        finally:
            stop_waiter.cancel()
            for task in [*self._tasks, *([rounds] if rounds is not None else [])]:
                task.cancel()

    def _next_due(self, next_round: float) -> float:
        """Seconds until the next round or the next troubled peer's probe."""
        due = [next_round]
        probing = sum(self._in_flight.values())
        due += [  # a peer with all its probes in flight waits for one to end (it wakes us)
            b.next_probe_at
            for name, b in self.sender.peers.breakers().items()
            if b.suspect
            and self._in_flight.get(name, 0) < MAX_PROBES_PER_PEER
            and probing < MAX_PROBES
        ]
        watching = sum(self._watching.values())
        due += [
            b.next_watch_at
            for name, b in self.sender.peers.breakers().items()
            if b.suspect
            and b.watch_period > 0
            and self._watching.get(name, 0) < MAX_WATCHES_PER_PEER
            and watching < MAX_WATCHES
        ]
        return min(due) - self.clock()

    def probe_troubled(self, now: float) -> list[str]:
        """Start the probes due now of suspect peers (breaker not closed, or a failure or an
        abandoned read since the last success); returns whom."""
        started = []
        probing = sum(self._in_flight.values())
        suspect = [(n, b) for n, b in self.sender.peers.breakers().items() if b.suspect]
        tried = self._tried
        suspect.sort(key=lambda item: tried.get(item[0], 0.0))
        for name, breaker in suspect:  # the least lately tried first: no dead peer starves
            if (
                breaker.probe_due(now=now)
                and self._in_flight.get(name, 0) < MAX_PROBES_PER_PEER
                and probing < MAX_PROBES
            ):
                probing += 1
                tried[name] = now
                breaker.probe_started(now=now)
                self._in_flight[name] = self._in_flight.get(name, 0) + 1
                task = spawn(self._counted(name))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(name)
            elif (
                breaker.watch_due(now=now)
                and self._watching.get(name, 0) < MAX_WATCHES_PER_PEER
                and sum(self._watching.values()) < MAX_WATCHES
            ):
                tried[name] = now
                breaker.watch_started(now=now)
                self._watching[name] = self._watching.get(name, 0) + 1
                task = spawn(self._watched(name))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                started.append(name)
        return started

    async def _watched(self, name: str) -> None:
        try:
            await self.probe(name, watch=True)
        finally:
            self._watching[name] -= 1
            self._wake.set()

    async def _counted(self, name: str) -> None:
        try:
            await self.probe(name)
        finally:
            self._in_flight[name] -= 1
            self._wake.set()

    async def round(self) -> list[str]:
        """Probe every peer in use now, concurrently (bounded); returns whom it probed."""
        names = self.sender.peers.recently_used(self.config.probe_recent)
        gate = asyncio.Semaphore(max(1, self.config.probe_concurrency))

        async def one(name: str) -> None:
            async with gate:
                await self.probe(name)

        await asyncio.gather(*(one(name) for name in names))
        return names

    async def probe(self, name: str, *, watch: bool = False) -> bool:
        """Probe ``name``; a ``watch`` probe goes on a fresh connection, within
        :data:`WATCH_TIMEOUT`, and its failure is not told to the breaker.

        The probe goes through the sender's site client, as every request does, but not
        through ``open_peer``: it is what closes an open breaker (``allow`` would refuse it),
        it takes no slot of the peer's calls, and its outcome is told to the breaker here,
        once, as a probe's (``record_probe``), under this module's own rules."""
        peer = self.sender.peers.get(name)
        if peer is None:
            return False
        breaker = self.sender.peers.breaker(name)
        client = self.sender.client
        self.sent += 1
        self.watches += watch
        started, lag, since = self.clock(), loop_lag(), asyncio.get_running_loop().time()
        timeout = min(peer.connect_timeout, WATCH_TIMEOUT) if watch else peer.connect_timeout
        try:
            answer, address = await get_json_from(
                client,
                name,
                URL(str(peer.url).rstrip("/") + HEALTH_PATH),
                timeout=timeout,
                ssl=self.sender.peer_ssl,
                fresh=watch,
            )
        except Exception as exc:  # any failure is evidence, never a crash
            if watch:
                self.sender.metrics.watch_probes.labels(peer=name, outcome="failed").inc()
                return False  # a watch only listens for the heal
            if lag.worst_since(since) >= timeout * OWN_LAG_SHARE:
                return False  # this proxy was too busy to tell: no evidence either way
            reason = exc.reason if isinstance(exc, SiteUnreachable) else str(exc)
            breaker.record_probe(False, now=self.clock(), reason=reason)
            self.sender.metrics.set_breaker(name, breaker.state)
            return False
        rtt_ms = round((self.clock() - started) * 1000, 3)
        if watch:
            self.sender.metrics.watch_probes.labels(peer=name, outcome="ok").inc()
        # The heal first: the handshake below is one more crossing, and under loss its SYN
        # may wait a second for its retransmission (the reads waiting on the peer would too).
        breaker.record_probe(True, now=self.clock())
        self.sender.metrics.set_breaker(name, breaker.state)
        # The path to the address the probe's own connection went to, not to a lookup of the
        # peer's name: a peer's DNS could answer that one with an address near this proxy.
        path_ms = await handshake_rtt_ms(address, timeout) if address is not None else None
        self.record(name, rtt_ms, services_of(answer), path_ms)
        return True

    def record(
        self, name: str, rtt_ms: float, services: frozenset[str], path_ms: float | None = None
    ) -> None:
        """One successful probe of ``name``: its round trip, the services it named, and the
        path's round trip (the kernel's handshake RTT; None: the probe's own is the sample)."""
        self.rtt_ms[name] = rtt_ms
        sample = path_ms if path_ms is not None else rtt_ms
        self._samples.setdefault(name, deque(maxlen=RTT_SAMPLES)).append(sample)
        self.services[name] = services

    def path_rtt_ms(self) -> dict[str, float]:
        """Per measured peer, the least RTT of its last probes (what around()/nearest() use)."""
        return {name: min(samples) for name, samples in self._samples.items() if samples}


_TCP_INFO = getattr(socket, "TCP_INFO", None)
_TCPI_RTT_OFFSET = 68
"""Where ``struct tcp_info`` (linux/tcp.h) holds ``tcpi_rtt``, the smoothed RTT in µs: after
8 one-byte fields, the 16th 32-bit field. Right after a handshake it is the SYN's own RTT."""
_TCP_INFO_SIZE = 104


async def handshake_rtt_ms(address: tuple[str, int], timeout: float) -> float | None:
    """The round trip of a TCP handshake with ``address`` (an IP and a port, looked up by
    nobody here), as the kernel measured it, in ms; None when it cannot tell (no
    ``TCP_INFO``, no answer within ``timeout``).

    Only the two kernels and the network take part: the peer's kernel answers the SYN, and
    this kernel times the SYN-ACK, whoever waits for a CPU. Nothing is sent on the
    connection; it is reset at once (no TIME_WAIT left behind per probe)."""
    if _TCP_INFO is None:
        return None
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    try:
        async with asyncio.timeout(timeout):
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await loop.sock_connect(sock, address)
                info = sock.getsockopt(socket.IPPROTO_TCP, _TCP_INFO, _TCP_INFO_SIZE)
    except (OSError, TimeoutError):
        return None
    if len(info) < _TCPI_RTT_OFFSET + 4:
        return None
    (rtt_us,) = struct.unpack_from("I", info, _TCPI_RTT_OFFSET)
    return round(rtt_us / 1000, 3) if rtt_us else None


def services_of(answer: object) -> frozenset[str]:
    """The services a health answer names (``{"services": ["compute", ...]}``), bounded.

    >>> sorted(services_of({"site": "Corte", "services": ["image", "compute"]}))
    ['compute', 'image']
    >>> services_of({"services": ["image", 3]}), services_of("ok")
    (frozenset(), frozenset())
    """
    named = answer.get("services") if isinstance(answer, dict) else None
    if not isinstance(named, list) or len(named) > MAX_SERVICES:
        return frozenset()
    if not all(isinstance(n, str) and _SERVICE_NAME.fullmatch(n) for n in named):
        return frozenset()
    return frozenset(named)


async def _set_when(event: asyncio.Event, other: asyncio.Event) -> None:
    await event.wait()
    other.set()
