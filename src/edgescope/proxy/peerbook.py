"""The peers one proxy knows, and what it knows of each: where, which keys, its breaker.

The static ``[[peers]]`` of the site's config come first; an extension (the site directory,
``edgescope.directory``) adds, replaces and removes entries while the proxy runs. A peer's
breaker is made the first time a call or a probe needs it, and the book remembers when each
peer was last used, so probes go only to peers in recent use (``recently_used``).

    book = PeerBook(config.peers, config.breaker)
    book.get("Corte").url, book.breaker("Corte").state
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, KeysView

from edgescope.proxy.breaker import Breaker
from edgescope.proxy.config import BreakerConfig, PeerConfig
from edgescope.proxy.keys import Ed25519PublicKey


class PeerBook:
    """Peers by name, with a breaker each (made on first use) and the time of last use."""

    def __init__(
        self,
        static: Iterable[PeerConfig],
        breaker: BreakerConfig,
        on_new_breaker: Callable[[str, Breaker], None] = lambda _site, _breaker: None,
        max_in_flight: int = 256,
    ) -> None:
        self._peers = {peer.name: peer for peer in static}
        self._static = frozenset(self._peers)
        self._breaker_config = breaker
        self._breakers: dict[str, Breaker] = {}
        self._used: dict[str, float] = {}
        self._on_new_breaker = on_new_breaker
        self._max_in_flight = max_in_flight
        self._gates: dict[str, asyncio.Semaphore] = {}

    def get(self, name: str) -> PeerConfig | None:
        return self._peers.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._peers

    def __len__(self) -> int:
        return len(self._peers)

    def is_configured(self, name: str) -> bool:
        """Whether ``name`` is one of the operator's ``[[peers]]`` (else learned, or unknown)."""
        return name in self._static

    def names(self) -> KeysView[str]:
        return self._peers.keys()

    def peers(self) -> list[PeerConfig]:
        return list(self._peers.values())

    def public_keys(self, name: str) -> tuple[Ed25519PublicKey, ...]:
        peer = self._peers.get(name)
        return peer.public_keys if peer is not None else ()

    def breaker(self, name: str) -> Breaker:
        found = self._breakers.get(name)
        if found is None:
            config = self._breaker_config
            found = self._breakers[name] = Breaker(
                failure_threshold=config.failure_threshold,
                open_seconds=config.open_seconds,
                failure_span=config.failure_span,
                probe_backoff_min=config.probe_backoff_min,
                probe_backoff_max=config.probe_backoff_max,
            )
            self._on_new_breaker(name, found)
        return found

    def gate(self, name: str) -> asyncio.Semaphore:
        """The slots of calls awaiting an answer from ``name`` (``max_in_flight`` of them)."""
        found = self._gates.get(name)
        if found is None:
            found = self._gates[name] = asyncio.Semaphore(self._max_in_flight)
        return found

    def full_gates(self) -> int:
        """Peers whose every slot is taken right now (a new call to them waits)."""
        return sum(1 for gate in self._gates.values() if gate.locked())

    def breakers(self) -> dict[str, Breaker]:
        """The breakers made so far (peers called or probed at least once)."""
        return dict(self._breakers)

    def update(self, peer: PeerConfig) -> None:
        """Add or replace a peer (a static one is never replaced: the operator's word wins)."""
        if peer.name not in self._static:
            self._peers[peer.name] = peer

    def remove(self, name: str) -> None:
        if name not in self._static:
            self._peers.pop(name, None)
            self._breakers.pop(name, None)
            self._used.pop(name, None)
            self._gates.pop(name, None)

    def used(self, name: str, now: float | None = None) -> None:
        self._used[name] = time.monotonic() if now is None else now

    def recently_used(self, within: float, now: float | None = None) -> list[str]:
        """Peers a call went to in the last ``within`` seconds, or whose breaker is not closed."""
        now = time.monotonic() if now is None else now
        recent = {name for name, at in self._used.items() if now - at <= within}
        troubled = {name for name, b in self._breakers.items() if b.state != "closed"}
        return sorted(name for name in recent | troubled if name in self._peers)
