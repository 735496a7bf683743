"""Adopting same-named resources of several sites as one set (operators only)."""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import ADOPT_PATH
from edgescope.replicas.adoption import AdoptionError, pick_members

SitesFactory = Any
TINY = {"service": "compute", "collection": "/things", "name": "m1.tiny"}


async def adopt(site: Any, token: str = "an-admin-token", **body: Any) -> tuple[int, Any]:
    async with site.session.post(
        site.proxy.url + ADOPT_PATH, json={**TINY, **body}, headers={"X-Auth-Token": token}
    ) as response:
        return response.status, await response.json()


async def make_flavors(*sites: Any) -> dict[str, str]:
    ids = {}
    for site in sites:
        _, _, body = await site.call(
            "POST",
            "/things",
            f"{{compute: {site.name}}}",
            "compute",
            json={"thing": {"name": "m1.tiny"}},
        )
        ids[site.name] = body["thing"]["id"]
    return ids


async def test_adopted_flavors_are_one_resource_under_and(replica_sites: SitesFactory) -> None:
    paris, corte, marseille = await replica_sites("Paris", "Corte", "Marseille")
    ids = await make_flavors(paris, corte, marseille)
    status, body = await adopt(paris, sites=["Paris", "Corte", "Marseille"])
    assert status == 201, body
    assert body["set"]["handle"] == ids["Paris"]
    assert {m["site"]: m["id"] for m in body["set"]["members"]} == ids
    for site in (paris, corte, marseille):  # the record is at every member
        assert site.replicas.registry.lookup(ids["Corte"]).handle == ids["Paris"]
    assert (await adopt(paris, sites=["Paris", "Corte", "Marseille"]))[0] == 200  # again: no-op

    scope = "{compute: Paris & Corte}"
    status, _, listed = await paris.call("GET", "/things?name=m1.tiny", scope, "compute")
    [item] = listed["things"]
    assert item["id"] == ids["Paris"] and item[ORIGIN_FIELD] == "Paris & Corte"
    status, _, server = await paris.call(
        "POST", "/things", scope, "compute", json={"thing": {"name": "vm", "flavor": item["id"]}}
    )
    assert status == 201, server
    assert [i["flavor"] for i in corte.items.values() if i["name"] == "vm"] == [ids["Corte"]]


async def test_ambiguous_or_missing_names_are_refused(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await make_flavors(paris)
    status, body = await adopt(paris, sites=["Paris", "Corte"])
    assert status == 404 and "no item named 'm1.tiny' at Corte" in body["error"]["message"]
    await make_flavors(corte, corte)
    status, body = await adopt(paris, sites=["Paris", "Corte"])
    assert status == 409 and "2 items named 'm1.tiny' at Corte" in body["error"]["message"]
    assert paris.replicas.registry.sets() == []


@pytest.mark.parametrize(
    ("token", "body", "status", "message"),
    [
        ("", {}, 401, "needs an operator's X-Auth-Token"),
        ("a-member-token", {}, 403, "needs role admin at Paris"),
        ("bad-admin", {}, 403, "needs role admin"),
        ("an-admin-token", {"sites": ["Paris", "Lyon"]}, 400, "unknown sites: Lyon"),
        ("an-admin-token", {"sites": ["Paris"]}, 400, "2 to 64 distinct sites"),
        ("an-admin-token", {"sites": ["Paris", "Corte"], "collection": "x"}, 400, "a path"),
    ],
)
async def test_only_operators_adopt_and_bad_requests_are_clear(
    replica_sites: SitesFactory, token: str, body: dict[str, Any], status: int, message: str
) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await make_flavors(paris, corte)
    got, answer = await adopt(paris, token, **({"sites": ["Paris", "Corte"]} | body))
    assert got == status and message in answer["error"]["message"], answer
    assert paris.replicas.registry.sets() == []


P1, C1 = "aa0000000001", "cc0000000001"


def test_pick_members_is_exact_on_names() -> None:
    answers = [
        (
            "Paris",
            200,
            {"flavors": [{"id": P1, "name": "m1.tiny"}, {"id": "aa0000000002", "name": "m1.tin"}]},
        ),
        ("Corte", 200, {"flavors": [{"id": C1, "name": "m1.tiny"}]}),
    ]
    assert [(m.site, m.id) for m in pick_members("m1.tiny", answers)] == [
        ("Paris", P1),
        ("Corte", C1),
    ]
    short = ("Corte", 200, {"flavors": [{"id": 1, "name": "m1.tiny"}]})  # devstack's own ids
    with pytest.raises(AdoptionError, match=r"'m1\.tiny' at Corte cannot be adopted: '1' is not"):
        pick_members("m1.tiny", [answers[0], short])
    with pytest.raises(AdoptionError, match="Corte answered the list with 401"):
        pick_members("m1.tiny", [answers[0], ("Corte", 401, {"error": {}})])
