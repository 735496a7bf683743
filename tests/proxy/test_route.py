"""The pure routing decision."""

from __future__ import annotations

import pytest

from edgescope.errors import ScopeCheckError
from edgescope.lang import And, SiteRef, parse_scope, unparse
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
