"""A create taken over in doubt finds what the dead proxy made instead of making it again
(campaign cause B: a member's proxy SIGKILLed while its backend applied a create; the next
proxy took the claim over and the origin's replay created a second copy).

The dead proxy is played by its leftovers: an expired ``applying`` claim of the write's key
in Corte's registry, and the item it made in Corte's backend (a real loopback app).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from replicas.pair import BOTH, EVENTUAL, eventually

SitesFactory = Any


async def queued_create_for_corte(paris: Any, corte: Any, name: str) -> str:
    """An eventual create at Paris with Corte cut: its key queued for Corte."""
    await paris.links["Corte"].cut()
    status, _, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": name}}, headers=EVENTUAL
    )
    assert status == 201, body
    [op] = paris.replicas.registry.pending("Corte")
    return op.key


def dead_proxy_made(corte: Any, key: str, *names: str) -> None:
    """Corte's proxy died applying ``key``: its claim is left (expired), its backend holds
    what it made."""
    registry = corte.replicas.registry
    assert registry.claim_apply(key, "Corte/dead/1/aaaaaa", 0).state.value == "mine"
    for i, name in enumerate(names):
        corte.items[f"{i}ade0fad0"] = {"name": name, "id": f"{i}ade0fad0"}


async def test_the_replay_of_an_in_doubt_create_adopts_what_was_made(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    key = await queued_create_for_corte(paris, corte, "vm")
    dead_proxy_made(corte, key, "vm")
    await asyncio.sleep(0.01)  # the claim's time (0 s) is past
    await paris.links["Corte"].heal()
    registry = paris.replicas.registry

    def corte_member() -> str | None:
        [replica_set] = registry.sets()
        return replica_set.member("Corte").id  # type: ignore[union-attr]

    await eventually(lambda: not registry.pending() and corte_member() is not None)
    assert corte_member() == "0ade0fad0"
    assert list(corte.items) == ["0ade0fad0"]
    assert not [p for m, p in corte.seen if m == "POST"]


async def test_an_in_doubt_create_with_two_candidates_makes_none(
    replica_sites: SitesFactory,
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    key = await queued_create_for_corte(paris, corte, "vm")
    dead_proxy_made(corte, key, "vm", "vm")
    await asyncio.sleep(0.01)
    await paris.links["Corte"].heal()
    await eventually(lambda: not paris.replicas.registry.pending())
    assert sorted(corte.items) == ["0ade0fad0", "1ade0fad0"]  # left for the operator, none added
    assert not [p for m, p in corte.seen if m == "POST"]
    [op] = [p for p in paris.replicas.registry.pending(include_done=True) if p.key == key]
    assert op.state == "failed" and "Create In Doubt" in op.last_error


@pytest.mark.parametrize("answer", [503, 401])
async def test_an_in_doubt_create_whose_lookup_cannot_tell_is_kept_in_doubt(
    replica_sites: SitesFactory, answer: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Corte's listing by name answers ``answer`` twice (glance restarting, a token refused):
    that is not "absent". The write stays in doubt, is retried, and adopts what the dead
    proxy made once the listing answers; nothing is created again (a 30-minute campaign of
    2026-12-07 made an image twice so, then lost its delete)."""
    paris, corte = await replica_sites("Paris", "Corte")
    key = await queued_create_for_corte(paris, corte, "vm")
    dead_proxy_made(corte, key, "vm")
    corte.listing_answers.extend([answer, answer])
    await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, logger="edgescope.replicas"):
        await paris.links["Corte"].heal()
        registry = paris.replicas.registry
        # the op is finished before its set records the member: wait for both
        await eventually(
            lambda: (
                not registry.pending()
                and not corte.listing_answers
                and all(m.id for s in registry.sets() for m in s.members)
            )
        )
    [replica_set] = registry.sets()
    assert replica_set.member("Corte").id == "0ade0fad0"  # type: ignore[union-attr]
    assert list(corte.items) == ["0ade0fad0"]
    assert not [p for m, p in corte.seen if m == "POST"]
    assert f"its lookup got {answer}" in caplog.text  # which answer it got is logged
