"""Merged lists: one item per replica set, every other item kept with its origin."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.replicas.collapse import REPLICAS_FIELD, collapse_collection, collapse_items
from edgescope.replicas.model import Member, MemberState, ReplicaSet

SITES = ["Paris", "Corte", "Nice"]
SETS = [
    ReplicaSet("p1", "image", "/v2/images", (Member("Paris", "p1"), Member("Corte", "c1"))),
    ReplicaSet(
        "p2",
        "image",
        "/v2/images",
        (Member("Paris", "p2"), Member("Corte", "c2"), Member("Nice", "n2", MemberState.GONE)),
    ),
]
INDEX = {id_: s for s in SETS for id_ in s.ids}


def is_member(item: dict[str, Any]) -> bool:
    s = INDEX.get(item["id"])
    return s is not None and s.member_id(item[ORIGIN_FIELD]) == item["id"]


items = st.lists(
    st.fixed_dictionaries(
        {
            "id": st.sampled_from(["p1", "c1", "p2", "c2", "n2", "x", "y"]),
            ORIGIN_FIELD: st.sampled_from(SITES),
            "name": st.sampled_from(["alice", "bob"]),
        }
    ),
    max_size=12,
)


@given(items)
def test_collapse_never_loses_a_non_replica_item(listed: list[dict[str, Any]]) -> None:
    out = collapse_items(listed, INDEX.get)
    others = [i for i in listed if not is_member(i)]
    assert [i for i in out if REPLICAS_FIELD not in i] == others
    handles = {INDEX[i["id"]].handle for i in listed if is_member(i)}
    collapsed = [i for i in out if REPLICAS_FIELD in i]
    assert sorted(i["id"] for i in collapsed) == sorted(handles)
    for item in collapsed:
        replica_set = INDEX[item["id"]]
        for site, id_ in item[REPLICAS_FIELD].items():
            assert replica_set.member_id(site) == id_


def test_members_collapse_into_the_handle_with_member_sites() -> None:
    doc = {
        "images": [
            {"id": "c1", ORIGIN_FIELD: "Corte", "name": "cirros"},
            {"id": "x", ORIGIN_FIELD: "Paris", "name": "cirros"},
            {"id": "p1", ORIGIN_FIELD: "Paris", "name": "cirros"},
            {"id": "n2", ORIGIN_FIELD: "Nice", "name": "gone-member-stays-separate"},
        ],
        "first": "/v2/images",
    }
    out = collapse_collection(doc, INDEX.get)
    assert out["first"] == "/v2/images"
    assert out["images"] == [
        {
            "id": "p1",
            ORIGIN_FIELD: "Corte & Paris",
            "name": "cirros",
            REPLICAS_FIELD: {"Corte": "c1", "Paris": "p1"},
        },
        {"id": "x", ORIGIN_FIELD: "Paris", "name": "cirros"},
        {"id": "n2", ORIGIN_FIELD: "Nice", "name": "gone-member-stays-separate"},
    ]
    assert doc["images"][0]["id"] == "c1"  # the input is not modified


def test_an_id_from_a_foreign_site_is_not_a_member() -> None:
    listed = [{"id": "p1", ORIGIN_FIELD: "Corte"}]  # Corte's p1 is some other resource
    assert collapse_items(listed, INDEX.get) == listed
