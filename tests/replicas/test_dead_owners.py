"""A proxy killed while applying a write leaves its claim (330 s) and leases behind; the next
proxy of the same host expires them at start, so the write's replays are taken over at once
instead of answering 503 for minutes (found by the fault campaign of issue 24)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from edgescope.replicas.extension import dead_on_this_host
from edgescope.replicas.registry import ClaimState, Registry


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_claims_of_a_dead_proxy_of_this_host_are_taken_over_at_once(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path))
    dead = f"Paris/vm/{dead_pid()}/aaaaaa"
    live = f"Paris/vm/{os.getpid()}/bbbbbb"  # another proxy of the host, still running
    own = f"Paris/vm/{os.getpid()}/cccccc"
    assert registry.claim_apply("k1", dead, 330).state is ClaimState.MINE
    assert registry.claim_apply("k2", live, 330).state is ClaimState.MINE
    assert registry.acquire("set:h", dead, 30)
    assert registry.claim_apply("k1", own, 330).state is ClaimState.BUSY

    assert registry.expire_dead_owners("Paris/vm/", dead_on_this_host(own)) == 2

    taken = registry.claim_apply("k1", own, 330)
    assert (taken.state, taken.taken_over) == (ClaimState.MINE, True)
    assert registry.acquire("set:h", own, 30)
    assert registry.claim_apply("k2", own, 330).state is ClaimState.BUSY  # its owner runs


def test_other_sites_hosts_and_foreign_names_are_left_alone(tmp_path: Path) -> None:
    registry = Registry(str(tmp_path))
    pid = dead_pid()
    for owner in (f"Corte/vm/{pid}/aaaaaa", f"Paris/other/{pid}/aaaaaa", "Paris/vm/x/aa"):
        assert registry.claim_apply(owner, owner, 330).state is ClaimState.MINE
    own = f"Paris/vm/{os.getpid()}/cccccc"
    assert registry.expire_dead_owners("Paris/vm/", dead_on_this_host(own)) == 0
    for key in (f"Corte/vm/{pid}/aaaaaa", f"Paris/other/{pid}/aaaaaa", "Paris/vm/x/aa"):
        assert registry.claim_apply(key, own, 330).state is ClaimState.BUSY
