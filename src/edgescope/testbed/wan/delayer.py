"""The userspace WAN delayer: holds each forwarded packet for the one-way delay of its pair.

For kernels without netem. It runs inside the wan namespace (started by ``wan.Wan.up``):

1. binds NFQUEUE queue N (``_nfqueue``), then adds its own rule
   ``iptables -A FORWARD -j NFQUEUE --queue-num N --queue-bypass`` and prints ``ready``;
   the rule never exists without a bound listener;
2. gives each packet its verdict after ``delay ± jitter`` of its (source, destination)
   pair, in order within a pair; drops it with the pair's ``loss`` probability, or when the
   pair is partitioned at release time (packets in flight when a cut starts are lost);
3. reloads its JSON config on SIGHUP;
4. on SIGTERM/SIGINT removes its rule first, then releases every held packet, then exits.
   ``--queue-bypass`` makes the kernel pass packets undelayed if it dies without cleaning up.

Config (written by ``wan.py``)::

    {"pairs": [{"src": "10.66.0.1", "dst": "10.66.0.2", "delay_ms": 5.0,
                "jitter_ms": 0.0, "loss": 0.0}, ...],
     "partitions": [["10.66.0.1", "10.66.0.3"]]}

Run: ``ip netns exec es-wan python -m edgescope.testbed.wan.delayer --config wan.json``
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import itertools
import json
import os
import random
import selectors
import signal
import socket
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from edgescope.testbed.wan._nfqueue import ACCEPT, DROP, NfQueue

Pair = tuple[bytes, bytes]
_BATCH = 512


@dataclass(frozen=True)
class PairDelay:
    delay_s: float
    jitter_s: float = 0.0
    loss: float = 0.0


@dataclass(frozen=True)
class DelayerConfig:
    pairs: dict[Pair, PairDelay]
    """Directed (source, destination) 4-byte addresses; unknown pairs pass at once."""
    partitions: frozenset[Pair]
    """Directed pairs whose packets are dropped (both directions are listed)."""


def load_config(path: Path) -> DelayerConfig:
    data = json.loads(path.read_text())
    pairs = {
        (socket.inet_aton(p["src"]), socket.inet_aton(p["dst"])): PairDelay(
            p["delay_ms"] / 1000, p.get("jitter_ms", 0.0) / 1000, p.get("loss", 0.0)
        )
        for p in data.get("pairs", [])
    }
    cuts: set[Pair] = set()
    for a, b in data.get("partitions", []):
        cuts |= {
            (socket.inet_aton(a), socket.inet_aton(b)),
            (socket.inet_aton(b), socket.inet_aton(a)),
        }
    return DelayerConfig(pairs, frozenset(cuts))


def rule_args(queue_num: int) -> list[str]:
    """The FORWARD rule sending bridged IPv4 packets to the delayer's queue."""
    return ["FORWARD", "-j", "NFQUEUE", "--queue-num", str(queue_num), "--queue-bypass"]


