"""``X-Scope-Mode: partial``: an ``&`` read answered by the sites that could, naming the others.

Real proxies and backends on loopback; the dead site is a peer whose port refuses connections.
"""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.proxy.merge import ORIGIN_FIELD, SiteResult
from edgescope.proxy.partial import missing_sites, parse_partial, partial_header
from edgescope.proxy.protocol import PARTIAL_HEADER, PENDING_HEADER, SITES_HEADER

SitesFactory = Any
PARTIAL = {"X-Scope": "{image: Paris & Lyon & Corte}", "X-Scope-Mode": "partial"}


async def _with_dead_lyon(sites: SitesFactory, refused_url: str) -> Any:
    paris, _corte = await sites(
        "Paris", "Corte", extra_peers={"Paris": {"Lyon": {"url": refused_url}}}
    )
    return paris


async def test_one_site_dead_gives_the_others_merged_and_names_it(
    sites: SitesFactory, refused_url: str
) -> None:
    paris = await _with_dead_lyon(sites, refused_url)
    status, headers, body = await paris.get("/image/items", headers=PARTIAL)
    assert status == 200
    assert [(i["id"], i[ORIGIN_FIELD]) for i in body["items"]] == [
        ("Paris-1", "Paris"),
        ("Paris-2", "Paris"),
        ("Corte-1", "Corte"),
        ("Corte-2", "Corte"),
    ]
    assert parse_partial(headers[PARTIAL_HEADER]) == [("Lyon", "connection refused")]
    assert headers[SITES_HEADER] == "Paris=200, Lyon=unreachable, Corte=200"
    assert PENDING_HEADER not in headers


async def test_strict_is_still_the_default_and_fails(sites: SitesFactory, refused_url: str) -> None:
    paris = await _with_dead_lyon(sites, refused_url)
    for mode in ({}, {"X-Scope-Mode": "strict"}):
        headers = {"X-Scope": PARTIAL["X-Scope"], **mode}
        status, answer, body = await paris.get("/image/items", headers=headers)
        assert status == 503 and "Lyon: unreachable" in body["error"]["message"]
        assert PARTIAL_HEADER not in answer


async def test_a_5xx_site_is_missing_a_4xx_is_the_answer(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    mode = {"X-Scope-Mode": "partial"}
    # Corte answers 404 for this path: the request's fault, so strict's failure stands
    status, headers, body = await paris.get(
        "/image/only/Paris", headers={"X-Scope": "{image: Paris & Corte}", **mode}
    )
    assert status == 404 and PARTIAL_HEADER not in headers
    assert "not at Corte" in body["error"]["message"]
    # every site answering 503: an error, never an empty answer
    status, headers, body = await paris.get(
        "/image/status/503", headers={"X-Scope": "{image: Paris & Corte}", **mode}
    )
    assert status == 503 and PARTIAL_HEADER not in headers and "error" in body


async def test_every_site_dead_is_an_error_not_an_empty_list(
    sites: SitesFactory, refused_url: str
) -> None:
    paris, _ = await sites(
        "Paris",
        "Corte",
        extra_peers={"Paris": {"Lyon": {"url": refused_url}, "Nice": {"url": refused_url}}},
    )
    headers = {"X-Scope": "{image: Lyon & Nice}", "X-Scope-Mode": "partial"}
    status, answer, body = await paris.get("/image/items", headers=headers)
    assert status == 503 and PARTIAL_HEADER not in answer
    assert "items" not in body and "every site failed" in body["error"]["message"]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_a_write_in_partial_mode_is_judged_strictly(
    sites: SitesFactory, refused_url: str, method: str
) -> None:
    paris = await _with_dead_lyon(sites, refused_url)
    status, headers, body = await paris.request(
        method, "/image/items", json={"name": "x"}, headers=PARTIAL
    )
    assert status == 503 and PARTIAL_HEADER not in headers
    assert "Lyon: unreachable" in body["error"]["message"]


async def test_a_bad_mode_is_a_clear_400(sites: SitesFactory) -> None:
    paris, _ = await sites("Paris", "Corte")
    headers = {"X-Scope": "{image: Paris & Corte}", "X-Scope-Mode": "partially"}
    status, _, body = await paris.get("/image/items", headers=headers)
    assert status == 400 and "strict, eventual, partial" in body["error"]["message"]


def test_missing_sites_rules() -> None:
    ok = SiteResult("Paris", 200)
    dead = SiteResult("Corte", None, error="connect timeout", failed=True)
    busy = SiteResult("Nice", 503, failed=True)
    gone = SiteResult("Lyon", 404, failed=True)
    assert missing_sites([ok, dead, busy], ok=False, write=False) == [
        ("Corte", "connect timeout"),
        ("Nice", "HTTP 503"),
    ]
    assert missing_sites([ok, dead], ok=False, write=True) is None
    assert missing_sites([ok, dead, gone], ok=False, write=False) is None
    assert missing_sites([dead, busy], ok=False, write=False) is None
    assert missing_sites([ok, ok], ok=True, write=False) is None


def test_header_round_trips_and_stays_bounded() -> None:
    missing = [("Corte", 'say "hi"\\ now\r\n'), ("Nice", "HTTP 503")]
    assert parse_partial(partial_header(missing)) == [
        ("Corte", 'say "hi"\\ now  '),
        ("Nice", "HTTP 503"),
    ]
    many = [(f"Site{i}", "connect timeout " * 20) for i in range(1000)]
    value = partial_header(many)
    assert len(value) < 4096 + 200
    pairs = parse_partial(value)
    assert pairs[-1][0] == "..." and pairs[-1][1].endswith(" more")
    assert len(pairs) - 1 + int(pairs[-1][1].split()[0]) == 1000
