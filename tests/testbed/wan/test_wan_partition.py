"""The pure cut algebra: which pairs are cut after partition / isolate / heal, and their rules."""

from __future__ import annotations

import pytest

from edgescope.errors import ConfigError
from edgescope.testbed.wan import load_topology
from edgescope.testbed.wan.partition import add_cut, cut_rules, heal, isolate

TOPO = load_topology(sites=["Paris", "Corte", "Marseille", "Vancouver"])


def test_partition_cuts_one_pair_both_ways() -> None:
    cuts = add_cut(frozenset(), "paris", "CORTE", TOPO)
    assert cuts == {frozenset({"Paris", "Corte"})}
    assert cut_rules(cuts, TOPO) == [("10.66.0.1", "10.66.0.2"), ("10.66.0.2", "10.66.0.1")]


def test_isolate_cuts_a_site_from_all_others_only() -> None:
    cuts = isolate(frozenset(), "Corte", TOPO)
    assert cuts == {frozenset({"Corte", x}) for x in ("Paris", "Marseille", "Vancouver")}
    assert ("10.66.0.1", "10.66.0.3") not in cut_rules(cuts, TOPO)
    assert len(cut_rules(cuts, TOPO)) == 6


def test_heal_all_one_site_or_one_pair() -> None:
    cuts = add_cut(isolate(frozenset(), "Corte", TOPO), "Paris", "Marseille", TOPO)
    assert heal(cuts, TOPO) == frozenset()
    assert heal(cuts, TOPO, "corte") == {frozenset({"Paris", "Marseille"})}
    assert frozenset({"Corte", "Paris"}) not in heal(cuts, TOPO, "Paris", "Corte")
    assert len(heal(cuts, TOPO, "Paris", "Corte")) == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: add_cut(frozenset(), "Paris", "Lyon", TOPO), "unknown site 'Lyon'; valid sites"),
        (
            lambda: add_cut(frozenset(), "Paris", "paris", TOPO),
            "cannot partition Paris from itself",
        ),
        (lambda: isolate(frozenset(), "Nice", TOPO), "unknown site 'Nice'"),
        (lambda: heal(frozenset(), TOPO, None, "Paris"), "heal takes no site, one site, or two"),
    ],
)
def test_bad_names_get_clear_errors(call: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        call()  # type: ignore[operator]