class Delayer:
    """The event loop: one netlink socket, one signal pipe, and a heap of held packets."""

    def __init__(self, queue: NfQueue, config_path: Path) -> None:
        self.queue = queue
        self.config_path = config_path
        self.config = load_config(config_path)
        self.held: list[tuple[float, int, Pair]] = []  # (release time, packet id, pair)
        self.last_release: dict[Pair, float] = {}
        self.random = random.Random()
        self.stopping = False
        self._pending: list[int] = []

    def admit(self, now: float) -> int:
        """Schedule the packets waiting on the queue; return how many were taken."""
        dropped: list[tuple[int, int]] = []
        passed: list[tuple[int, int]] = []
        # A bounded batch, so a flood of arrivals cannot hold back the packets that are due.
        taken = 0
        for packet_id, src, dst in itertools.islice(self.queue.receive(), _BATCH):
            taken += 1
            pair = (src, dst)
            spec = self.config.pairs.get(pair)
            if spec is None:
                passed.append((packet_id, ACCEPT))
                continue
            if spec.loss and self.random.random() < spec.loss:
                dropped.append((packet_id, DROP))
                continue
            jitter = self.random.uniform(-spec.jitter_s, spec.jitter_s) if spec.jitter_s else 0.0
            # Never overtake the previous packet of the pair: jitter must not reorder a flow.
            at = max(now + spec.delay_s + jitter, self.last_release.get(pair, 0.0))
            self.last_release[pair] = at
            heapq.heappush(self.held, (at, packet_id, pair))
        if dropped or passed:
            self.queue.verdicts(dropped + passed)
        return taken

    def release_due(self, now: float) -> None:
        """Give the verdict of every packet whose time has come (drop it if its pair is cut)."""
        decided: list[tuple[int, int]] = []
        while self.held and self.held[0][0] <= now:
            _, packet_id, pair = heapq.heappop(self.held)
            decided.append((packet_id, DROP if pair in self.config.partitions else ACCEPT))
        if decided:
            self.queue.verdicts(decided)

    def release_all(self) -> None:
        self.queue.verdicts([(pid, ACCEPT) for _, pid, _ in self.held])
        self.held.clear()

    def reload(self) -> None:
        try:
            self.config = load_config(self.config_path)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(
                f"delayer: keeping the old config, cannot load {self.config_path}: {exc}",
                file=sys.stderr,
            )

    def install_signals(self) -> None:
        """Turn SIGHUP/SIGTERM/SIGINT into wake-ups of the loop (before any rule exists)."""
        self._wake_r, wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        wake_w.setblocking(False)
        self._wake_w = wake_w  # kept open for as long as the loop runs
        signal.set_wakeup_fd(wake_w.fileno())
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda signum, _frame: self._pending.append(signum))

    def run(self) -> None:
        # select(2) takes a microsecond timeout; epoll and poll round it up to whole milliseconds.
        selector = selectors.SelectSelector()
        selector.register(self.queue, selectors.EVENT_READ)
        selector.register(self._wake_r, selectors.EVENT_READ)
        errors = overruns_said = 0
        while not self.stopping:
            overruns = self.queue.overruns
            if overruns > overruns_said and (
                overruns <= 20 or overruns // 1000 > overruns_said // 1000
            ):
                _say(f"{overruns} queue overruns so far: the kernel dropped packets (ENOBUFS)")
                overruns_said = overruns
            try:
                self.turn(selector)
            except Exception:  # the WAN must outlive one bad round; the log says why
                errors += 1
                if errors <= 20 or errors % 1000 == 0:
                    _say(f"error #{errors} in a round, going on:\n{traceback.format_exc()}")
                time.sleep(0.001)

    def turn(self, selector: selectors.BaseSelector) -> None:
        """One round: wait for a packet, a signal or the next release; act on them."""
        timeout = max(0.0, self.held[0][0] - time.monotonic()) if self.held else None
        selector.select(timeout)
        self.admit(time.monotonic())
        self.release_due(time.monotonic())
        while self._pending:
            if self._pending.pop(0) == signal.SIGHUP:
                self.reload()
            else:
                self.stopping = True
        with contextlib.suppress(BlockingIOError):
            self._wake_r.recv(4096)


def _say(message: str) -> None:
    """A timestamped line in the delayer's log (its stderr)."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
    print(f"{stamp} delayer[{os.getpid()}]: {message}", file=sys.stderr, flush=True)


def _run_before_others() -> None:
    """The delayer plays the network, so it must not wait behind the sites' processes.

    Lowest real-time priority (SCHED_FIFO 1): it wakes up on time even when the OpenStack
    sites load every core. It sleeps in select() between packets, and the kernel's RT
    throttling still keeps 5% of each CPU for others. Falls back to nice -10.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, -10)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--daemon", action="store_true", help="detach from the starting process")
    args = parser.parse_args(argv)
    if args.daemon and os.fork():
        os._exit(0)  # the starter reaps this parent at once; the delayer lives on, not its child
    if args.daemon:
        os.setsid()
    _run_before_others()
    queue = NfQueue(args.queue)
    delayer = Delayer(queue, args.config)
    delayer.install_signals()
    # A delayer that was killed (SIGKILL) left its rule behind: one rule, never two.
    while subprocess.run(["iptables", "-w", "-D", *rule_args(args.queue)], check=False,
                         stderr=subprocess.DEVNULL).returncode == 0:  # fmt: skip
        pass
    subprocess.run(["iptables", "-w", "-A", *rule_args(args.queue)], check=True)
    try:
        _say("started")
        print(f"ready {os.getpid()}", flush=True)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # the starter stops reading after "ready"
        os.close(devnull)
        delayer.run()
    finally:
        # Remove the rule before letting go of the queue, so no packet meets a dead queue.
        subprocess.run(["iptables", "-w", "-D", *rule_args(args.queue)], check=False)
        while delayer.admit(time.monotonic()):
            pass  # drain what was queued before the rule went away
        delayer.release_all()
        queue.close()
        _say("stopped" if delayer.stopping else f"exiting: {sys.exc_info()[1]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
