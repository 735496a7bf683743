"""A remembered scope that was forgotten is a clear error, never a local route.

The proxy remembers each scoped call's scope under an id it mints, so the services' own
follow-up calls (nova -> glance, Swift's backends), which carry only that id or its handle,
get the same scope. The memory is bounded: a flood of scoped calls can make it forget an
entry. The ids are self-describing (a MAC under the proxy process's own key), so the proxy
knows an id it issued from any other: one it issued and forgot gets a 503
"Remembered Scope Forgotten"; an id it never issued stays local (test_handle_carrier.py).
"""

from __future__ import annotations

from typing import Any

import pytest
from tests.proxy.conftest import SitesFactory

from edgescope.proxy.carriers import (
    CorrelationIds,
    HandleCarrier,
    ScopeForgotten,
    ScopeMemory,
    handle_of,
    new_correlation_id,
    read_scope_text,
)

TRANS = [{"read": "X-Trans-Id", "write": "X-Trans-Id-Extra", "services": ["compute"]}]


def test_an_id_says_which_proxy_minted_it() -> None:
    ours, theirs = CorrelationIds(b"a" * 32), CorrelationIds(b"b" * 32)
    rid = ours.mint()
    assert ours.issued(rid) and not theirs.issued(rid)
    assert not ours.issued(new_correlation_id())  # random version-8 ids: not ours
    assert CorrelationIds(b"a" * 32).issued(rid)  # the same key after a restart: still ours
    assert not ours.issued("req-not-an-id") and not ours.issued(rid.upper())


def test_a_forgotten_id_of_this_proxy_raises_and_an_unknown_one_is_nothing() -> None:
    memory = ScopeMemory(capacity=2, ids=CorrelationIds(b"k" * 32))
    victim = memory.mint()
    memory.remember(victim, "{image: Corte}", owner="victim")
    for _ in range(4):
        memory.remember(memory.mint(), "{image: Paris}", owner="flooder")
    assert victim in memory  # the flooder's own entries went first
    for _ in range(4):
        memory.remember(memory.mint(), "{image: Paris}", owner=f"other-{_}")
    assert victim not in memory
    swift = HandleCarrier("X-Trans-Id", "X-Trans-Id-Extra")
    for headers in ({"X-OpenStack-Request-ID": victim}, {"X-Trans-Id": f"tx-{handle_of(victim)}"}):
        with pytest.raises(ScopeForgotten, match=victim) as caught:
            read_scope_text(headers, 4096, memory, (swift,))
        assert caught.value.answer()[:2] == (503, "Remembered Scope Forgotten")
    stranger = new_correlation_id()
    for headers in ({"X-OpenStack-Request-ID": stranger}, {"X-Trans-Id": handle_of(stranger)}):
        assert read_scope_text(headers, 4096, memory, (swift,)) is None


def test_an_id_forgotten_past_the_horizon_is_a_late_replay_served_locally() -> None:
    """Swift's object-updater replays an update hours later with its transaction id: as
    before, local (docs/genericity.md), and counted."""
    now = [1_000_000.0]
    memory = ScopeMemory(capacity=1, ids=CorrelationIds(b"k" * 32, lambda: now[0]), horizon=600)
    old = memory.mint()
    memory.remember(old, "{image: Corte}")
    memory.remember(memory.mint(), "{image: Paris}")
    now[0] += 300
    with pytest.raises(ScopeForgotten, match="5 min ago"):
        memory.check_not_forgotten(old)
    now[0] += 360
    memory.check_not_forgotten(old)
    assert memory.late == 1


def test_the_largest_owner_is_evicted_first_when_the_memory_is_full() -> None:
    memory = ScopeMemory(capacity=6, per_owner=4)
    memory.remember("req-v", "{image: Corte}", owner="victim")
    for i in range(3):
        memory.remember(f"req-a{i}", "{image: Paris}", owner="a")
        memory.remember(f"req-b{i}", "{image: Paris}", owner="b")
    # full at 7 entries: the victim's single (and oldest) entry stays, a's oldest goes
    assert "req-v" in memory and "req-a0" not in memory and len(memory) == 6


async def _victim_then_flood(sites: SitesFactory, flood_headers: dict[str, str]) -> Any:
    paris, corte = await sites("Paris", "Corte", carriers=TRANS, limits={"scope_memory": 32})
    victim = {"X-Scope": "{image: Corte}", "X-Auth-Token": "victim-token"}
    status, _, body = await paris.get("/compute/echo", headers=victim)
    assert status == 200
    handle = body["headers"]["X-Trans-Id-Extra"]
    rid = body["headers"]["X-OpenStack-Request-ID"]
    for i in range(80):  # each a distinct scoped call, each remembered
        status, _, _ = await paris.get(
            f"/compute/echo/{i}", headers={"X-Scope": "{image: Paris}", **flood_headers}
        )
        assert status == 200
    return paris, corte, handle, rid


async def test_a_flood_with_its_own_token_does_not_evict_another_clients_scope(
    sites: SitesFactory,
) -> None:
    """Behind HAProxy every client has one address: the token separates their shares."""
    paris, _, handle, _ = await _victim_then_flood(sites, {"X-Auth-Token": "flooder"})
    status, _, body = await paris.get("/image/echo", headers={"X-Trans-Id": f"tx-{handle}"})
    assert status == 200 and body["site"] == "Corte"


async def test_a_carried_call_whose_scope_was_evicted_gets_a_503_not_a_local_route(
    sites: SitesFactory,
) -> None:
    """The same client's flood (one token) evicts its own entry: the later internal call
    carrying its handle or id is refused clearly, and never reaches the local backend."""
    paris, corte, handle, rid = await _victim_then_flood(sites, {"X-Auth-Token": "victim-token"})
    before = len(paris.seen)
    for headers in ({"X-Trans-Id": f"tx-{handle}"}, {"X-OpenStack-Request-ID": rid}):
        status, _, body = await paris.get("/image/echo", headers=headers)
        assert status == 503, body
        assert body["error"]["title"] == "Remembered Scope Forgotten"
        assert rid in body["error"]["message"]
    assert len(paris.seen) == before  # no silent local route
    # an id this proxy never issued is still nobody's scope: local, as designed
    status, _, body = await paris.get(
        "/image/echo", headers={"X-Trans-Id": f"tx-{handle_of(new_correlation_id())}"}
    )
    assert status == 200 and body["site"] == "Paris"
    # and Corte did not issue Paris's ids: to Corte the handle is unknown, not forgotten
    assert not corte.proxy.memory.issued(rid)


async def test_an_id_minted_by_another_proxy_of_the_same_site_is_unknown_not_forgotten(
    sites: SitesFactory,
) -> None:
    """Two proxies of one site (same signing key: several behind one front, or the loopback
    testbed's replica tests beside the testbed's own): nova's follow-up call carrying an id
    the other one minted reaches this one. It is no scope here, as before: local, never a
    503 (the CI run of 2026-12-07 failed a boot with NoValidHost when placement got one)."""
    (first,) = await sites("Paris")
    (second,) = await sites("Paris")
    status, _, body = await first.get(
        "/compute/echo", headers={"X-Scope": "{compute: Paris, image: Paris}"}
    )
    assert status == 200
    rid = body["headers"]["X-OpenStack-Request-ID"]
    assert first.proxy.memory.issued(rid) and not second.proxy.memory.issued(rid)
    status, _, body = await second.get("/image/echo", headers={"X-OpenStack-Request-ID": rid})
    assert status == 200 and body["site"] == "Paris", body
