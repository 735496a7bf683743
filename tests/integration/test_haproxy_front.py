"""Sites run as Kolla runs them: Debian's HAProxy in front of each site's services, the
proxy behind the fast path (``--catalog haproxy``, the testbed's default).

Real CLI, real services, real HAProxy: an unscoped call goes straight to its service (the
proxy never sees it), a scoped one goes through the proxy, and so do the services' own
calls made for a scoped request, which carry nothing but the request id the proxy minted.
With the proxy down, the site refuses scoped calls with a clear 503 and serves the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from edgescope.openstack.cli_runner import LogTail
from edgescope.openstack.scenarios import CORTE, PARIS, Context, boot
from edgescope.proxy.carriers import is_correlation_id

pytestmark = [pytest.mark.testbed, pytest.mark.slow]


@pytest.fixture
def haproxy_ctx(ctx: Context) -> Context:
    if ctx.testbed.proxy_endpoint(PARIS, "image").startswith(ctx.testbed.proxy_url(PARIS)):
        pytest.skip("this testbed runs the plain mode (--catalog proxy): no HAProxy in front")
    return ctx


def haproxy_log(ctx: Context, site: str) -> LogTail:
    return LogTail(ctx.testbed.log_path(site, "haproxy"))


def took(tail: LogTail, backend: str) -> list[str]:
    """HAProxy's access lines (``option httplog``) of calls ``backend`` served."""
    return [line for line in tail.lines() if f" {backend}/" in line]


def records(tail: LogTail) -> Iterator[dict[str, Any]]:
    """The proxy's access lines (its log has other JSON lines too)."""
    return (r for r in tail.json_records() if "request_id" in r)


def test_unscoped_calls_go_straight_to_the_service_scoped_ones_to_the_proxy(
    haproxy_ctx: Context,
) -> None:
    ctx = haproxy_ctx
    front, proxy = haproxy_log(ctx, PARIS), ctx.access_log(PARIS)
    ctx.cli.run("image", "list", cloud=ctx.user(PARIS))
    assert took(front, "image_local") and took(front, "identity_local")
    assert not took(front, "edgescope_image") and not took(front, "edgescope_identity")
    reached = [r for r in records(proxy) if r.get("from_peer") is None]
    assert reached == [], "an unscoped call reached Paris's proxy"

    front, proxy = haproxy_log(ctx, PARIS), ctx.access_log(PARIS)
    listed = ctx.cli.json("image", "list", cloud=ctx.user(PARIS), scope="{glance: Corte}")
    assert any(image["Name"] == "debian" for image in listed)
    assert took(front, "edgescope_image") and not took(front, "image_local")
    routed = [r for r in proxy.json_records() if r["service"] == "image"]
    assert routed and all(r["sites"] == [CORTE] for r in routed), routed


def test_a_scoped_boots_own_service_calls_reach_the_proxy_by_their_request_id(
    haproxy_ctx: Context,
) -> None:
    """nova-scheduler -> placement carries nova's own token and the boot's global request id,
    nothing else: HAProxy tells the id edgescope minted and sends the call to the proxy,
    which finds the boot's scope for it, as it would with no HAProxy in front."""
    ctx = haproxy_ctx
    proxy = ctx.access_log(PARIS)
    boot(ctx, ctx.name("haproxy-rid"), "--image", "debian", site=PARIS,
         scope="{nova: Paris, glance: Corte}")  # fmt: skip
    seen = list(records(proxy))
    [create] = [
        r for r in seen
        if r["service"] == "compute" and r["method"] == "POST" and r["path"].endswith("/servers")
    ]  # fmt: skip
    minted = create["request_id"]
    assert create["carrier"] == "x-scope" and is_correlation_id(minted), create
    by_id = [r for r in seen if r["request_id"] == minted and r["carrier"] == "request-id"]
    services = {r["service"] for r in by_id}
    assert "placement" in services, f"no placement call of the boot reached the proxy: {seen}"
    assert all(r["sites"] == [PARIS] for r in by_id), by_id  # placement stays with nova


def test_with_its_proxy_down_a_site_refuses_scoped_calls_clearly_and_serves_the_rest(
    haproxy_ctx: Context,
) -> None:
    ctx = haproxy_ctx
    ctx.testbed.stop_service(PARIS, "proxy")
    try:
        deadline = time.monotonic() + 20
        while True:  # until HAProxy's health check has marked the proxy down (~2 s)
            scoped = ctx.cli.run(
                "image", "list", cloud=ctx.user(PARIS), scope="{glance: Corte}", check=False
            )
            if "no proxy of this site is up" in scoped.stderr or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert not scoped.ok and "no proxy of this site is up" in scoped.stderr, scoped.stderr
        assert "Traceback" not in scoped.stderr
        local = ctx.cli.json("image", "list", cloud=ctx.user(PARIS))
        assert any(image["Name"] == "debian" for image in local)
    finally:
        ctx.testbed.start_service(PARIS, "proxy")  # returns once HAProxy sees it up
    back = ctx.cli.json("image", "list", cloud=ctx.user(PARIS), scope="{glance: Corte}")
    assert any(image["Name"] == "debian" for image in back)
