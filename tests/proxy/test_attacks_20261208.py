"""Loopback attacks on the changes of 2026-12-07/08 (the handshake RTT at the address the
pool resolved, raced fresh connects): real proxies, real sockets, a peer's DNS played by a
lying resolver in-test. docs/attacks/20261208.md says what each pins."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from keystone_undo import queue_keystone_undo
from tests.proxy.conftest import SitesFactory

from edgescope.aio import spawn
from edgescope.proxy.call import BranchReply
from edgescope.proxy.protocol import SITES_HEADER, UNDO_OF_HEADER
from edgescope.proxy.resolver import DNS_THREADS
from edgescope.replicas.model import PendingOp


async def test_the_handshake_goes_where_the_probe_went_even_when_dns_answers_apart(
    sites: SitesFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A peer named by a host name in its own zone answers its real address to the lookup
    that opens the probe's pooled connection, and a near address to any later lookup (the
    fresh connection of a watch, a second pooled one). The probe then goes, on its kept
    connection, to the real peer: its handshake must too, not to where the last lookup
    pointed (a near listener: the peer would enter every around())."""
    (corte,) = await sites("Corte")
    port = int(corte.url.rsplit(":", 1)[1])
    near_host = "127.0.0.2"
    with socket.socket() as near:  # a listener near the measurer, on the peer's port
        near.bind((near_host, port))
        near.listen(16)
        (paris,) = await sites(
            "Paris", extra_peers={"Paris": {"Corte": {"url": f"http://corte.test:{port}"}}}
        )
        loop = asyncio.get_running_loop()
        real_lookup, real_connect = socket.getaddrinfo, loop.sock_connect
        answer = {"address": "127.0.0.1"}
        connected: list[str] = []

        def peer_dns(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "corte.test":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answer["address"], port))]
            return real_lookup(host, port, *args, **kwargs)

        async def recording(sock: socket.socket, address: Any) -> None:
            connected.append(address[0])
            await real_connect(sock, address)

        monkeypatch.setattr(socket, "getaddrinfo", peer_dns)
        monkeypatch.setattr(loop, "sock_connect", recording)
        prober = paris.proxy.prober
        assert await prober.probe("Corte")  # the pooled connection: to the real peer
        answer["address"] = near_host  # from now on the peer's DNS points near the measurer
        assert not await prober.probe("Corte", watch=True)  # a fresh lookup: the near host
        connected.clear()
        assert await prober.probe("Corte")  # the kept connection: the real peer again
        assert near_host not in connected, connected


@dataclass
class StalledDns:
    """Lookups of ``*.stall.test`` hang until ``release`` is set (a peer's name servers that
    never answer); ``most``: the most of them in flight at once."""

    release: threading.Event = field(default_factory=threading.Event)
    in_flight: int = 0
    most: int = 0


