"""bench/request_ids.py: the calls routed by request id alone, tallied from access lines."""

from __future__ import annotations

import json

from bench.request_ids import access_records, tally, template


def line(**fields: object) -> str:
    base = {
        "site": "Paris",
        "request_id": "req-1",
        "method": "GET",
        "service": "placement",
        "path": "/",
        "carrier": "request-id",
        "from_peer": None,
        "sites": ["Paris"],
    }
    return "INFO " + json.dumps({**base, **fields})


def test_only_request_id_calls_are_tallied_by_kind_and_route() -> None:
    lines = [
        '{"event": "started", "site": "Paris"}',
        "not json at all {",
        line(path="/allocation_candidates?resources=VCPU:1"),
        line(path="/allocation_candidates?resources=MEMORY_MB:512"),
        line(method="PUT", path="/allocations/4f0c2d6e-1b7a-4a43-9c2e-6a7d1f0b9e21"),
        line(service="image", path="/v2/images", sites=["Corte"]),
        line(carrier="token", service="image", path="/v2/images"),
    ]
    counts = tally(access_records(lines))
    assert counts == {
        ("Paris", "placement", "GET", "/allocation_candidates", "Paris"): 2,
        ("Paris", "placement", "PUT", "/allocations/{id}", "Paris"): 1,
        ("Paris", "image", "GET", "/v2/images", "Corte"): 1,
    }
    assert template("/v2.1/servers/4f0c2d6e1b7a4a439c2e6a7d1f0b9e21/action") == (
        "/v2.1/servers/{id}/action"
    )
