"""The delayer's decisions (hold, release, drop), driven through an in-memory stand-in queue.

The real NFQUEUE path is exercised end to end by test_wan_netns.py; here the clock is
explicit, so the timing rules are checked exactly.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgescope.testbed.wan._nfqueue import ACCEPT, DROP
from edgescope.testbed.wan.delayer import Delayer

PARIS, CORTE, OTHER = "10.66.0.1", "10.66.0.2", "10.66.0.9"


class QueueDouble:
    """Hands out the packets given to ``feed`` and records every verdict."""

    def __init__(self) -> None:
        self.waiting: list[tuple[int, bytes, bytes]] = []
        self.verdicts_sent: list[tuple[int, int]] = []

    def feed(self, packet_id: int, src: str, dst: str) -> None:
        self.waiting.append((packet_id, socket.inet_aton(src), socket.inet_aton(dst)))

    def receive(self) -> Iterator[tuple[int, bytes, bytes]]:
        while self.waiting:
            yield self.waiting.pop(0)

    def verdicts(self, decided: list[tuple[int, int]]) -> None:
        self.verdicts_sent.extend(decided)


def write_config(
    path: Path,
    *,
    delay_ms: float = 10,
    jitter_ms: float = 0,
    loss: float = 0,
    partitions: list[list[str]] | None = None,
) -> Path:
    pair: dict[str, Any] = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss}
    config = {
        "pairs": [{"src": PARIS, "dst": CORTE, **pair}, {"src": CORTE, "dst": PARIS, **pair}],
        "partitions": partitions or [],
    }
    path.write_text(json.dumps(config))
    return path


def make(tmp_path: Path, **config: Any) -> tuple[Delayer, QueueDouble]:
    queue = QueueDouble()
    return Delayer(queue, write_config(tmp_path / "d.json", **config)), queue  # type: ignore[arg-type]


def test_packet_is_held_exactly_its_pair_delay(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, delay_ms=10)
    queue.feed(1, PARIS, CORTE)
    delayer.admit(now=100.0)
    delayer.release_due(now=100.0099)
    assert queue.verdicts_sent == []
    delayer.release_due(now=100.010)
    assert queue.verdicts_sent == [(1, ACCEPT)]


def test_unknown_pair_passes_at_once(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path)
    queue.feed(7, PARIS, OTHER)
    delayer.admit(now=0.0)
    assert queue.verdicts_sent == [(7, ACCEPT)]


def test_packets_held_when_a_cut_starts_are_dropped_at_release(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, delay_ms=150)
    queue.feed(1, PARIS, CORTE)
    queue.feed(2, CORTE, PARIS)
    delayer.admit(now=0.0)
    write_config(delayer.config_path, delay_ms=150, partitions=[[PARIS, CORTE]])
    delayer.reload()
    delayer.release_due(now=0.2)
    assert sorted(queue.verdicts_sent) == [(1, DROP), (2, DROP)]


def test_loss_drops_about_the_configured_fraction(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, loss=0.3)
    delayer.random.seed(5)
    for packet_id in range(2000):
        queue.feed(packet_id, PARIS, CORTE)
    batches = []
    while taken := delayer.admit(now=0.0):
        batches.append(taken)
    assert batches == [512, 512, 512, 464]  # bounded batches: releases are never starved
    delayer.release_due(now=1.0)
    drops = sum(1 for _, verdict in queue.verdicts_sent if verdict == DROP)
    assert len(queue.verdicts_sent) == 2000
    assert 0.25 < drops / 2000 < 0.35


def test_jitter_varies_delay_but_never_reorders_a_pair(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, delay_ms=50, jitter_ms=20)
    for packet_id in range(200):
        queue.feed(packet_id, PARIS, CORTE)
        delayer.admit(now=packet_id * 0.001)
    delays = [at - pid * 0.001 for at, pid, _ in delayer.held]
    assert min(delays) >= 0.030
    assert max(delays) <= 0.070
    assert len({round(d, 4) for d in delays}) > 20  # the delay really varies
    delayer.release_due(now=10.0)
    assert [pid for pid, _ in queue.verdicts_sent] == list(range(200))


def test_release_all_accepts_everything_held(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, delay_ms=300)
    for packet_id in range(3):
        queue.feed(packet_id, PARIS, CORTE)
    delayer.admit(now=0.0)
    delayer.release_all()
    assert queue.verdicts_sent == [(0, ACCEPT), (1, ACCEPT), (2, ACCEPT)]
    assert delayer.held == []


def test_unreadable_config_keeps_the_old_one(tmp_path: Path) -> None:
    delayer, queue = make(tmp_path, delay_ms=10)
    delayer.config_path.write_text("{not json")
    delayer.reload()
    queue.feed(1, PARIS, CORTE)
    delayer.admit(now=0.0)
    delayer.release_due(now=0.005)
    assert queue.verdicts_sent == []
