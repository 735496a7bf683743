"""``Paris & (Corte | Marseille)``: a create with no answer from Corte is in doubt there, so
the nested ``|`` does not make it at Marseille too (campaign cause D, inside ``&``).

Corte's backend creates after Paris's 5 s read timeout. Strict: the create fails and is
undone everywhere, Corte's late copy by key. Eventual: it is queued for Corte alone (the
same key: applied once there), never for Marseille."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.carriers import MODE_HEADER
from edgescope.proxy.protocol import PENDING_HEADER
from replicas.pair import eventually

SitesFactory = Any
NESTED = "{image: Paris & (Corte | Marseille)}"
LATE_AT_CORTE = {"thing": {"name": "vm", "slow_at": "Corte", "delay": 5.5}}


async def test_a_strict_create_in_doubt_in_a_nested_or_is_undone_not_sent_on(
    replica_sites: SitesFactory,
) -> None:
    paris, corte, marseille = await replica_sites("Paris", "Corte", "Marseille")
    status, _, body = await paris.call("POST", "/things", NESTED, json=LATE_AT_CORTE)
    assert status == 503, body
    message = body["error"]["message"]
    assert "Marseille: unreachable (not tried: the write is in doubt at Corte)" in message
    assert "Corte: no answer, its create to be undone by key" in message
    assert paris.items == {} and marseille.made == []
    registry = paris.replicas.registry
    await eventually(lambda: corte.made and not corte.items and not registry.pending())
    assert marseille.made == [] and registry.sets() == []


async def test_an_eventual_create_in_doubt_in_a_nested_or_is_queued_for_that_site_only(
    replica_sites: SitesFactory,
) -> None:
    paris, corte, marseille = await replica_sites("Paris", "Corte", "Marseille")
    status, headers, body = await paris.call(
        "POST", "/things", NESTED, json=LATE_AT_CORTE, headers={MODE_HEADER: "eventual"}
    )
    assert status == 201, body
    assert headers[PENDING_HEADER] == "Corte"
    registry = paris.replicas.registry
    await eventually(lambda: corte.made and not registry.pending())
    assert len(corte.made) == 1 and len(corte.items) == 1  # the late create, not a second
    assert marseille.made == [] and len(paris.items) == 1
    [replica_set] = registry.sets()
    assert sorted(replica_set.sites) == ["Corte", "Paris"]
