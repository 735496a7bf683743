"""The seed's six scenarios, end to end: the real `openstack` CLI against three real sites.

Each scenario (edgescope.openstack.scenarios) checks real state at the sites and raises
ScenarioFailed with what it expected and saw; `edgescope demo` runs the same functions.
"""

from __future__ import annotations

import pytest

from edgescope.openstack import scenarios
from edgescope.openstack.scenarios import Context

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


def test_1_dc_boot_here_and_list_there(ctx: Context) -> None:
    detail = scenarios.scenario_one_dc(ctx)
    assert "all of them at Corte" in detail


def test_x_dc_nova_at_paris_fetches_the_image_from_corte(ctx: Context) -> None:
    detail = scenarios.scenario_x_dc(ctx)
    assert "ACTIVE at Paris with Corte's image" in detail


def test_star_dc_user_create_at_both_sites(ctx: Context) -> None:
    detail = scenarios.star_dc_user_create(ctx)
    assert "created at Paris and Corte" in detail


def test_star_dc_server_list_is_the_union_with_sites(ctx: Context) -> None:
    detail = scenarios.star_dc_server_list(ctx)
    assert "each with its Site" in detail


def test_star_dc_image_create_stores_at_both_sites(ctx: Context) -> None:
    detail = scenarios.star_dc_image_create(ctx)
    assert "active at Paris and Corte" in detail


def test_or_falls_back_and_fails_clearly(ctx: Context) -> None:
    detail = scenarios.scenario_or(ctx)
    assert "booted from Marseille" in detail


def test_bad_collaboration_is_rejected_before_any_request(ctx: Context) -> None:
    detail = scenarios.scenario_bad_collaboration(ctx)
    assert detail.startswith("rejected locally")


def test_identity_paris_user_lists_images_at_corte(ctx: Context) -> None:
    detail = scenarios.scenario_identity(ctx)
    assert "Corte's debian" in detail
