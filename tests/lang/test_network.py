"""``around`` and ``nearest`` (lang/network.py): parsing, checks, printing, pure resolution
from injected RTT maps (the Paris-Marseille 10 ms, Paris-Corte 20 ms of the WAN testbed)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from edgescope.errors import ScopeCheckError, ScopeError, ScopeSyntaxError
from edgescope.lang.ast import And, Or, SiteRef
from edgescope.lang.network import (
    Around,
    Nearest,
    NoSiteAround,
    parse_form,
    resolve,
    unparse_form,
)
from edgescope.lang.unparse import unparse_expr

SITES = ["Paris", "Marseille", "Corte", "Lyon"]
WAN = {
    ("Paris", "Marseille"): 10.0,
    ("Paris", "Corte"): 20.0,
    ("Marseille", "Corte"): 12.0,
    ("Marseille", "Paris"): 10.0,
}


def rtt_of(table: dict[tuple[str, str], float]):  # type: ignore[no-untyped-def]
    return lambda a, b: table.get((a, b))


def test_parse_and_canonical_printing() -> None:
    assert parse_form("around(Paris, 25ms)", known_sites=SITES) == Around("Paris", Decimal(25))
    assert parse_form("around( Paris ,2.50 ms )", known_sites=SITES) == Around(
        "Paris", Decimal("2.50")
    )
    assert unparse_form(parse_form("around( Paris ,2.50 ms )", known_sites=SITES)) == (
        "around(Paris, 2.5ms)"
    )
    assert unparse_form(Around("Paris", Decimal("25.0"))) == "around(Paris, 25ms)"
    form = parse_form('nearest(Corte,"Marseille")', known_sites=SITES)
    assert form == Nearest(("Corte", "Marseille"))
    assert unparse_form(form) == "nearest(Corte, Marseille)"
    odd = ["Saint Denis", "Paris"]
    form = parse_form('nearest("Saint Denis", Paris)', known_sites=odd)
    assert parse_form(unparse_form(form), known_sites=odd) == form


@pytest.mark.parametrize(
    ("text", "error", "words"),
    [
        ("around(Paris, 0ms)", ScopeCheckError, "more than 0 ms"),
        ("around(Paris, 1001ms)", ScopeCheckError, "at most 1000 ms"),
        ("around(Paris, 25)", ScopeSyntaxError, "expected around"),
        ("around(Paris, -5ms)", ScopeSyntaxError, "expected around"),
        ("around(Paris, 25s)", ScopeSyntaxError, "expected around"),
        ("around(Nice, 25ms)", ScopeCheckError, "unknown site 'Nice'"),
        ("nearest(Corte, Nice)", ScopeCheckError, "unknown site 'Nice'"),
        ("nearest(Corte, Corte)", ScopeCheckError, "named twice"),
        ("nearest(Corte)", ScopeCheckError, "two sites or more"),
        ("nearest()", ScopeSyntaxError, "expected around"),
        ("near(Corte, Paris)", ScopeSyntaxError, "expected around"),
        ("x" * 5000, ScopeSyntaxError, "at most 4096"),
        ("nearest(" + ", ".join(f"s{i}" for i in range(65)) + ")", ScopeCheckError, "at most 64"),
    ],
)
def test_bad_forms_are_clear_errors(text: str, error: type[ScopeError], words: str) -> None:
    known = [*SITES, *(f"s{i}" for i in range(65))]
    with pytest.raises(error) as caught:
        parse_form(text, known_sites=known)
    assert words in str(caught.value)


def test_around_follows_the_measured_rtts() -> None:
    form = parse_form("around(Paris, 15ms)", known_sites=SITES)
    now = resolve(form, rtt=rtt_of(WAN), entry="Corte", sites=SITES)
    assert now == And((SiteRef("Paris"), SiteRef("Marseille")))
    assert unparse_expr(now) == "Paris & Marseille"
    # a delay changes: Corte comes within 15 ms, Marseille leaves
    moved = {**WAN, ("Paris", "Corte"): 14.0, ("Paris", "Marseille"): 30.0}
    assert resolve(form, rtt=rtt_of(moved), entry="Corte", sites=SITES) == And(
        (SiteRef("Paris"), SiteRef("Corte"))
    )
    wide = parse_form("around(Paris, 25ms)", known_sites=SITES)
    assert unparse_expr(resolve(wide, rtt=rtt_of(WAN), entry="Paris", sites=SITES)) == (
        "Paris & Marseille & Corte"  # Lyon: RTT unknown, never inside
    )


def test_around_never_holds_a_site_whose_breaker_is_open() -> None:
    form = parse_form("around(Paris, 25ms)", known_sites=SITES)
    now = resolve(form, rtt=rtt_of(WAN), entry="Paris", sites=SITES, open_breakers={"Marseille"})
    assert now == And((SiteRef("Paris"), SiteRef("Corte")))
    alone = resolve(form, rtt=rtt_of({}), entry="Paris", sites=SITES)
    assert alone == SiteRef("Paris")  # the center is at 0 ms of itself
    with pytest.raises(NoSiteAround, match="around\\(Paris, 25ms\\) is no site now"):
        resolve(
            form,
            rtt=rtt_of(WAN),
            entry="Paris",
            sites=SITES,
            open_breakers={"Paris", "Marseille", "Corte"},
        )


def test_nearest_orders_by_rtt_from_the_entry_ties_and_unknown_by_written_order() -> None:
    form = parse_form("nearest(Corte, Lyon, Marseille, Paris)", known_sites=SITES)
    from_paris = resolve(form, rtt=rtt_of(WAN), entry="Paris", sites=SITES)
    assert from_paris == Or(
        (SiteRef("Paris"), SiteRef("Marseille"), SiteRef("Corte"), SiteRef("Lyon"))
    )
    tie = {("Paris", "Corte"): 10.0, ("Paris", "Marseille"): 10.0}
    assert unparse_expr(resolve(form, rtt=rtt_of(tie), entry="Paris", sites=SITES)) == (
        "Paris | Corte | Marseille | Lyon"
    )
    unknown = resolve(form, rtt=rtt_of({}), entry="Nice", sites=SITES)
    assert unparse_expr(unknown) == "Corte | Lyon | Marseille | Paris"
