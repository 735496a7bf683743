"""Translation of handles and member ids into each branch's ids (paths, queries, JSON)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from edgescope.replicas.model import Member, MemberState, ReplicaSet
from edgescope.replicas.translate import (
    candidates,
    translate_json,
    translate_path,
    translate_request,
    translation_table,
)

ALICE = ReplicaSet(
    "p-alice", "identity", "/v3/users", (Member("Paris", "p-alice"), Member("Corte", "c-alice"))
)
BOB = ReplicaSet(
    "p-bob",
    "identity",
    "/v3/users",
    (Member("Paris", "p-bob"), Member("Corte", "c-bob", MemberState.GONE)),
)
IDS = ["p-alice", "c-alice", "p-bob", "c-bob"]
OTHER = st.text("abcxyz-", min_size=1, max_size=6)
leaf = st.sampled_from(IDS) | OTHER | st.integers() | st.booleans() | st.none()
docs = st.recursive(
    leaf,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(OTHER, inner, max_size=4),
    max_leaves=25,
)


def strings(doc: Any) -> list[str]:
    if isinstance(doc, str):
        return [doc]
    if isinstance(doc, dict):
        return [s for v in doc.values() for s in strings(v)]
    if isinstance(doc, list):
        return [s for v in doc for s in strings(v)]
    return []


def test_table_maps_every_id_to_the_sites_live_member() -> None:
    assert translation_table([ALICE, BOB], "Corte") == {"p-alice": "c-alice", "c-alice": "c-alice"}
    assert translation_table([ALICE, BOB], "Paris") == {
        "p-alice": "p-alice",
        "c-alice": "p-alice",
        "p-bob": "p-bob",
        "c-bob": "p-bob",
    }
    assert translation_table([ALICE], "Marseille") == {}


def test_paths_and_queries_translate_whole_segments_only() -> None:
    table = translation_table([ALICE], "Corte")
    assert translate_path("/v3/users/p-alice/groups", table) == "/v3/users/c-alice/groups"
    assert translate_path("/v3/users/p-alice-x", table) == "/v3/users/p-alice-x"
    assert translate_path("/v3/users?id=p-alice&name=p", table) == "/v3/users?id=c-alice&name=p"
    assert translate_path("/v3/users?flag", table) == "/v3/users?flag"


@given(docs)
def test_json_translation_reaches_every_value_and_keeps_the_rest(doc: Any) -> None:
    for site in ("Paris", "Corte"):
        table = translation_table([ALICE], site)
        out = translate_json(doc, table)
        before, after = strings(doc), strings(out)
        assert len(before) == len(after)
        for old, new in zip(before, after, strict=True):
            assert new == table.get(old, old)
        assert json.dumps(doc, sort_keys=True).count(":") == json.dumps(out, sort_keys=True).count(
            ":"
        )  # same shape (keys are never rewritten)


@given(docs)
def test_translation_round_trips_between_sites(doc: Any) -> None:
    to_corte = translate_json(doc, translation_table([ALICE], "Corte"))
    back = translate_json(to_corte, translation_table([ALICE], "Paris"))
    assert back == translate_json(doc, translation_table([ALICE], "Paris"))


def test_request_body_only_rewritten_when_an_id_is_present() -> None:
    table = translation_table([ALICE], "Corte")
    body = b'{"user": {"id": "p-alice", "name": "alice"}}'
    path, out = translate_request("/v3/users/p-alice", body, table)
    assert path == "/v3/users/c-alice" and json.loads(out or b"") == {
        "user": {"id": "c-alice", "name": "alice"}
    }
    untouched = b'{"user": {"name": "bob"}}'
    assert translate_request("/v3/users", untouched, table)[1] is untouched
    assert translate_request("/x", b"\x00not json", table)[1] == b"\x00not json"


def test_deep_nesting_is_walked_without_recursion() -> None:
    doc: Any = "p-alice"
    for _ in range(50_000):
        doc = [doc]
    out = translate_json(doc, {"p-alice": "c-alice"})
    for _ in range(50_000):
        out = out[0]
    assert out == "c-alice"


def test_candidates_cover_path_query_and_json_strings() -> None:
    found = candidates("/v3/users/a?x=b", b'{"k": ["c", {"d": "e"}], "n": 1}')
    assert {"v3", "users", "a", "b", "c", "e"} <= found and "k" not in found
