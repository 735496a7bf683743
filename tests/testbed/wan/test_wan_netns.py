"""The WAN on real namespaces: lifecycle, delays, partitions, loss, and the delayer's rule.

Needs root and ``ip netns``; skipped otherwise. Timing assertions check the *correctness*
of the emulated delay (never faster than configured, not wildly slower), not performance.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from wan_support import PROBE, in_site, ping, probe

from edgescope.testbed.wan import Wan, load_topology
from edgescope.testbed.wan import netns as netns_module

pytestmark = pytest.mark.wan
MARGIN_MS = 15.0  # generous: two shared cores, a Python delayer


def _namespaces() -> set[str]:
    return set(os.listdir(netns_module.NETNS_DIR)) if netns_module.NETNS_DIR.exists() else set()


def _alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped by its parent counts as stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _forward_rules(wan: Wan) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", wan.names.wan, "iptables", "-w", "-S", "FORWARD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


@pytest.fixture
def echo_server(wan: Wan) -> Iterator[tuple[str, int]]:
    """A TCP echo server inside Corte, on Corte's address."""
    address, port = wan.site_address("Corte"), 7000
    server = subprocess.Popen(
        [*wan.exec_prefix("Corte"), sys.executable, str(PROBE), "serve", address, str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert server.stdout is not None and server.stdout.readline().strip() == "listening"
    yield address, port
    server.terminate()
    server.wait(timeout=5)
    server.stdout.close()


@pytest.fixture(autouse=True)
def healed(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "wan" in request.fixturenames:
        request.getfixturevalue("wan").heal()


def test_up_builds_isolated_sites_and_down_leaves_nothing(make_wan: Callable[..., Wan]) -> None:
    before = _namespaces()
    wan = make_wan()
    names = {wan.names.wan, *(wan.namespace(s) for s in ("Paris", "Corte", "Marseille"))}
    assert names <= _namespaces()
    routes = in_site(wan, "Paris", "ip", "-4", "route").stdout
    assert "default" not in routes and "10.66.0.0/24 dev wan0" in routes
    assert (
        in_site(wan, "Paris", "sysctl", "-n", "net.ipv6.conf.all.disable_ipv6").stdout.strip()
        == "1"
    )
    assert (
        f"inet {wan.site_address('Paris')}/24" in in_site(wan, "Paris", "ip", "-4", "addr").stdout
    )
    pid = wan.delayer_pid
    assert pid is not None and wan.status().delayer_alive
    Wan.attach(wan.state_dir).down()  # another "process" tears it down from the state alone
    assert _namespaces() == before
    assert not _alive(pid)
    assert not (wan.state_dir / "state.json").exists()
    wan.down()  # idempotent


def test_up_again_in_the_same_state_dir_replaces_the_old_wan(make_wan: Callable[..., Wan]) -> None:
    first = make_wan()
    second = Wan.up(load_topology(), first.state_dir, prefix=first.names.prefix)
    try:
        assert first.delayer_pid is not None and not _alive(first.delayer_pid)
        assert second.status().delayer_alive
        assert ping(second, "Paris", "Corte", count=2)[2] == 2
    finally:
        second.down()


def test_rtt_of_each_pair_is_the_configured_one(wan: Wan) -> None:
    for a, b in (("Paris", "Marseille"), ("Paris", "Corte"), ("Corte", "Marseille")):
        configured = wan.topology.link(a, b).rtt_ms
        minimum, average, received = ping(wan, a, b)
        assert received == 5
        assert minimum >= configured, f"{a}–{b}: {minimum} ms < configured {configured} ms"
        assert average < configured + MARGIN_MS, f"{a}–{b}: {average} ms"


def test_set_link_changes_the_rtt_at_runtime(wan: Wan) -> None:
    wan.set_link("Paris", "Marseille", rtt_ms=60)
    try:
        minimum, average, _ = ping(wan, "Paris", "Marseille", count=3)
        assert minimum >= 60 and average < 60 + MARGIN_MS
    finally:
        wan.set_link("Paris", "Marseille", rtt_ms=10)


def test_partition_cuts_tcp_and_heal_restores_it(wan: Wan, echo_server: tuple[str, int]) -> None:
    address, port = echo_server
    assert probe(wan, "Paris", "connect", address, str(port), "2").returncode == 0
    wan.partition("Paris", "Corte")
    cut = probe(wan, "Paris", "connect", address, str(port), "1")
    assert (cut.returncode, cut.stdout.strip()) == (3, "timeout")
    assert probe(wan, "Marseille", "connect", address, str(port), "2").returncode == 0
    wan.heal()
    assert probe(wan, "Paris", "connect", address, str(port), "2").returncode == 0


def test_isolate_cuts_a_site_from_all_and_heal_one_site(
    wan: Wan, echo_server: tuple[str, int]
) -> None:
    address, port = echo_server
    wan.isolate("Corte")
    for site in ("Paris", "Marseille"):
        assert probe(wan, site, "connect", address, str(port), "1").returncode == 3
    assert ping(wan, "Paris", "Marseille", count=2)[2] == 2
    wan.heal("Corte", "Marseille")
    assert probe(wan, "Marseille", "connect", address, str(port), "2").returncode == 0
    assert probe(wan, "Paris", "connect", address, str(port), "1").returncode == 3


def test_cuts_made_by_another_process_are_seen_and_healed(wan: Wan) -> None:
    Wan.attach(wan.state_dir).partition("Paris", "Marseille")
    assert ping(wan, "Paris", "Marseille", count=2, interval=0.1)[2] == 0
    wan.heal()  # this object's view was stale; heal reads the shared state
    assert ping(wan, "Paris", "Marseille", count=2)[2] == 2


def test_loss_drops_roughly_the_configured_fraction(wan: Wan) -> None:
    wan.set_link("Paris", "Marseille", loss=0.2)
    try:
        _, _, received = ping(wan, "Paris", "Marseille", count=400, interval=0.002)
    finally:
        wan.set_link("Paris", "Marseille", loss=0)
    lost = 1 - received / 400
    # each direction drops 20%, so a round trip is lost with probability 1 - 0.8² = 36%
    assert 0.25 < lost < 0.47, lost


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_delayer_never_blackholes_traffic(
    make_wan: Callable[..., Wan], stop: int
) -> None:
    wan = make_wan()
    assert "NFQUEUE" in _forward_rules(wan)
    assert wan.delayer_pid is not None
    os.kill(wan.delayer_pid, stop)
    deadline = time.monotonic() + 5
    while _alive(wan.delayer_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if stop == signal.SIGTERM:
        assert "NFQUEUE" not in _forward_rules(wan)  # it removes its rule on the way out
    _minimum, average, received = ping(wan, "Paris", "Corte", count=3)
    assert received == 3 and average < 5  # flows, undelayed (SIGKILL: the rule's --queue-bypass)
    gone = wan.delayer_pid
    wan.set_link("Paris", "Corte", rtt_ms=60)  # the next change starts the delayer again
    assert wan.delayer_pid not in (None, gone) and _alive(wan.delayer_pid)
    assert _forward_rules(wan).count("NFQUEUE") == 1  # a killed delayer's rule is not doubled
    minimum, _average, received = ping(wan, "Paris", "Corte", count=3)
    assert received == 3 and minimum >= 60 - 1, minimum  # delayed again
    assert "started" in (wan.state_dir / "delayer.log").read_text()


def test_partition_takes_effect_within_milliseconds(wan: Wan) -> None:
    """Not a performance test: the cut is in force when the call returns."""
    start = time.monotonic()
    wan.partition("Paris", "Marseille")
    assert ping(wan, "Paris", "Marseille", count=1)[2] == 0
    wan.heal()
    assert ping(wan, "Paris", "Marseille", count=1)[2] == 1
    assert time.monotonic() - start < 30


def test_packets_in_flight_when_a_cut_starts_are_lost(wan: Wan) -> None:
    """One-way datagrams held by the delayer when the cut starts never arrive."""
    address = wan.site_address("Corte")
    wan.set_link("Paris", "Corte", rtt_ms=600)  # 300 ms each way
    receiver = subprocess.Popen(
        [*wan.exec_prefix("Corte"), sys.executable, str(PROBE), "udp-recv", address, "7001", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
        assert probe(wan, "Paris", "udp-send", address, "7001", "5").returncode == 0
        wan.partition("Paris", "Corte")  # well before the 300 ms are over
        out, _ = receiver.communicate(timeout=10)
    finally:
        wan.set_link("Paris", "Corte", rtt_ms=20)
    assert out.strip() == "0"


def test_datagrams_arrive_after_the_one_way_delay_without_a_cut(wan: Wan) -> None:
    """The control case of the test above: same datagrams, no cut, all arrive."""
    address = wan.site_address("Corte")
    receiver = subprocess.Popen(
        [*wan.exec_prefix("Corte"), sys.executable, str(PROBE), "udp-recv", address, "7002", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    assert probe(wan, "Paris", "udp-send", address, "7002", "5").returncode == 0
    out, _ = receiver.communicate(timeout=10)
    assert out.strip() == "5"


def test_sigterm_releases_the_packets_the_delayer_holds(make_wan: Callable[..., Wan]) -> None:
    wan = make_wan()
    wan.set_link("Paris", "Corte", rtt_ms=4000)  # 2 s each way: still held when we stop it
    address = wan.site_address("Corte")
    receiver = subprocess.Popen(
        [*wan.exec_prefix("Corte"), sys.executable, str(PROBE), "udp-recv", address, "7003", "1.5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert receiver.stdout is not None and receiver.stdout.readline().strip() == "ready"
    assert probe(wan, "Paris", "udp-send", address, "7003", "5").returncode == 0
    assert wan.delayer_pid is not None
    os.kill(wan.delayer_pid, signal.SIGTERM)
    out, _ = receiver.communicate(timeout=10)
    assert out.strip() == "5"  # released at once, not dropped with the queue


def test_a_site_joins_and_leaves_a_running_wan(make_wan: Callable[..., Wan]) -> None:
    wan = make_wan(load_topology(sites=["Paris", "Corte"]))
    added = wan.add_sites(load_topology(sites=["Paris", "Corte", "Vancouver"]))
    assert added == ["Vancouver"]
    assert wan.names.site("Vancouver") in _namespaces()
    rtt_min, _, received = ping(wan, "Paris", "Vancouver", count=3)
    assert received == 3 and rtt_min >= 300 - MARGIN_MS  # the shipped Paris-Vancouver link
    assert Wan.attach(wan.state_dir).topology.names == ["Paris", "Corte", "Vancouver"]
    wan.partition("Corte", "Vancouver")
    wan.remove_site("Vancouver")
    assert wan.names.site("Vancouver") not in _namespaces()
    assert wan.topology.names == ["Paris", "Corte"] and wan.cuts == frozenset()
    assert ping(wan, "Paris", "Corte", count=2)[2] == 2  # the others are untouched
