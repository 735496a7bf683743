"""The console's picture: link states from both ends' breakers and the WAN (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from edgescope.console.picture import MAX_SITES, Picture, link_state
from edgescope.console.watch import SseParser


def state(site: str, **breakers: str) -> dict[str, Any]:
    peers = [
        {"name": peer, "breaker": b, "failures": 0, "last_error": "", "rtt_ms": 20.0}
        for peer, b in breakers.items()
    ]
    return {"site": site, "peers": peers, "services": ["image"], "replicas": None, "dropped": 0}


@pytest.mark.parametrize(
    ("cut", "breakers", "expected"),
    [
        (True, ["closed", "closed"], "cut"),
        (False, ["closed", "open"], "down"),
        (False, ["half-open", None], "degraded"),
        (False, ["closed", None], "up"),
        (False, ["unused", "unused"], "idle"),
        (False, [None, None], "unknown"),
    ],
)
def test_link_state(cut: bool, breakers: list[str | None], expected: str) -> None:
    assert link_state(cut, breakers) == expected


def test_a_link_is_seen_from_both_ends_and_the_wan() -> None:
    picture = Picture(["Paris", "Corte"])
    picture.state("Paris", state("Paris", Corte="closed"))
    picture.state("Corte", state("Corte", Paris="closed"))
    [link] = picture.links()
    assert link["state"] == "up" and link["rtt_ms"] == 20.0
    assert link["breakers"] == {"Corte→Paris": "closed", "Paris→Corte": "closed"}

    assert picture.wan([["Paris", "Corte"]], {frozenset(("Paris", "Corte")): 20.0})
    assert picture.links()[0]["state"] == "cut"
    assert not picture.wan([["Corte", "Paris"]], {})  # the same cut: no change

    picture.wan([], {})
    picture.lost("Corte", "cannot connect")
    picture.state("Paris", state("Paris", Corte="open"))
    [link] = picture.links()
    assert link["state"] == "down"
    assert link["breakers"]["Corte→Paris"] is None  # Corte cannot be heard: no claim
    corte = next(s for s in picture.overview()["sites"] if s["name"] == "Corte")
    assert corte["reachable"] is False and corte["error"] == "cannot connect"


def test_a_peer_nobody_watches_appears_as_not_watched() -> None:
    picture = Picture(["Paris"])
    picture.state("Paris", state("Paris", Lyon="open"))
    sites = {s["name"]: s for s in picture.overview()["sites"]}
    assert sites["Lyon"]["watched"] is False and sites["Lyon"]["reachable"] is False
    assert picture.links()[0]["state"] == "down"


def test_pending_writes_are_summed_per_site() -> None:
    picture = Picture(["Paris"])
    doc = state("Paris")
    doc["replicas"] = {"sets": {"image": 2}, "pending": {"Corte": 2, "Lyon": 1}, "queue": []}
    picture.state("Paris", doc)
    [paris] = picture.overview()["sites"]
    assert paris["pending"] == 3


def test_calls_are_kept_bounded_with_who_reported_them() -> None:
    picture = Picture(["Paris"])
    for n in range(600):
        picture.call("Paris", {"id": f"req-{n}", "route": []})
    calls = picture.snapshot(calls=1000)["calls"]
    assert len(calls) == 500 and calls[-1] == {"id": "req-599", "route": [], "reported_by": "Paris"}


def test_server_sent_events_are_parsed_line_by_line() -> None:
    parser = SseParser()
    lines = [": keep-alive\n", "\n", "event: call\n", 'data: {"a":\n', "data: 1}\n", "\n"]
    events = [e for line in lines if (e := parser.feed(line)) is not None]
    assert events == [("call", '{"a":\n1}')]
    assert parser.feed("data:x\r\n") is None and parser.feed("\r\n") == ("message", "x")


def test_a_proxy_naming_countless_peers_grows_the_picture_only_to_its_bound() -> None:
    picture = Picture(["Paris"])
    peers = [{"name": f"site-{i}", "breaker": "closed"} for i in range(MAX_SITES + 50)]
    picture.state("Paris", {"peers": peers})
    assert len(picture.sites) == len(picture.views) == MAX_SITES
    assert picture.overview()["ignored_sites"] == 51  # Paris holds one place


def test_an_event_past_the_consoles_bound_breaks_the_stream_not_the_memory() -> None:
    parser = SseParser(max_event=100)
    assert parser.feed("event: call\n") is None
    with pytest.raises(ValueError, match="over 100 bytes"):
        for _ in range(1000):
            parser.feed("data: " + "x" * 20 + "\n")
    assert parser.size <= 100 + 21
    small = SseParser(max_event=100)
    small.feed("data: {}\n")
    assert small.feed("\n") == ("message", "{}")