@pytest.fixture
def stalled_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[StalledDns]:
    stalled, lock, real = StalledDns(), threading.Lock(), socket.getaddrinfo

    def lookup(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not (isinstance(host, str) and host.endswith(".stall.test")):
            return real(host, *args, **kwargs)
        with lock:
            stalled.in_flight += 1
            stalled.most = max(stalled.most, stalled.in_flight)
        stalled.release.wait(60)
        with lock:
            stalled.in_flight -= 1
        raise socket.gaierror(socket.EAI_AGAIN, "no answer")

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    yield stalled
    stalled.release.set()


async def test_peers_whose_dns_never_answers_do_not_starve_the_proxys_threads(
    sites: SitesFactory, stalled_dns: StalledDns
) -> None:
    """Peers named in zones whose name servers stall (hostile, or just down): each lookup
    holds a thread until the system resolver gives up. They took the loop's default
    executor (6 threads on 2 cores), where an ``&`` call's merge runs: with 8 such peers
    called, Paris & Corte never answered. Lookups now hold threads of their own, bounded,
    one per name whoever asks (calls, probes, watches)."""
    stalled = {f"Stall{i}": {"url": f"http://site{i}.stall.test:5000"} for i in range(20)}
    paris, _ = await sites("Paris", "Corte", extra_peers={"Paris": stalled})
    calls = [
        spawn(paris.get("/image/echo", headers={"X-Scope": f"{{image: {name}}}"}))
        for name in stalled
        for _ in range(3)
    ]
    await asyncio.sleep(0.5)  # the lookups have started
    for name in stalled:  # and each stalled peer is watched too (fresh connections)
        paris.proxy.peers.breaker(name).record_failure(now=0.0, reason="timed out")
    status, headers, _ = await asyncio.wait_for(
        paris.get("/image/items", headers={"X-Scope": "{image: Paris & Corte}"}), 30
    )
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200"
    assert 0 < stalled_dns.most <= DNS_THREADS
    for call in calls:
        call.cancel()


@pytest.mark.parametrize("token", ["paris-member-token", "bad-token"])
async def test_an_undo_by_key_with_a_token_not_delegated_deletes_nothing(
    sites: SitesFactory, tmp_path: Path, token: str
) -> None:
    """Holds: a signed peer's undo by key at Keystone acts with the site's acting token only
    once delegation admitted the token it presents (here a Paris member's, or one Paris's
    Keystone does not know): the acting token is no confused deputy for a peer that
    learned a create's key."""
    paris, corte = await sites(
        "Paris", "Corte", identity=True, replicas_dir=tmp_path, delegate_roles={"Corte": ["admin"]}
    )
    await queue_keystone_undo(paris, corte, token, "paris")
    await paris.replicas.replayer.replay_once()
    judged = paris.backend_hits("/identity/v3/auth/tokens?nocatalog")  # Corte asked Paris
    assert [c["headers"]["X-Subject-Token"] for c in judged] == [token]
    assert not [hit for hit in corte.seen if hit.get("method") == "DELETE"]


async def test_an_undo_whose_delete_is_refused_for_good_does_not_hold_the_queue_for_ever(
    sites: SitesFactory, tmp_path: Path
) -> None:
    """A failed strict create's undo by key is queued for a member that gave no answer. The
    member answered its backend's 400/409 (a volume still 'creating') as 503, retried
    later: but a resource its owner makes undeletable for good (a volume attached, a server
    locked) answers 400/409 for ever, and the undo was retried for ever (a DELETE each
    round; before F5, first in the member's queue, it held every later write queued for
    the member, everyone's). The wait now ends: past ``Claims.undo_patience`` after the
    create, a 400/409 is the undo's answer."""
    paris, corte = await sites("Paris", "Corte", replicas_dir=tmp_path)
    guard = corte.replicas.parts.guard
    key = "0123abcd4567:Corte"

    async def made() -> BranchReply:  # Corte made "409": its DELETE is refused for good
        body = json.dumps({"item": {"id": "409"}}).encode()
        return BranchReply("Corte", 201, {"Content-Type": "application/json"}, body)

    assert (await guard.guarded_write(None, guard.clock.now(), key, made)).status == 201

    def op(key: str, method: str, path: str, undo_of: str | None = None) -> PendingOp:
        headers = {"X-Auth-Token": "someone", "X-Scope": "{image: Corte}"}
        return PendingOp(
            key=key,
            handle=None,
            target="Corte",
            service="image",
            method=method,
            path=path,
            body=b"",
            headers=headers | ({UNDO_OF_HEADER: undo_of} if undo_of else {}),
            hlc=guard.clock.now(),
        )

    registry = paris.replicas.registry
    registry.enqueue(op("0123abcd4567:undo:Corte", "DELETE", "/status", key), "alice")
    registry.enqueue(op("89ab:Corte", "PUT", "/echo/bob"), "bob")  # another user's write
    await paris.replicas.replayer.replay_once()  # a volume still being made: retried later
    [undo] = registry.pending("Corte")  # bob's write went on (F5)
    assert undo.key == "0123abcd4567:undo:Corte" and undo.attempts == 1
    guard.claims = replace(guard.claims, undo_patience=0.0)  # as if long after the create
    await paris.replicas.replayer.replay_once()
    assert registry.pending("Corte") == []
    assert [hit["path"] for hit in corte.seen if hit.get("method") == "PUT"] == ["/image/echo/bob"]


async def test_a_write_a_member_refuses_for_good_holds_only_its_own_set(
    sites: SitesFactory, tmp_path: Path
) -> None:
    """A client's eventual write queued for a member that was down, which the member's
    backend answers 500 for good once it is back (a request that trips a bug there): the
    replayer stopped the member's whole queue at any 5xx, so that write held every later
    write queued for the member, everyone's, for ever. Order is kept per replica set (or
    path) only: another user's write goes on; the refused one is retried later."""
    paris, _ = await sites("Paris", "Corte", replicas_dir=tmp_path)
    clock = paris.replicas.parts.clock

    def op(key: str, path: str, handle: str | None = None) -> PendingOp:
        return PendingOp(
            key=key,
            handle=handle,
            target="Corte",
            service="image",
            method="PUT",
            path=path,
            body=b"",
            headers={"X-Auth-Token": key, "X-Scope": "{image: Corte}"},
            hlc=clock.now(),
        )

    registry = paris.replicas.registry
    registry.enqueue(op("alice-1:Corte", "/status/500"), "alice")  # 500 for good
    registry.enqueue(op("alice-2:Corte", "/status/500"), "alice")  # same path: waits behind
    registry.enqueue(op("bob-1:Corte", "/status/201"), "bob")  # another user's write
    for _ in range(2):
        await paris.replicas.replayer.replay_once()
    pending = registry.pending("Corte")
    assert [p.key for p in pending] == ["alice-1:Corte", "alice-2:Corte"]
    assert [p.attempts for p in pending] == [2, 0]  # retried; the one behind it never sent
