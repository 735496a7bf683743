"""The topology loader: the shipped default, site selection, and a clear error for each mistake."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgescope.errors import ConfigError
from edgescope.testbed.wan import load_topology, parse_topology


def test_default_is_renater_with_the_seed_rtts() -> None:
    topo = load_topology()
    assert topo.names == ["Paris", "Corte", "Marseille"]
    assert topo.link("Paris", "Marseille").rtt_ms == 10
    assert topo.link("Corte", "Paris").rtt_ms == 20
    assert topo.link("Marseille", "Corte").rtt_ms == 15
    assert len(topo.links) == 3
    assert [s.address for s in topo.sites] == ["10.66.0.1", "10.66.0.2", "10.66.0.3"]


def test_optional_site_is_selected_by_name_in_any_case() -> None:
    topo = load_topology(sites=["paris", "VANCOUVER"])
    assert topo.names == ["Paris", "Vancouver"]
    assert topo.link("Vancouver", "Paris").rtt_ms == 300
    assert topo.link("Paris", "Vancouver").one_way_ms == 150
    assert topo.site("vancouver").address == "10.66.0.4"


def test_with_link_changes_one_pair_and_checks_values() -> None:
    topo = load_topology().with_link("Corte", "Paris", rtt_ms=100, loss=0.3)
    assert (topo.link("Paris", "Corte").rtt_ms, topo.link("Paris", "Corte").loss) == (100, 0.3)
    assert topo.link("Paris", "Marseille").rtt_ms == 10
    with pytest.raises(ConfigError, match="loss must be a fraction"):
        topo.with_link("Paris", "Corte", loss=1.5)


def test_to_dict_round_trips() -> None:
    topo = load_topology(sites=["Paris", "Vancouver", "Corte"])
    assert parse_topology(topo.to_dict(), sites=topo.names) == topo


def test_default_rtt_fills_missing_pairs() -> None:
    topo = parse_topology({"default_rtt_ms": 50, "sites": [{"name": "A"}, {"name": "B"}]})
    assert topo.link("A", "B").rtt_ms == 50


def _two_sites(**link: Any) -> dict[str, Any]:
    return {
        "sites": [{"name": "Paris"}, {"name": "Corte"}],
        "links": [{"sites": ["Paris", "Corte"], **link}],
    }


BAD_TOPOLOGIES: list[tuple[str, dict[str, Any]]] = [
    (
        "unknown site 'Lyon'; valid sites: Paris, Corte",
        {
            "sites": [{"name": "Paris"}, {"name": "Corte"}],
            "links": [{"sites": ["Paris", "Lyon"], "rtt_ms": 5}],
        },
    ),
    ("'rtt_ms' is required", _two_sites()),
    ("rtt_ms must be a number", _two_sites(rtt_ms="fast")),
    ("rtt_ms must be between 0 and 10000", _two_sites(rtt_ms=-1)),
    ("jitter_ms must be between 0 and half the RTT", _two_sites(rtt_ms=10, jitter_ms=6)),
    ("loss must be a fraction between 0 and 1", _two_sites(rtt_ms=10, loss=2)),
    ("unknown key 'delay'; valid keys: jitter_ms, loss, rtt_ms, sites", _two_sites(delay=3)),
    ("no link between Paris and Corte", {"sites": [{"name": "Paris"}, {"name": "Corte"}]}),
    ("site 'paris' is listed twice", {"sites": [{"name": "Paris"}, {"name": "paris"}]}),
    ("must be 1-12 letters", {"sites": [{"name": "Saint-Denis"}, {"name": "Corte"}]}),
    ("'sites' must be a non-empty list", {"sites": []}),
    ("is not a host address of 10.66.0.0/24", {"sites": [{"name": "A", "address": "10.9.0.1"}]}),
    (
        "address 10.66.0.1 is already used",
        {"sites": [{"name": "A"}, {"name": "B", "address": "10.66.0.1"}]},
    ),
    ("must be a private IPv4 network", {"subnet": "8.8.8.0/24", "sites": [{"name": "A"}]}),
    (
        "a link needs two different sites",
        {"sites": [{"name": "A"}, {"name": "B"}], "links": [{"sites": ["A", "a"], "rtt_ms": 1}]},
    ),
    (
        "the B–A link is listed twice",
        {
            "sites": [{"name": "A"}, {"name": "B"}],
            "links": [{"sites": ["A", "B"], "rtt_ms": 1}, {"sites": ["B", "A"], "rtt_ms": 2}],
        },
    ),
    ("unknown key 'site'", {"site": []}),
]


@pytest.mark.parametrize(("message", "data"), BAD_TOPOLOGIES, ids=[m for m, _ in BAD_TOPOLOGIES])
def test_bad_topology_gets_a_clear_error(message: str, data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_topology(data)
    assert message in str(info.value)


def test_unknown_selected_site_lists_all_valid_sites() -> None:
    with pytest.raises(
        ConfigError, match="unknown site 'Lyon'; valid sites: Paris, Corte, Marseille, Vancouver"
    ):
        load_topology(sites=["Paris", "Lyon"])


def test_single_site_is_not_a_wan() -> None:
    with pytest.raises(ConfigError, match="at least two sites"):
        load_topology(sites=["Paris"])


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read topology file"):
        load_topology(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("sites = [\n")
    with pytest.raises(ConfigError, match=r"broken.toml: invalid TOML"):
        load_topology(broken)
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[sites]]\nname = "A"\n[[sites]]\nname = "B"\n')
    with pytest.raises(ConfigError, match=r"wrong.toml: no link between A and B"):
        load_topology(wrong)


def test_site_lookup_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="valid sites: Paris, Corte, Marseille"):
        load_topology().site("Nice")
