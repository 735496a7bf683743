"""``around``/``nearest`` inside scopes: parsing, canonical text and JSON, static checks, and
resolution from injected RTT maps (the WAN testbed's Paris-Marseille 10 ms, Paris-Corte 20 ms)."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest

from edgescope.catalog import Catalog
from edgescope.errors import ScopeCheckError, ScopeSyntaxError
from edgescope.lang import check_scope, evaluate, parse_scope, scope_to_json, unparse
from edgescope.lang.ast import And, Around, Nearest, Or, SiteRef
from edgescope.lang.network import (
    NetworkView,
    NoSiteAround,
    RttUnknown,
    consulted,
    resolve_expr,
    resolve_scope,
)
from edgescope.lang.unparse import unparse_expr

SITES = ("Paris", "Marseille", "Corte")
PARIS = {"Paris": {"Marseille": 10.0, "Corte": 20.0}}


def view(entry: str = "Paris", **kwargs: object) -> NetworkView:
    return NetworkView(entry, SITES, **kwargs)  # type: ignore[arg-type]


def expr_of(text: str):  # type: ignore[no-untyped-def]
    return parse_scope(text).entries[0].expr


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("{nova: around(Paris, 25ms)}", "{compute: around(Paris, 25ms)}"),
        ("{nova: around( Paris ,2.50 ms )}", "{compute: around(Paris, 2.5ms)}"),
        ("{glance: nearest(Corte, Marseille)}", "{image: nearest(Corte, Marseille)}"),
        ('{nova: around("New York", 5ms) & Corte}', '{compute: around("New York", 5ms) & Corte}'),
        ("{nova: Lyon | nearest(Corte,Marseille)}", "{compute: Lyon | nearest(Corte, Marseille)}"),
    ],
)
def test_forms_parse_print_and_round_trip(text: str, canonical: str) -> None:
    scope = parse_scope(text)
    assert unparse(scope) == canonical
    assert parse_scope(canonical) == scope
    assert parse_scope(json.dumps(scope_to_json(scope))) == scope


def test_ast_nodes() -> None:
    assert expr_of("{nova: around(Paris, 25ms)}") == Around(SiteRef("Paris"), Decimal(25))
    assert expr_of("{glance: nearest(Corte, Marseille)}") == Nearest(
        (SiteRef("Corte"), SiteRef("Marseille"))
    )
    assert scope_to_json(parse_scope("{nova: around(Paris, 25ms)}")) == {
        "compute": {"around": ["Paris", "25ms"]}
    }


def test_around_and_nearest_stay_site_names_without_parenthesis() -> None:
    assert expr_of("{nova: around & nearest}") == And((SiteRef("around"), SiteRef("nearest")))


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("{nova: around(Paris, 0ms)}", ScopeCheckError, "more than 0 ms and at most 1000 ms"),
        ("{nova: around(Paris, 1001ms)}", ScopeCheckError, "not 1001 ms"),
        ("{nova: around(Paris, 25)}", ScopeSyntaxError, "expected a radius such as 25ms"),
        ("{nova: around(Paris)}", ScopeSyntaxError, "expected ','"),
        ("{glance: nearest(Corte)}", ScopeCheckError, "nearest() takes 2 to 64 sites, not 1"),
        ("{glance: nearest(Corte, Corte)}", ScopeCheckError, "site 'Corte' appears twice"),
        ('{"compute": {"around": ["Paris", "soon"]}}', ScopeSyntaxError, 'such as "25ms"'),
    ],
)
def test_bad_forms_are_refused_clearly(text: str, kind: type[Exception], message: str) -> None:
    with pytest.raises(kind, match=None) as info:
        parse_scope(text)
    assert message in str(info.value)


def test_check_scope_names_unknown_sites_inside_forms() -> None:
    catalog = Catalog.from_sites(list(SITES))
    check_scope(parse_scope("{nova: around(Paris, 5ms), glance: nearest(Corte, Paris)}"), catalog)
    with pytest.raises(ScopeCheckError, match="unknown site 'Pari'; did you mean Paris"):
        check_scope(parse_scope("{nova: around(Pari, 5ms)}"), catalog)
    with pytest.raises(ScopeCheckError, match="unknown site 'Lyon'"):
        check_scope(parse_scope("{glance: nearest(Corte, Lyon)}"), catalog)


def test_around_resolves_to_an_and_of_the_sites_within_the_radius() -> None:
    resolved = resolve_expr(expr_of("{nova: around(Paris, 15ms)}"), view(rtt_ms=PARIS))
    assert resolved == And((SiteRef("Paris"), SiteRef("Marseille")))
    wider = resolve_expr(expr_of("{nova: around(Paris, 25ms)}"), view(rtt_ms=PARIS))
    assert unparse_expr(wider) == "Paris & Marseille & Corte"
    slower = {"Paris": {"Marseille": 30.0, "Corte": 20.0}}
    changed = resolve_expr(expr_of("{nova: around(Paris, 25ms)}"), view(rtt_ms=slower))
    assert unparse_expr(changed) == "Paris & Corte"


def test_unknown_rtt_or_open_breaker_is_never_inside_around() -> None:
    only_corte = {"Paris": {"Corte": 20.0}}
    assert unparse_expr(
        resolve_expr(expr_of("{nova: around(Paris, 50ms)}"), view(rtt_ms=only_corte))
    ) == ("Paris & Corte")
    open_corte = view(rtt_ms=PARIS, open_breakers=frozenset({"Corte"}))
    assert unparse_expr(resolve_expr(expr_of("{nova: around(Paris, 50ms)}"), open_corte)) == (
        "Paris & Marseille"
    )
    alone = resolve_expr(expr_of("{nova: around(Paris, 5ms)}"), view(rtt_ms=PARIS))
    assert alone == SiteRef("Paris")


def test_around_another_site_needs_its_rtts() -> None:
    with pytest.raises(RttUnknown, match="no RTT measured from Corte is known at Paris"):
        resolve_expr(expr_of("{nova: around(Corte, 15ms)}"), view(rtt_ms=PARIS))
    from_corte = {**PARIS, "Corte": {"Marseille": 12.0, "Paris": 20.0}}
    resolved = resolve_expr(expr_of("{nova: around(Corte, 15ms)}"), view(rtt_ms=from_corte))
    assert unparse_expr(resolved) == "Corte & Marseille"


def test_around_with_no_site_left_is_an_error() -> None:
    closed = view(rtt_ms=PARIS, open_breakers=frozenset(SITES))
    with pytest.raises(NoSiteAround, match="is no site now"):
        resolve_expr(expr_of("{nova: around(Paris, 50ms)}"), closed)


def test_nearest_orders_by_rtt_from_the_entry_then_written_order() -> None:
    text = "{glance: nearest(Corte, Marseille)}"
    assert resolve_expr(expr_of(text), view(rtt_ms=PARIS)) == Or(
        (SiteRef("Marseille"), SiteRef("Corte"))
    )
    assert unparse_expr(resolve_expr(expr_of(text), view())) == "Corte | Marseille"
    tie = {"Paris": {"Marseille": 10.0, "Corte": 10.0}}
    assert unparse_expr(resolve_expr(expr_of(text), view(rtt_ms=tie))) == "Corte | Marseille"
    from_corte = resolve_expr(expr_of("{glance: nearest(Paris, Corte)}"), view("Corte"))
    assert unparse_expr(from_corte) == "Corte | Paris"


def test_resolution_flattens_and_refuses_a_site_twice() -> None:
    scope = parse_scope("{nova: around(Paris, 15ms) & Corte, glance: nearest(Corte, Marseille)}")
    assert unparse(resolve_scope(scope, view(rtt_ms=PARIS))) == (
        "{compute: Paris & Marseille & Corte, image: Marseille | Corte}"
    )
    with pytest.raises(ScopeCheckError, match="'Marseille' is named twice"):
        resolve_expr(expr_of("{nova: around(Paris, 15ms) & Marseille}"), view(rtt_ms=PARIS))


def test_the_evaluator_refuses_an_unresolved_form() -> None:
    async def call(site: str) -> int:
        return 200

    with pytest.raises(ScopeCheckError, match="must be resolved"):
        asyncio.run(evaluate(expr_of("{nova: around(Paris, 5ms)}"), call, lambda s: s >= 500))


def test_plan_route_resolves_before_routing_and_sends_concrete_sites_downstream() -> None:
    from edgescope.proxy.route import branch_scope, plan_route

    scope = parse_scope("{nova: around(Paris, 15ms), glance: nearest(Corte, Marseille)}")
    plan = plan_route(
        scope,
        "compute",
        "Paris",
        {"Marseille", "Corte"},
        hops=0,
        max_hops=4,
        max_fanout=8,
        network=view(rtt_ms=PARIS),
    )
    assert plan.sites == ("Paris", "Marseille")
    downstream = branch_scope(plan, "compute", "Marseille")
    assert downstream is not None
    assert unparse(downstream) == (
        "{compute: Marseille, image: Marseille | Corte, identity: Paris}"
    )
    with pytest.raises(RttUnknown):
        plan_route(
            parse_scope("{nova: around(Corte, 15ms)}"),
            "compute",
            "Paris",
            {"Marseille", "Corte"},
            hops=0,
            max_hops=4,
            max_fanout=8,
            network=view(rtt_ms=PARIS),
        )
    with pytest.raises(ScopeCheckError, match="unknown site 'Lyon'"):
        plan_route(
            parse_scope("{nova: around(Lyon, 15ms)}"),
            "compute",
            "Paris",
            {"Marseille", "Corte"},
            hops=0,
            max_hops=4,
            max_fanout=8,
        )


RUNS = {
    "Paris": frozenset({"compute", "image"}),
    "Marseille": frozenset({"compute"}),  # no image
    "Corte": frozenset({"compute", "image"}),
}
NEAR = {"Paris": {"Marseille": 10.0, "Corte": 5.0}}


@pytest.mark.parametrize(
    ("scope", "services", "resolved"),
    [
        ("{glance: around(Paris, 15ms)}", RUNS, "{image: Paris & Corte}"),
        ("{nova: around(Paris, 15ms)}", RUNS, "{compute: Paris & Corte & Marseille}"),
        ("{glance: nearest(Marseille, Corte)}", RUNS, "{image: Corte}"),
        ("{nova: nearest(Marseille, Corte)}", RUNS, "{compute: Corte | Marseille}"),
        # a site whose services are unknown (never probed) is no candidate of around ...
        ("{nova: around(Paris, 15ms)}", {"Paris": RUNS["Paris"]}, "{compute: Paris}"),
        # ... and stays in a nearest, last (its RTT is unknown too in practice)
        (
            "{nova: nearest(Marseille, Paris)}",
            {"Paris": RUNS["Paris"]},
            "{compute: Paris | Marseille}",
        ),
    ],
)
def test_only_sites_running_the_service_are_candidates(
    scope: str, services: dict[str, frozenset[str]], resolved: str
) -> None:
    rtt = NEAR if "nearest(Marseille, Paris)" not in scope else {"Paris": {}}
    got = resolve_scope(parse_scope(scope), view(rtt_ms=rtt, services=services))
    assert unparse(got) == resolved


def test_around_with_no_site_running_the_service_and_nearest_of_none_are_errors() -> None:
    services = {**RUNS, "Paris": frozenset({"compute"}), "Corte": frozenset({"compute"})}
    with pytest.raises(NoSiteAround, match="not running the service"):
        resolve_scope(
            parse_scope("{glance: around(Paris, 15ms)}"), view(rtt_ms=NEAR, services=services)
        )
    with pytest.raises(NoSiteAround, match="none of these sites runs image"):
        resolve_scope(
            parse_scope("{glance: nearest(Marseille, Corte)}"), view(rtt_ms=NEAR, services=services)
        )


def test_consulted_names_the_sites_whose_rtts_a_scope_reads() -> None:
    scope = parse_scope("{glance: around(Paris, 15ms), nova: nearest(Corte, Marseille)}")
    assert consulted(scope, view(services=RUNS)) == {"Corte", "Marseille"}
    only_around = parse_scope("{glance: around(Paris, 15ms)}")
    assert consulted(only_around, view(services=RUNS)) == {"Corte"}  # Marseille: no image
