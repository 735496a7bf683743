"""Loopback lifecycle through real proxies: create by ``&``, then use the handle everywhere."""

from __future__ import annotations

from typing import Any

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import SET_HEADER, SITES_HEADER
from edgescope.replicas.collapse import REPLICAS_FIELD
from edgescope.replicas.registry import Registry

SitesFactory = Any
BOTH = "{image: Paris & Corte}"


async def test_create_show_update_delete_by_handle(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    status, headers, body = await paris.call(
        "POST", "/things", BOTH, json={"thing": {"name": "alice"}}
    )
    assert status == 201, body
    handle = body["thing"]["id"]
    assert headers[SET_HEADER] == handle
    [paris_id] = paris.items
    [corte_id] = corte.items
    assert handle == paris_id != corte_id
    for site in (paris, corte):  # the record is at every member site
        record = site.replicas.registry.lookup(corte_id)  # type: ignore[union-attr]
        assert record is not None and record.handle == handle

    status, headers, body = await paris.call("GET", f"/things/{handle}", BOTH)
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200"
    assert ("GET", f"/image/things/{corte_id}") in corte.seen

    status, _, body = await corte.call(  # from the other site, with the handle too
        "PATCH", f"/things/{handle}", BOTH, json={"thing": {"email": "a@x", "ref": handle}}
    )
    assert status == 200, body
    assert paris.items[paris_id]["email"] == corte.items[corte_id]["email"] == "a@x"
    assert paris.items[paris_id]["ref"] == paris_id and corte.items[corte_id]["ref"] == corte_id

    status, _, body = await paris.call("GET", "/things?name=alice", BOTH)
    assert status == 200
    [item] = body["things"]
    assert item["id"] == handle and item[ORIGIN_FIELD] == "Paris & Corte"
    assert item[REPLICAS_FIELD] == {"Paris": paris_id, "Corte": corte_id}

    status, _, _ = await paris.call("DELETE", f"/things/{handle}", BOTH)
    assert status == 204
    assert paris.items == {} and corte.items == {}
    for site in (paris, corte):
        assert site.replicas.registry.lookup(handle) is None  # type: ignore[union-attr]


async def test_non_replicas_stay_separate_with_origins(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    await paris.call("POST", "/things", BOTH, json={"thing": {"name": "alice"}})
    for site in (paris, corte):  # same name, created separately: not replicas
        await site.call(
            "POST", "/things", f"{{image: {site.name}}}", json={"thing": {"name": "bob"}}
        )
    status, _, body = await paris.call("GET", "/things", BOTH)
    assert status == 200
    listed = sorted((i["name"], i[ORIGIN_FIELD]) for i in body["things"])
    assert listed == [("alice", "Paris & Corte"), ("bob", "Corte"), ("bob", "Paris")]


async def test_delete_at_one_site_marks_member_gone(replica_sites: SitesFactory) -> None:
    paris, corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "alice"}})
    handle = body["thing"]["id"]
    status, _, _ = await paris.call("DELETE", f"/things/{handle}", "{image: Corte}")
    assert status == 204 and corte.items == {} and len(paris.items) == 1
    for site in (paris, corte):
        record = site.replicas.registry.lookup(handle)  # type: ignore[union-attr]
        assert record is not None
        assert [(m.site, m.state.value) for m in record.members] == [
            ("Paris", "present"),
            ("Corte", "gone"),
        ]
    reopened = Registry(paris.state_dir)
    try:
        assert reopened.lookup(handle) == paris.replicas.registry.lookup(handle)  # type: ignore[union-attr]
    finally:
        reopened.close()


async def test_one_site_call_by_handle_gets_that_sites_id(replica_sites: SitesFactory) -> None:
    """Like booting at Corte from a replicated image named by its handle."""
    paris, corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "image"}})
    handle = body["thing"]["id"]
    corte_id = next(iter(corte.items))
    status, _, shown = await paris.call("GET", f"/things/{handle}", "{image: Corte}")
    assert status == 200 and shown["thing"]["id"] == corte_id
    status, headers, server = await paris.call(
        "POST", "/things", "{image: Corte}", json={"thing": {"name": "vm", "image": handle}}
    )
    assert status == 201 and server["thing"]["image"] == corte_id
    assert headers[SITES_HEADER] == "Corte=201"  # one engine: a peer's answer names its site
    status, _, server = await corte.call(
        "POST", "/things", "{image: Paris}", json={"thing": {"name": "vm", "image": corte_id}}
    )
    assert status == 201 and server["thing"]["image"] == handle  # Paris's id is the handle


async def test_or_fallback_translates_for_the_site_that_answers(
    replica_sites: SitesFactory,
) -> None:
    """``{image: Paris | Corte}`` from Corte, Paris cut: the fallback to Corte carries
    Corte's ids (path and JSON body), not the handle, which is Paris's id."""
    paris, corte = await replica_sites("Paris", "Corte")
    _, _, body = await paris.call("POST", "/things", BOTH, json={"thing": {"name": "image"}})
    handle = body["thing"]["id"]
    corte_id = next(iter(corte.items))
    assert corte_id != handle
    either = "{image: Paris | Corte}"
    status, _, shown = await corte.call("GET", f"/things/{handle}", either)
    assert status == 200 and shown["thing"]["id"] == handle  # Paris answered, its own id

    await corte.links["Paris"].cut()
    status, headers, shown = await corte.call("GET", f"/things/{handle}", either)
    assert status == 200 and shown["thing"]["id"] == corte_id, shown
    assert "Paris=" in headers[SITES_HEADER] and "Corte=200" in headers[SITES_HEADER]
    status, _, vm = await corte.call(
        "POST", "/things", either, json={"thing": {"name": "vm", "image": handle}}
    )
    assert status == 201 and vm["thing"]["image"] == corte_id
    assert ("GET", f"/image/things/{handle}") not in corte.seen  # never asked by Paris's id
