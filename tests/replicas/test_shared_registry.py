"""Several proxies of one site share one registry database: what one writes, all see; what
one claims, no other gets. On SQLite (one host) and on a real MariaDB server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

import edgescope.replicas.registry as registry_module
from edgescope.errors import ConfigError
from edgescope.replicas.model import Hlc, PendingOp, ReplicaSet
from edgescope.replicas.registry import ClaimState, Registry
from replicas.pair import ALICE


@pytest.fixture
def two(location: str) -> Iterator[tuple[Registry, Registry]]:
    """The registries of two proxies of one site."""
    first, second = Registry(location), Registry(location)
    yield first, second
    first.close()
    second.close()


def test_a_set_one_proxy_records_reaches_the_others_index(two: tuple[Registry, Registry]) -> None:
    one, other = two
    assert one.put_set(ALICE)
    assert other.lookup("cc0000000001") is None  # its index has not synced yet...
    assert other.fresh("aa0000000001") == ALICE  # ...but the database has it
    assert other.lookup("cc0000000001") == ALICE
    one.delete_set("aa0000000001")
    assert other.sync() == 1
    assert other.lookup("cc0000000001") is None and other.sets() == []
    newer = ReplicaSet("aa0000000001", "identity", "/v3/users", ALICE.members, Hlc(30, 0, "P"))
    assert other.put_set(newer)  # a set recreated after a delete (a late record push)
    assert one.sync() == 1 and one.lookup("aa0000000001") == newer
    assert not one.put_set(ALICE)  # older than what the other proxy stored
    assert one.lookup("aa0000000001") == newer


def test_queue_and_applied_keys_are_shared(two: tuple[Registry, Registry]) -> None:
    one, other = two
    op = PendingOp(
        "k1:Corte",
        "aa0000000001",
        "Corte",
        "identity",
        "PATCH",
        "/v3/users/aa0000000001",
        b"{}",
        {},
        Hlc(1, 0, "P"),
    )
    assert one.enqueue(op) == other.enqueue(op)  # queued once, whoever queues it again
    assert [p.key for p in other.pending("Corte")] == ["k1:Corte"]
    one.record_applied("k2:Paris", 201, b'{"id": "x"}', {"Location": "/x"})
    claim = other.claim_apply("k2:Paris", "other", 5.0)
    assert claim.state is ClaimState.DONE
    assert claim.answer == (201, b'{"id": "x"}', {"Location": "/x"})


def test_a_key_is_claimed_by_one_proxy_then_answered_to_all(
    two: tuple[Registry, Registry],
) -> None:
    one, other = two
    assert one.claim_apply("k", "one", 5.0).state is ClaimState.MINE
    assert other.claim_apply("k", "other", 5.0).state is ClaimState.BUSY
    one.complete_apply("k", "one", 201, b"answer", {})
    claim = other.claim_apply("k", "other", 5.0)
    assert claim.state is ClaimState.DONE and claim.answer == (201, b"answer", {})


def test_a_claim_released_or_expired_passes_to_another_proxy(
    two: tuple[Registry, Registry],
) -> None:
    one, other = two
    assert one.claim_apply("k", "one", 5.0).state is ClaimState.MINE
    one.release_apply("k", "one")  # the write failed: a retry may apply it
    assert other.claim_apply("k", "other", 0.2).state is ClaimState.MINE
    time.sleep(0.3)  # "other" died while applying
    taken = one.claim_apply("k", "one", 5.0)
    assert taken.state is ClaimState.MINE and taken.taken_over
    one.complete_apply("k", "other", 500, b"", {})  # the dead owner's late write changes nothing
    assert one.applied("k") is None


def test_leases_are_exclusive_until_they_expire(
    two: tuple[Registry, Registry], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registry's clock is stepped by hand: a lease cannot expire between two statements
    of the test however slow the machine is (a 0.3 s lease on the wall clock once did)."""
    clock = [1_000_000.0]
    monkeypatch.setattr(registry_module, "time", SimpleNamespace(time=lambda: clock[0]))
    one, other = two
    assert one.acquire("replay:Corte", "one", 0.3)
    assert not other.acquire("replay:Corte", "other", 5.0)
    assert one.acquire("replay:Corte", "one", 0.3)  # renewed by its holder
    assert other.holder("replay:Corte") == "one"
    clock[0] += 0.29
    assert not other.acquire("replay:Corte", "other", 5.0)  # not expired yet
    clock[0] += 0.02
    assert other.acquire("replay:Corte", "other", 5.0)  # expired: taken over
    assert not one.acquire("replay:Corte", "one", 5.0)
    other.release("replay:Corte", "other")
    assert one.acquire("replay:Corte", "one", 5.0)


def test_of_many_proxies_racing_for_one_key_exactly_one_wins(location: str) -> None:
    registries = [Registry(location) for _ in range(6)]
    start = threading.Barrier(len(registries))
    won: list[str] = []

    def race(index: int) -> None:
        start.wait()
        for round_ in range(20):
            claim = registries[index].claim_apply(f"key-{round_}", f"p{index}", 30.0)
            if claim.state is ClaimState.MINE:
                won.append(f"key-{round_}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(len(registries))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for registry in registries:
        registry.close()
    assert sorted(won) == sorted(f"key-{r}" for r in range(20))  # each key won exactly once


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("://secret@nowhere", "not a database URL"),
        ("mysql+pymysql://u:secret@h:port/db", "not a database URL"),
        ("postgresql://u:secret@h/db", "unsupported back end 'postgresql'"),
        ("mysql+nosuchdriver://u:secret@h/db", "nosuchdriver"),
    ],
)
def test_a_bad_database_url_is_a_clear_error_without_the_password(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        Registry(url)
    assert "secret" not in str(caught.value)
