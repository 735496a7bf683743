"""`&`: concurrent fan-out, merged collections with origins, teed bodies, partial failure."""

from __future__ import annotations

import hashlib
from typing import Any

from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.protocol import SITES_HEADER

SitesFactory = Any


async def test_collections_merge_with_origins(sites: SitesFactory) -> None:
    paris, corte, _marseille = await sites("Paris", "Corte", "Marseille")
    status, headers, body = await paris.get(
        "/image/items", headers={"X-Scope": "{image: Paris & Corte & Marseille}"}
    )
    assert status == 200
    assert [(i["id"], i[ORIGIN_FIELD]) for i in body["items"]] == [
        ("Paris-1", "Paris"),
        ("Paris-2", "Paris"),
        ("Corte-1", "Corte"),
        ("Corte-2", "Corte"),
        ("Marseille-1", "Marseille"),
        ("Marseille-2", "Marseille"),
    ]
    assert "items_links" not in body
    assert headers[SITES_HEADER] == "Paris=200, Corte=200, Marseille=200"
    # every branch saw its own site pinned in the scope
    assert corte.seen[0]["headers"]["X-Scope"] == "{image: Corte, identity: Paris}"
    assert paris.seen[0]["headers"]["X-Scope"] == "{image: Paris, identity: Paris}"


async def test_request_body_is_teed_to_every_branch(sites: SitesFactory) -> None:
    paris, corte = await sites("Paris", "Corte")
    payload = bytes(range(256)) * 20_000  # 5 MB, sent chunked

    async def chunks():  # type: ignore[no-untyped-def]
        for i in range(0, len(payload), 65536):
            yield payload[i : i + 65536]

    status, headers, _body = await paris.request(
        "PUT", "/image/upload", data=chunks(), headers={"X-Scope": "{image: Paris & Corte}"}
    )
    assert status == 200 and headers[SITES_HEADER] == "Paris=200, Corte=200"
    digest = hashlib.sha256(payload).hexdigest()
    assert [(r["site"], r["size"], r["sha256"]) for r in (paris.seen[0], corte.seen[0])] == [
        ("Paris", len(payload), digest),
        ("Corte", len(payload), digest),
    ]


async def test_partial_failure_lists_each_site(sites: SitesFactory, refused_url: str) -> None:
    paris, corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    status, headers, body = await paris.get(
        "/image/items", headers={"X-Scope": "{image: Paris & Lyon & Corte}"}
    )
    assert status == 503 and headers["Retry-After"]
    error = body["error"]
    assert error["code"] == 503 and "1 of 3 sites failed" in error["message"]
    assert "Lyon: unreachable (connection refused)" in error["message"]
    assert [(s["site"], s["ok"]) for s in error["sites"]] == [
        ("Paris", True),
        ("Lyon", False),
        ("Corte", True),
    ]
    assert headers[SITES_HEADER] == "Paris=200, Lyon=unreachable, Corte=200"
    assert corte.seen and paris.seen  # the other branches still ran


async def test_failed_status_in_a_branch(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    status, _, body = await paris.get(
        "/image/only/Paris", headers={"X-Scope": "{image: Paris & Corte}"}
    )
    assert status == 404 and "Corte: 404 failed (not at Corte)" in body["error"]["message"]


async def test_nested_or_inside_and_with_a_body(sites: SitesFactory, refused_url: str) -> None:
    paris, _corte, marseille = await sites(
        "Paris", "Corte", "Marseille", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    status, headers, body = await paris.request(
        "POST",
        "/image/echo",
        data=b"abc" * 1000,
        headers={"X-Scope": "{image: (Lyon | Corte) & Marseille}"},
    )
    assert status == 200 and body["site"] == "Corte" and body["size"] == 3000
    assert headers[SITES_HEADER] == "Lyon=unreachable, Corte=200, Marseille=200"
    assert marseille.seen[0]["size"] == 3000
