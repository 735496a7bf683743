"""The pure routing decision."""

from __future__ import annotations

import pytest

from edgescope.errors import ScopeCheckError
from edgescope.lang import And, SiteRef, parse_scope, unparse
from edgescope.lang.ast import iter_sites
from edgescope.lang.network import NetworkView
from edgescope.proxy.route import FanoutTooWide, LoopDetected, branch_scope, plan_route

PEERS = {"Corte", "Marseille"}


def plan(text: str | None, service: str = "image", hops: int = 0, ingress: bool = True):  # type: ignore[no-untyped-def]
    scope = parse_scope(text) if text is not None else None
    return plan_route(
        scope, service, "Paris", PEERS, hops=hops, max_hops=3, max_fanout=2, ingress=ingress
    )


def test_no_scope_or_missing_service_is_local() -> None:
    assert plan(None).is_local and plan(None).downstream is None
    assert plan("{compute: Corte}").is_local
    assert plan("{image: Paris}").is_local


def test_remote_and_fanout() -> None:
    p = plan("{image: Paris & Corte}")
    assert p.sites == ("Paris", "Corte") and p.merges and isinstance(p.expr, And)
    assert not plan("{image: Corte | Marseille}").merges


def test_identity_made_explicit_at_ingress_only() -> None:
    p = plan("{image: Corte}")
    assert p.downstream is not None and p.downstream.expr_for("identity") == SiteRef("Paris")
    assert plan("{image: Corte}", ingress=False).downstream.expr_for("identity") is None  # type: ignore[union-attr]
    assert plan("{image: Corte, identity: Corte}").downstream.expr_for("identity") == SiteRef(
        "Corte"
    )  # type: ignore[union-attr]


def test_branch_scope_pins_the_site() -> None:
    p = plan("{image: Paris & Corte}")
    assert unparse(branch_scope(p, "image", "Corte")) == "{image: Corte, identity: Paris}"  # type: ignore[arg-type]


def test_unknown_site_has_a_position() -> None:
    with pytest.raises(
        ScopeCheckError, match=r"unknown site 'Lyon'.*known sites: Corte, Marseille, Paris"
    ) as info:
        plan("{image: Corte | Lyon}")
    assert info.value.context().splitlines()[1].startswith(" " * 16 + "^^^^")


def test_guards() -> None:
    with pytest.raises(FanoutTooWide):
        plan("{image: Paris & Corte & Marseille}")
    with pytest.raises(LoopDetected):
        plan("{image: Corte}", hops=3, ingress=False)
    assert plan("{image: Paris}", hops=3, ingress=False).is_local  # serving here is no hop


def _wide_view(count: int) -> tuple[set[str], NetworkView]:
    peers = {f"Site{i:03d}" for i in range(count)}
    sites = ("Paris", *sorted(peers))
    rtts = {"Paris": {site: 1.0 for site in sites}}
    return peers, NetworkView("Paris", sites, rtt_ms=rtts)


def test_around_in_another_service_stays_within_the_fanout_limit() -> None:
    """Found by a loopback attack: with 300 peers, ``{image: Paris, compute: around(Paris,
    1000ms)}`` sent a 12,355-character scope on (raw 400s from servers downstream)."""
    peers, view = _wide_view(300)
    scope = parse_scope("{image: Paris, compute: around(Paris, 1000ms)}")
    with pytest.raises(FanoutTooWide, match="resolves compute to 301 sites"):
        plan_route(scope, "image", "Paris", peers, hops=0, max_hops=3, max_fanout=64, network=view)


def test_a_resolved_scope_too_long_for_a_header_is_refused() -> None:
    peers, view = _wide_view(1000)
    scope = parse_scope("{image: Paris, compute: around(Paris, 1000ms)}")
    with pytest.raises(FanoutTooWide, match="at most 8000 are sent on"):
        plan_route(
            scope, "image", "Paris", peers, hops=0, max_hops=3, max_fanout=2000, network=view
        )


def test_a_small_around_in_another_service_is_planned() -> None:
    peers, view = _wide_view(3)
    scope = parse_scope("{image: Paris, compute: around(Paris, 1000ms)}")
    p = plan_route(scope, "image", "Paris", peers, hops=0, max_hops=3, max_fanout=64, network=view)
    assert p.is_local and p.downstream is not None
    assert len(list(iter_sites(p.downstream.expr_for("compute")))) == 4  # type: ignore[arg-type]
