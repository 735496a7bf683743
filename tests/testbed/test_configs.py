"""The rendered service configs carry the settings without which a site fails."""

from __future__ import annotations

import configparser
import sys
import tomllib
from dataclasses import asdict
from pathlib import Path

import pytest

from edgescope.proxy.config import parse_config
from edgescope.testbed import configs
from edgescope.testbed.configs import Credentials, render_site
from edgescope.testbed.layout import SitePlan
from edgescope.testbed.pki import Pki

URL = "rabbit://paris:pw@127.0.0.1:25672/paris"


@pytest.fixture
def files(tmp_path: Path) -> dict[str, configparser.RawConfigParser]:
    paris = SitePlan.make("Paris", 1, tmp_path)
    corte = SitePlan.make("Corte", 2, tmp_path)
    security = Pki(tmp_path / "pki").ensure([paris, corte])
    texts = render_site(paris, Credentials.generate(), transport_url=URL, peers=[corte],
                        security=security)  # fmt: skip
    parsed = {}
    for name, text in texts.items():
        if name.endswith((".conf", ".ini")):
            parser = configparser.RawConfigParser(strict=True)
            parser.read_string(text)
            parsed[name] = parser
    parsed["proxy"] = texts["etc/proxy.toml"]  # type: ignore[assignment]
    return parsed


def test_keystone_cache_is_on(files: dict[str, configparser.RawConfigParser]) -> None:
    keystone = files["etc/keystone/keystone.conf"]
    assert keystone.get("cache", "enabled") == "true"
    assert keystone.get("token", "provider") == "fernet"


def test_every_database_url_has_a_busy_timeout(
    files: dict[str, configparser.RawConfigParser],
) -> None:
    urls = [
        value
        for name, conf in files.items()
        if name != "proxy"
        for section in conf.sections()
        for key, value in conf.items(section)
        if key == "connection"
    ]
    assert len(urls) == 6
    suffix = "?timeout=30&plugin=edgescope_immediate"
    assert all(url.startswith("sqlite:///") and url.endswith(suffix) for url in urls)


def test_nova_compute_can_restart_and_sees_no_database(
    files: dict[str, configparser.RawConfigParser],
) -> None:
    nova = files["etc/nova/nova.conf"]
    assert nova.get("DEFAULT", "compute_driver") == "fake.FakeDriverWithoutFakeNodes"
    assert not nova.has_section("database") and not nova.has_section("api_database")
    assert nova.get("DEFAULT", "transport_url") == URL


def test_neutron_runs_ml2_ovn_on_the_sites_own_ovn(
    files: dict[str, configparser.RawConfigParser], tmp_path: Path
) -> None:
    ml2 = files["etc/neutron/plugins/ml2/ml2_conf.ini"]
    assert ml2.get("ml2", "mechanism_drivers") == "ovn"
    assert ml2.get("ml2", "tenant_network_types") == "geneve"
    # the driver exits at start if the Geneve header room is below 38
    assert int(ml2.get("ml2_type_geneve", "max_header_size")) >= 38
    run = tmp_path.resolve() / "sites" / "Paris" / "run" / "ovn"
    assert ml2.get("ovn", "ovn_nb_connection") == f"unix:{run}/ovnnb_db.sock"
    assert ml2.get("ovn", "ovn_sb_connection") == f"unix:{run}/ovnsb_db.sock"
    neutron = files["etc/neutron/neutron.conf"]
    assert neutron.get("DEFAULT", "service_plugins") == "ovn-router"
    assert neutron.get("DEFAULT", "notify_nova_on_port_status_changes") == "true"
    assert neutron.get("nova", "username") == "nova"


def test_without_ovn_neutron_has_no_mechanism_driver(tmp_path: Path) -> None:
    plan = SitePlan.make("Paris", 1, tmp_path)
    texts = render_site(plan, Credentials.generate(), transport_url=URL, ovn=False)
    ml2 = configparser.RawConfigParser(strict=True)
    ml2.read_string(texts["etc/neutron/plugins/ml2/ml2_conf.ini"])
    assert ml2.get("ml2", "mechanism_drivers") == ""
    assert ml2.get("ml2", "tenant_network_types") == ""
    assert "ovn" not in ml2.sections()


def test_nova_sends_a_service_token(files: dict[str, configparser.RawConfigParser]) -> None:
    """cinder refuses nova's detach of an in-use volume without one (HTTP 409)."""
    nova = files["etc/nova/nova.conf"]
    assert nova.get("service_user", "send_service_user_token") == "true"
    assert nova.get("service_user", "username") == "nova"
    assert nova.get("cinder", "os_region_name") == "Paris"


def test_services_authenticate_through_the_sites_haproxy(
    files: dict[str, configparser.RawConfigParser],
) -> None:
    for name in ("etc/glance/glance-api.conf", "etc/nova/nova.conf"):
        auth_url = files[name].get("keystone_authtoken", "auth_url")
        assert auth_url == "http://127.0.0.1:20110/v3"
    public = files["etc/glance/glance-api.conf"].get("DEFAULT", "public_endpoint")
    assert public == "http://127.0.0.1:20111"


