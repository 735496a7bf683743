"""The testbed's HAProxy (``--catalog haproxy``): made from the site's proxy config, accepted
by Debian's HAProxy, fronting each API at the catalog's port with the fast path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from edgescope.testbed import haproxy
from edgescope.testbed.configs import Credentials, render_site
from edgescope.testbed.layout import SERVICE_TYPES, SitePlan
from edgescope.testbed.pki import Pki


def written_site(tmp_path: Path, **plan_options: object) -> SitePlan:
    paris = SitePlan.make("Paris", 1, tmp_path, **plan_options)  # type: ignore[arg-type]
    corte = SitePlan.make("Corte", 2, tmp_path)
    security = Pki(tmp_path / "pki").ensure([paris, corte])
    files = render_site(paris, Credentials.generate(), transport_url="rabbit://x@h:1/v",
                        peers=[corte], security=security)  # fmt: skip
    for rel, text in files.items():
        (paris.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (paris.root / rel).write_text(text)
    return paris


def test_each_api_is_fronted_at_its_catalog_port_scoped_calls_to_the_proxy(
    tmp_path: Path,
) -> None:
    plan = written_site(tmp_path, bind_host="10.77.0.2")
    text = haproxy.render_config(plan)
    for service in SERVICE_TYPES:
        assert f"bind 10.77.0.2:{plan.haproxy_port(service)}\n" in text, service
        assert f"server local 10.77.0.2:{plan.port(service)}\n" in text, service
        assert f"10.77.0.2:{plan.proxy_listener_port(service)} check inter 1s" in text, service
    assert "acl edgescope_scoped req.hdr(X-Auth-Token) -m sub ~scope~" in text
    assert "X-OpenStack-Request-ID) -m reg" in text  # the request-id carrier, too
    assert "return status 503" in text  # no proxy up: scoped calls refused (closed)
    assert f"stats socket {plan.run / 'haproxy.sock'}" in text
    assert "option httplog" in text


@pytest.mark.skipif(shutil.which("haproxy") is None, reason="haproxy not installed")
def test_debians_haproxy_accepts_the_sites_config(tmp_path: Path) -> None:
    plan = written_site(tmp_path)
    (plan.run).mkdir(parents=True, exist_ok=True)
    path = haproxy.write_config(plan)
    done = subprocess.run(["haproxy", "-c", "-f", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert haproxy.launch(plan).argv[-3:] == ["-db", "-f", str(path)]
    assert haproxy.launch(plan).health_url == "http://127.0.0.1:20110/"


def test_a_broken_proxy_config_is_a_clear_testbed_error(tmp_path: Path) -> None:
    from edgescope.testbed.layout import TestbedError

    plan = written_site(tmp_path)
    (plan.etc / "proxy.toml").write_text('site = "Paris"\n')
    with pytest.raises(TestbedError, match="Paris: cannot make the HAProxy config"):
        haproxy.render_config(plan)


STAT = """# pxname,svname,qcur,status,weight
identity,FRONTEND,,OPEN,
identity_local,local,0,no check,1
edgescope_identity,edgescope,0,UP,1
edgescope_identity,BACKEND,0,UP,1
edgescope_image,edgescope,0,DOWN 1/2,1
"""


def test_what_haproxy_sees_of_the_proxy_is_read_from_show_stat() -> None:
    states = haproxy.parse_stat(STAT)
    assert states == {"edgescope_identity/edgescope": "UP", "edgescope_image/edgescope": "DOWN 1/2"}


def test_no_haproxy_answering_is_none_not_an_error(tmp_path: Path) -> None:
    plan = SitePlan.make("Paris", 1, tmp_path)
    assert haproxy.backend_states(plan) is None
    assert not haproxy.proxy_seen_up(plan)
