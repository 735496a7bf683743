"""Merging `&` answers: collections with origins, representative bodies, per-site failures."""

from __future__ import annotations

import json

from edgescope.proxy.merge import (
    ORIGIN_FIELD,
    SITES_HEADER,
    SiteResult,
    failure_response,
    merge_results,
    sites_header,
)


def ok(site: str, doc: object, status: int = 200) -> SiteResult:
    return SiteResult(site, status, json.dumps(doc).encode(), {"Content-Type": "application/json"})


def test_collections_merge_with_origin_and_unfollowable_links_removed() -> None:
    paris = ok("Paris", {"servers": [{"id": "a"}], "servers_links": [{"rel": "next"}]})
    corte = ok("Corte", {"servers": [{"id": "b"}, {"id": "c"}]})
    merged = merge_results([paris, corte])
    doc = json.loads(merged.body)
    assert [(s["id"], s[ORIGIN_FIELD]) for s in doc["servers"]] == [
        ("a", "Paris"),
        ("b", "Corte"),
        ("c", "Corte"),
    ]
    assert "servers_links" not in doc
    assert merged.headers[SITES_HEADER] == "Paris=200, Corte=200"


def test_glance_and_keystone_pagination_shapes() -> None:
    glance = [
        ok(s, {"images": [{"id": s}], "next": "/v2/images?marker=x", "schema": "/s"})
        for s in ("Paris", "Corte")
    ]
    doc = json.loads(merge_results(glance).body)
    assert "next" not in doc and doc["schema"] == "/s" and len(doc["images"]) == 2
    keystone = [
        ok(s, {"users": [{"id": s}], "links": {"self": "u", "next": "n", "previous": "p"}})
        for s in ("Paris", "Corte")
    ]
    doc = json.loads(merge_results(keystone).body)
    assert doc["links"] == {"self": "u", "next": None, "previous": None}


def test_non_collections_return_the_first_body() -> None:
    merged = merge_results(
        [ok("Paris", {"user": {"id": 1}}, 201), ok("Corte", {"user": {"id": 2}}, 201)]
    )
    assert json.loads(merged.body) == {"user": {"id": 1}} and merged.status == 201
    assert merged.headers[SITES_HEADER] == "Paris=201, Corte=201"
    mixed = merge_results([ok("Paris", {"items": []}), SiteResult("Corte", 200, b"plain")])
    assert json.loads(mixed.body) == {"items": []}


def test_failure_lists_every_site() -> None:
    results = [
        ok("Paris", {"x": 1}),
        SiteResult("Corte", None, error="connection refused", failed=True),
    ]
    merged = failure_response(results, "image", "&")
    error = json.loads(merged.body)["error"]
    assert merged.status == 503 and error["code"] == 503
    assert "1 of 2 sites failed" in error["message"] and "Corte: unreachable" in error["message"]
    assert error["sites"] == [
        {"site": "Paris", "status": 200, "ok": True},
        {"site": "Corte", "status": None, "ok": False, "error": "connection refused"},
    ]


def test_all_404_is_a_404_naming_both_sites() -> None:
    results = [
        SiteResult(s, 404, b'{"message": "no image"}', failed=True) for s in ("Corte", "Marseille")
    ]
    merged = failure_response(results, "image", "|")
    error = json.loads(merged.body)["error"]
    assert merged.status == 404
    assert "Corte: 404 failed (no image)" in error["message"] and "Marseille" in error["message"]


def test_or_with_404_where_reachable_is_a_404_naming_the_unreachable() -> None:
    results = [
        SiteResult("Corte", None, error="circuit breaker open", failed=True),
        SiteResult("Marseille", 404, b'{"message": "no image debian"}', failed=True),
    ]
    merged = failure_response(results, "image", "|")
    error = json.loads(merged.body)["error"]
    assert merged.status == 404 and error["title"] == "Not Found"
    assert "Corte: unreachable (circuit breaker open)" in error["message"]
    assert merged.headers[SITES_HEADER] == "Corte=unreachable, Marseille=404"
    # an & is all or nothing: a member cut is still a 503
    assert failure_response(results, "image", "&").status == 503
    # no answer at all: 503
    assert failure_response(results[:1], "image", "|").status == 503


def test_sites_header_stays_short_for_wide_fanouts() -> None:
    results = [SiteResult(f"s{i}", 200) for i in range(1000)]
    results[7] = SiteResult("s7", None, failed=True)
    header = sites_header(results)
    assert len(header) <= 2048
    assert header == "999 sites=200 (s0, s1, s2, s3, s4, ...); 1 sites=unreachable (s7)"


def test_failure_message_is_bounded_but_sites_list_is_complete() -> None:
    results = [SiteResult(f"s{i}", 200) for i in range(100)]
    results[50] = SiteResult("s50", None, error="refused", failed=True)
    error = json.loads(failure_response(results, "image", "&").body)["error"]
    assert "s50: unreachable (refused)" in error["message"]
    assert "and 80 more sites" in error["message"] and len(error["sites"]) == 100


def test_sites_header_names_pending_sites_and_stays_bounded() -> None:
    results = [SiteResult("Paris", 201), SiteResult("Corte", None, failed=True)]
    assert sites_header(results, pending={"Corte"}) == "Paris=201, Corte=pending"
    wide = [SiteResult(f"s{i}", 200) for i in range(1000)]
    assert len(sites_header(wide, pending={"s1"})) <= 2048
