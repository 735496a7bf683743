"""The port plan and URLs of testbed sites (pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgescope.testbed.layout import (
    PORT_OFFSETS,
    SERVICE_TYPES,
    SERVICES,
    SitePlan,
    TestbedUsageError,
    check_service,
    parse_sites,
)


def test_ports_of_fifty_sites_never_collide() -> None:
    ports = []
    for i in range(1, 51):
        plan = SitePlan.make(f"S{i}", i, Path("/s"))
        ports += [plan.port(service) for service in PORT_OFFSETS if service != "haproxy"]
        ports += [plan.haproxy_port(service) for service in SERVICE_TYPES]
        ports += [plan.proxy_listener_port(service) for service in SERVICE_TYPES]
    assert len(ports) == len(set(ports))
    assert all(20100 <= port < 25100 for port in ports)
    assert SitePlan.make("Paris", 1, Path("/s")).port("proxy") == 20190


def test_haproxy_catalog_points_every_service_at_the_sites_haproxy_as_kolla_does() -> None:
    plan = SitePlan.make("Paris", 1, Path("/s"))
    assert plan.catalog == "haproxy"  # the default
    assert plan.catalog_url("keystone") == "http://127.0.0.1:20110/v3"
    assert plan.catalog_url("nova-api") == "http://127.0.0.1:20113/v2.1"
    assert plan.catalog_url("glance") == "http://127.0.0.1:20111"
    assert plan.port("haproxy") == plan.haproxy_port("keystone")
    assert plan.proxy_listener_port("glance") == 20181
    assert plan.runs("haproxy") and plan.runs("proxy")


def test_each_mode_runs_its_own_front() -> None:
    runs = {
        mode: [s for s in ("proxy", "haproxy") if SitePlan.make("P", 1, Path("/s"), catalog=mode)
               .runs(s)]
        for mode in ("haproxy", "proxy", "direct")
    }  # fmt: skip
    assert runs == {"haproxy": ["proxy", "haproxy"], "proxy": ["proxy"], "direct": []}


def test_proxy_catalog_points_every_service_at_the_proxy() -> None:
    plan = SitePlan.make("Paris", 1, Path("/s"), catalog="proxy")
    assert plan.catalog_url("keystone") == "http://127.0.0.1:20190/identity/v3"
    assert plan.catalog_url("nova-api") == "http://127.0.0.1:20190/compute/v2.1"
    assert plan.catalog_url("glance") == "http://127.0.0.1:20190/image"
    assert plan.keystone_direct_v3 == "http://127.0.0.1:20100/v3"


def test_direct_catalog_and_bind_host_for_a_namespace() -> None:
    plan = SitePlan.make(
        "Corte", 2, Path("/s"), bind_host="10.77.0.2", catalog="direct",
        exec_prefix=("ip", "netns", "exec", "es-corte"),
    )  # fmt: skip
    assert plan.catalog_url("glance") == "http://10.77.0.2:20201"
    assert plan.auth_url == "http://10.77.0.2:20200/v3"


def test_every_sqlite_url_waits_for_locks() -> None:
    url = SitePlan.make("Paris", 1, Path("/s")).sqlite_url("nova_api")
    assert url.endswith("/nova_api.db?timeout=30&plugin=edgescope_immediate")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no site given"),
        ("Paris,paris", "distinct"),
        ("Paris,1Corte", "invalid site name '1Corte'"),
        ("Par is", "invalid site name"),
    ],
)
def test_bad_site_lists_are_refused_clearly(text: str, message: str) -> None:
    with pytest.raises(TestbedUsageError, match=message):
        parse_sites(text)


def test_site_list_keeps_order() -> None:
    assert parse_sites(" Paris, Corte ,Marseille") == ["Paris", "Corte", "Marseille"]


def test_unknown_service_lists_the_valid_ones() -> None:
    with pytest.raises(TestbedUsageError, match=r"choose from ovs-db, .*keystone, glance"):
        check_service("swift")
    assert all(check_service(s) == s for s in SERVICES)
