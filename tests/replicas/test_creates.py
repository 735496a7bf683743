"""A POST to a collection is a create, even when its body names replica sets (issue 10)."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import SET_HEADER

SitesFactory = Any
BOTH = "{compute: Paris & Corte}"


async def test_a_create_that_references_a_set_makes_a_new_set(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    _, headers, body = await paris.call(
        "POST", "/things", BOTH, "compute", json={"thing": {"name": "m1.tiny"}}
    )
    flavor = headers[SET_HEADER]
    paris_flavor, corte_flavor = next(iter(paris.items)), next(iter(corte.items))

    status, headers, body = await paris.call(
        "POST", "/things", BOTH, "compute", json={"thing": {"name": "vm", "flavor": flavor}}
    )
    assert status == 201, body
    server = headers[SET_HEADER]
    assert server != flavor and body["thing"]["id"] == server
    [p_vm] = [i for i in paris.items.values() if i["name"] == "vm"]
    [c_vm] = [i for i in corte.items.values() if i["name"] == "vm"]
    assert (p_vm["flavor"], c_vm["flavor"]) == (paris_flavor, corte_flavor)
    record = corte.replicas.registry.lookup(c_vm["id"])
    assert record is not None and record.handle == server == p_vm["id"]

    status, _, body = await paris.call("GET", "/things?name=vm", BOTH, "compute")
    [item] = body["things"]
    assert item["id"] == server and item[ORIGIN_FIELD] == "Paris & Corte"
    status, _, _ = await corte.call("DELETE", f"/things/{server}", BOTH, "compute")
    assert status == 204
    assert [i["name"] for i in paris.items.values()] == ["m1.tiny"]
    assert [i["name"] for i in corte.items.values()] == ["m1.tiny"]
    assert paris.replicas.registry.lookup(server) is None
    assert paris.replicas.registry.lookup(flavor) is not None  # the flavor set is untouched


async def test_another_services_ids_take_the_site_the_scope_names_for_it(
    replica_sites: SitesFactory,
) -> None:
    """nova's body names an image: each branch gets the image id of the site the scope
    names for images (its own when none), and an image '|' is left to the image hop."""
    paris, corte = await replica_sites("Paris", "Corte")
    _, headers, _ = await paris.call(
        "POST", "/things", "{image: Paris & Corte}", json={"thing": {"name": "debian"}}
    )
    image = headers[SET_HEADER]
    corte_image = next(iter(corte.items))
    cases = {
        "{compute: Corte}": corte_image,  # images stay local to the branch: Corte's
        "{compute: Corte, image: Paris}": image,  # Paris's id is the handle
        "{compute: Paris, image: Corte}": corte_image,
        "{compute: Corte, image: Paris | Corte}": image,  # as sent: the image hop decides
    }
    for scope, expected in cases.items():
        status, _, body = await paris.call(
            "POST", "/things", scope, "compute", json={"thing": {"image": image}}
        )
        assert status == 201 and body["thing"]["image"] == expected, scope
    status, _, body = await paris.call("GET", f"/things/{image}", "{image: Corte}")
    assert status == 200 and body["thing"]["id"] == corte_image