def test_in_the_plain_mode_services_authenticate_through_the_proxy(tmp_path: Path) -> None:
    paris = SitePlan.make("Paris", 1, tmp_path, catalog="proxy")
    security = Pki(tmp_path / "pki").ensure([paris])
    texts = render_site(paris, Credentials.generate(), transport_url=URL, security=security)
    assert "auth_url = http://127.0.0.1:20190/identity/v3" in texts["etc/nova/nova.conf"]
    config = parse_config(tomllib.loads(texts["etc/proxy.toml"]), base_dir=tmp_path)
    assert config.service("image").prefix == "/image"  # type: ignore[union-attr]
    assert "haproxy" not in config.extension_tables


def test_proxy_config_is_accepted_by_the_proxy(
    files: dict[str, configparser.RawConfigParser], tmp_path: Path
) -> None:
    config = parse_config(tomllib.loads(str(files["proxy"])), base_dir=tmp_path)
    assert config.site == "Paris" and config.port == 20190
    assert config.peer_listen == ("127.0.0.1", 20191)  # peers over mutual TLS
    assert config.tls is not None and config.tls.require_client_cert
    [corte] = config.peers
    assert str(corte.url) == "https://127.0.0.1:20291" and len(corte.public_keys) == 1
    assert {s.type for s in config.services} == {
        "identity", "image", "placement", "compute", "network", "block-storage"
    }  # fmt: skip
    assert [p.name for p in config.peers] == ["Corte"]
    assert config.identity is not None and config.identity.username == "edgescope"
    image = config.service("image")
    assert image is not None and str(image.backend) == "http://127.0.0.1:20101"
    assert image.port == 20181 and image.prefix is None  # its own listener, behind HAProxy
    assert config.extension_tables["haproxy"]["ports"]["image"] == 20111


def test_each_site_gets_its_own_passwords(tmp_path: Path) -> None:
    first = Credentials.load_or_create(tmp_path / "a" / "credentials.json")
    again = Credentials.load_or_create(tmp_path / "a" / "credentials.json")
    other = Credentials.load_or_create(tmp_path / "b" / "credentials.json")
    assert first == again and first.admin != other.admin
    assert (tmp_path / "a" / "credentials.json").stat().st_mode & 0o077 == 0


def test_generated_passwords_are_never_read_as_options() -> None:
    """A password starting with ``-`` made ``rabbitmqctl add_user`` fail in CI; hex never does."""
    for _ in range(200):
        for password in asdict(Credentials.generate()).values():
            assert len(password) >= 32
            assert all(c in "0123456789abcdef" for c in password)


def test_glance_fails_with_503_not_401_when_the_identity_site_is_unreachable() -> None:
    """glance's shipped paste file delays the auth decision; the testbed turns that off."""
    shipped = (Path(sys.prefix) / "etc" / "glance" / "glance-api-paste.ini").read_text()
    assert "delay_auth_decision = true" in shipped  # upstream still ships it on
    adjusted = configs.adjust_paste("glance/glance-api-paste.ini", shipped)
    changed = [
        (a, b) for a, b in zip(shipped.splitlines(), adjusted.splitlines(), strict=True) if a != b
    ]
    assert changed == [("delay_auth_decision = true", "delay_auth_decision = false")]
    assert configs.adjust_paste("nova/api-paste.ini", shipped) == shipped


def test_every_proxy_has_the_directory_and_a_joined_site_only_its_seed(tmp_path: Path) -> None:
    from edgescope.cli.extensions import build_extensions
    from edgescope.directory.gossip import Directory
    from edgescope.testbed import Testbed

    Testbed.create(tmp_path, ["Paris", "Corte"])
    testbed = Testbed.from_state(tmp_path)
    testbed.joined["Vancouver"] = "Paris"  # what `join` records before starting the site
    testbed.plans.append(SitePlan.make("Vancouver", 3, tmp_path))
    testbed._save()
    testbed = Testbed.from_state(tmp_path)
    assert testbed.joined == {"Vancouver": "Paris"}
    paris, vancouver = testbed.site("Paris"), testbed.site("Vancouver")
    assert [p.name for p in paris.peers] == ["Corte"]  # nobody lists the newcomer
    assert vancouver.peers == [] and vancouver.seeds == [testbed.site("Paris").plan.peer_url]
    for site in (paris, vancouver):
        text = render_site(site.plan, Credentials.generate(), transport_url=URL,
                           peers=site.peers, security=site.security, seeds=site.seeds)  # fmt: skip
        config = parse_config(tomllib.loads(text["etc/proxy.toml"]), base_dir=tmp_path)
        [directory] = [e for e in build_extensions(config, None) if isinstance(e, Directory)]
        assert directory.config.url == site.plan.peer_url
        expected = site.seeds or [p.peer_url for p in site.peers]
        assert list(directory.config.seeds) == expected
        entry = directory.publish()  # its endorsement is admitted under the testbed authority
        assert entry.site == site.plan.name
