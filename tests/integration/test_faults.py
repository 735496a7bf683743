"""Reliability under faults, on the emulated WAN with real OpenStack sites (issue 5).

* partition during traffic: 1-DC work at Paris and at Corte keeps succeeding, 100%, while
  they are cut; cross-site calls in flight fail with 503 within the proxy's configured
  timeouts (never hang); every acknowledged create exists after heal;
* flapping link (30% loss, cut 10 s on / 5 s off): ``|`` scopes keep succeeding
  through the healthy site, and the breaker opens in each cut and closes after it, as
  ``/metrics`` shows;
* proxy crash (SIGKILL) and restart at Corte: others' local work is unaffected, scopes
  naming Corte fail cleanly until it is back.

Traffic comes from ``faults_driver.py`` run inside the sites' namespaces (the root namespace
cannot reach them). Every loop is bounded in count and time. The testbed is the demo's
(``EDGESCOPE_WAN_TESTBED_DIR``; default ``<repo>/state`` when it holds a WAN testbed, else
``<repo>/state-wan``): reused if there, else created here and stopped at the end of the session
(fixture ``wtb`` in ``conftest.py``, shared with the replicas' WAN partition tests).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from wan_testbed import WanTestbed, collect

pytestmark = [pytest.mark.testbed, pytest.mark.wan]

SLACK = 5.0
"""Seconds allowed beyond the configured timeouts (scheduling on a loaded 2-core machine)."""


def _ok(record: dict[str, Any]) -> bool:
    return record["status"] is not None and 200 <= record["status"] < 300


def _during(records: list[dict[str, Any]], start: float, end: float) -> list[dict[str, Any]]:
    return [r for r in records if start <= r["start"] and r["start"] + r["seconds"] <= end]


def test_partition_during_traffic(wtb: WanTestbed) -> None:
    budget = wtb.peer_timeouts("Paris", "Corte")
    local = {"duration": 60, "max_ops": 500, "pause": 0.1}
    local_ops = [{"kind": "create"}, {"kind": "list"}]
    paris = wtb.start_traffic("Paris", ops=local_ops, **local)
    corte = wtb.start_traffic("Corte", ops=local_ops, **local)
    cross_ops = [
        {"kind": "create", "scope": "{image: Corte}"},
        {"kind": "list", "scope": "{image: Corte}"},
    ]
    cross = wtb.start_traffic("Paris", ops=cross_ops, duration=60, max_ops=300, pause=0.2)
    time.sleep(10)
    cut_at = time.time()
    wtb.wan.partition("Paris", "Corte")
    try:
        # Calls in flight at the cut wait for their read timeout on a pooled connection; calls
        # started once the breaker has seen the cut (probes, failed calls) must fail at once.
        time.sleep(12)
        late = wtb.start_traffic("Paris", ops=cross_ops, duration=8, max_ops=40, pause=0.2)
        time.sleep(13)
    finally:
        wtb.wan.heal("Paris", "Corte")
    healed_at = time.time()
    at_paris, at_corte = collect(paris, 300), collect(corte, 300)
    crossing, started_in_cut = collect(cross, 300), collect(late, 300)

    for name, records in (("Paris", at_paris), ("Corte", at_corte)):
        in_cut = _during(records, cut_at, healed_at)
        assert len(in_cut) >= 5, f"too little 1-DC traffic at {name} during the cut: {len(in_cut)}"
        failed = [r for r in records if not _ok(r)]
        assert failed == [], f"1-DC calls at {name} failed: {failed[:3]}"

    assert crossing, "no cross-site traffic"
    for record in crossing:
        assert record["status"] is not None, (
            f"a cross-site call hung until the client gave up: {record}"
        )
        assert _ok(record) or record["status"] == 503, f"not 2xx nor 503: {record}"
        assert record["seconds"] <= budget + SLACK, (
            f"took longer than the proxy's timeouts: {record}"
        )
        if record["status"] == 503:
            # Either Paris's proxy could not reach Corte (its error names Corte), or the call
            # reached Corte before the cut and Corte's glance could not check the token at
            # Paris (glance's own 503): the proxy's X-Edgescope-Sites says Corte answered.
            named = "Corte" in record["error"] or record["sites"] == "Corte=503"
            assert named, f"the 503 does not name Corte: {record}"
    assert started_in_cut, "no cross-site call was started during the cut"
    for record in started_in_cut:
        assert record["status"] == 503, f"a call to Corte during the cut was not a 503: {record}"
        assert "Corte" in record["error"], f"the 503 does not name Corte: {record['error']}"
        assert record["seconds"] <= budget + SLACK, f"took longer than the timeouts: {record}"
        assert record["start"] + record["seconds"] <= healed_at + SLACK
    assert any(_ok(r) and r["start"] > healed_at for r in crossing), "Corte never came back"

    # No acknowledged write lost: every 201 is there after heal, at the site that acknowledged it.
    for site, scope, records in (
        ("Paris", None, at_paris),
        ("Corte", None, at_corte),
        ("Paris", "{image: Corte}", crossing),
    ):
        created = [r["id"] for r in records if r["kind"] == "create" and r["id"]]
        assert created, f"nothing was created via {site} {scope or ''}"
        checks = wtb.traffic(site, check=created, scope=scope)
        missing = [c["id"] for c in checks if c["status"] != 200]
        assert missing == [], f"acknowledged creates missing after heal ({site} {scope}): {missing}"


@dataclass
class Flapping:
    records: list[dict[str, Any]]
    """Every '|' call made while the link flapped."""
    cuts: list[tuple[float, float]]
    states: list[tuple[float, float | None]]
    """(time, edgescope_breaker_state{peer="Corte"} at Paris) every 0.5 s."""
    reopened: list[dict[str, Any]]
    """Successful {image: Corte} calls after the last heal."""


@pytest.fixture(scope="module")
def flapping(wtb: WanTestbed) -> Flapping:
    """One run of the flapping link, shared by the tests that judge it."""
    original = wtb.wan.topology.link("Paris", "Corte")
    wtb.wan.set_link("Paris", "Corte", loss=0.3)
    scope = "{image: Corte | Marseille}"
    drivers = [  # a few parallel streams: on a lossy link each call can take seconds
        wtb.start_traffic(
            "Paris", ops=[{"kind": "list", "scope": scope}], duration=45, max_ops=400, pause=0.1
        )
        for _ in range(3)
    ]
    cuts: list[tuple[float, float]] = []
    states: list[tuple[float, float | None]] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            states.append((time.time(), wtb.breaker_state("Paris", "Corte")))
            stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        # 3 cycles of 10 s cut, 5 s up: long enough for the probes (every 2 s) to open the
        # breaker within a cut, short enough for calls in flight to straddle cuts.
        for _flap in range(3):
            wtb.wan.partition("Paris", "Corte")
            cut_at = time.time()
            time.sleep(10)
            wtb.wan.heal("Paris", "Corte")
            cuts.append((cut_at, time.time()))
            time.sleep(5)
    finally:
        wtb.wan.heal("Paris", "Corte")
        wtb.wan.set_link("Paris", "Corte", loss=original.loss or 0.0)
    records = [r for driver in drivers for r in collect(driver, 300)]
    # After the flapping: a healthy link; the breaker must close again (bounded wait).
    reopened = [
        r
        for r in wtb.traffic(
            "Paris",
            ops=[{"kind": "list", "scope": "{image: Corte}"}],
            duration=25,
            max_ops=60,
            pause=0.5,
        )
        if _ok(r)
    ]
    deadline = time.time() + 20
    while time.time() < deadline and wtb.breaker_state("Paris", "Corte", tries=3) != 0:
        time.sleep(0.5)
    stop.set()
    watcher.join(timeout=10)
    states.append((time.time(), wtb.breaker_state("Paris", "Corte", tries=3)))

    seconds = sorted(r["seconds"] for r in records) or [0.0]
    print(
        f"flapping: {len(records)} '|' calls, seconds min/median/max {seconds[0]:.2f}/"
        f"{seconds[len(seconds) // 2]:.2f}/{seconds[-1]:.2f}; breaker "
        + "".join(
            {0.0: "0", 1.0: "h", 2.0: "O"}.get(v, "-") if v is not None else "-" for _, v in states
        )
    )
    return Flapping(records, cuts, states, reopened)


def test_flapping_link_or_scope_succeeds_and_breaker_cycles(flapping: Flapping) -> None:
    records = flapping.records
    assert len(records) >= 6, f"too few calls during the flapping: {len(records)}"
    for record in records:
        assert record["status"] is not None, f"a '|' call hung until the client gave up: {record}"
    failed = [r for r in records if not _ok(r) and r["status"] != 401]  # 401: the next test
    assert failed == [], f"{len(failed)} of {len(records)} '|' calls failed: {failed[:2]}"
    in_cuts = [
        r
        for r in records
        if _ok(r)
        and any(a <= r["start"] + r["seconds"] and r["start"] <= b for a, b in flapping.cuts)
    ]
    assert in_cuts, "no '|' call overlapping a cut succeeded"
    # '|' reads hedge (docs/proxy.md, Hedged reads) and no longer wait for Corte to fail; a
    # read that stopped waiting for Corte makes it suspect, and a suspect peer is probed at
    # once and then with back-off, so the probes open its breaker within a 10 s cut (this
    # check was relaxed while only the probe rounds, every 2 s, told the breaker of a cut).
    seen = [value for _, value in flapping.states]
    assert 2.0 in seen, f"the breaker towards Corte never showed open in /metrics: {seen}"
    first_open = seen.index(2.0)
    assert 0.0 in seen[first_open:], f"the breaker never closed again after opening: {seen}"
    assert seen[-1] == 0.0, f"the breaker towards Corte is not closed after the heal: {seen}"
    assert flapping.reopened, "{image: Corte} never succeeded after the link was healed"


def test_flapping_link_or_scope_never_answers_401(flapping: Flapping) -> None:
    """Corte's glance cannot reach Paris's Keystone at the moment of a cut: that must be a
    503 (glance runs with delay_auth_decision = false), on which '|' falls back, not a 401."""
    refused = [r for r in flapping.records if r["status"] == 401]
    assert refused == [], f"{len(refused)} of {len(flapping.records)} '|' calls answered 401"


def _kill_proxy(wtb: WanTestbed, site: str) -> int:
    from edgescope.testbed.process import running_pid

    pid = running_pid(wtb.testbed.site(site).plan.pid_path("proxy"))
    assert pid is not None, f"{site}'s proxy is not running"
    os.kill(pid, signal.SIGKILL)  # a crash, not a clean stop
    return pid


def test_proxy_crash_and_restart(wtb: WanTestbed) -> None:
    pid = _kill_proxy(wtb, "Corte")
    try:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        local_ops = [{"kind": "create"}, {"kind": "list"}]
        paris = wtb.start_traffic("Paris", ops=local_ops, duration=15, max_ops=100)
        marseille = wtb.start_traffic("Marseille", ops=local_ops, duration=15, max_ops=100)
        naming = wtb.traffic(
            "Paris", ops=[{"kind": "list", "scope": "{image: Corte}"}], duration=10, max_ops=10
        )
        for site, proc in (("Paris", paris), ("Marseille", marseille)):
            records = collect(proc, 300)
            assert records and all(_ok(r) for r in records), (
                f"local work at {site} was affected by Corte's crash: "
                f"{[r for r in records if not _ok(r)][:2]}"
            )
        budget = wtb.peer_timeouts("Paris", "Corte")
        assert naming
        for record in naming:
            assert record["status"] == 503, f"a scope naming Corte did not fail cleanly: {record}"
            assert "Corte" in record["error"] and "Traceback" not in record["error"]
            assert record["seconds"] <= budget + SLACK
    finally:
        wtb.testbed.start_service("Corte", "proxy")
    back = wtb.traffic(
        "Paris",
        ops=[{"kind": "list", "scope": "{image: Corte}"}],
        duration=30,
        max_ops=60,
        pause=0.5,
    )
    assert any(_ok(r) for r in back), (
        f"{{image: Corte}} did not work after the restart: {back[-1:]}"
    )
    last = back[-1]
    assert _ok(last), f"Corte answered once, then failed again: {last}"
