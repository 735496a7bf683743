"""Site TOML: loads the documented format; every mistake names the key and the valid choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import sitekeys
from edgescope.errors import ConfigError
from edgescope.proxy import keys
from edgescope.proxy.config import load_config, parse_config

SITE_TOML = """
site = "Paris"
listen = "127.0.0.1:20190"
private_key_file = "paris.key"
[[services]]
type = "keystone"
prefix = "/identity"
backend = "http://127.0.0.1:20100"
[[services]]
type = "compute"
port = 20191
backend = "http://127.0.0.1:8774"
[[peers]]
name = "Corte"
url = "http://127.0.0.1:20290"
public_key = "CORTE_KEY"
connect_timeout = 2.0
read_timeout = 30.0
[identity]
auth_url = "http://127.0.0.1:20100/v3"
username = "edgescope"
password = "pw"
project = "service"
user_domain = "Default"
project_domain = "Default"
"""


def test_documented_format_loads(tmp_path: Path) -> None:
    paris, corte = keys.generate(), keys.generate()
    (tmp_path / "paris.key").write_bytes(keys.private_pem(paris))
    toml = SITE_TOML.replace("CORTE_KEY", keys.public_text(corte.public_key()))
    (tmp_path / "paris.toml").write_text(toml)
    config = load_config(tmp_path / "paris.toml")
    assert config.site == "Paris" and (config.host, config.port) == ("127.0.0.1", 20190)
    assert keys.public_text(config.private_key.public_key()) == keys.public_text(paris.public_key())
    [corte_key] = config.public_keys("Corte")
    assert keys.public_text(corte_key) == keys.public_text(corte.public_key())
    assert config.public_keys("Lyon") == ()
    assert [s.type for s in config.services] == ["identity", "compute"]
    assert config.services[1].port == 20191 and config.services[0].prefix == "/identity"
    assert config.peer("Corte") is not None and config.peer("Corte").read_timeout == 30.0  # type: ignore[union-attr]
    assert config.identity is not None and config.identity.project == "service"


def base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "site": "Paris",
        "listen": "127.0.0.1:0",
        "private_key": sitekeys.private("Paris"),
        "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:1"}],
    }
    raw.update(overrides)
    return raw


KEY = sitekeys.public("Corte")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen": "nowhere"}, "must be 'HOST:PORT'"),
        ({"site": "Par is"}, "not a site name"),
        (
            {"colour": "blue"},
            "valid keys: breaker, carriers, hedging, identity",
        ),
        ({"services": []}, "at least one service"),
        ({"hedging": {"floor": 3.0}}, "hedging.floor (3.0) is above hedging.ceiling (2.0)"),
        ({"hedging": {"max_extra": 1.5}}, "hedging.max_extra: expected a non-negative int"),
        (
            {"services": [{"type": "image", "backend": "http://x"}]},
            "exactly one of 'prefix' or 'port'",
        ),
        (
            {"services": [{"type": "Image!", "prefix": "/i", "backend": "http://x"}]},
            "use one of compute, image, identity",
        ),
        (
            {"services": [{"type": "image", "prefix": "/i", "backend": "ftp://x"}]},
            "http:// or https://",
        ),
        (
            {"services": [{"type": "image", "prefix": "/edgescope", "backend": "http://x"}]},
            "reserved",
        ),
        (
            {
                "services": [
                    {"type": "glance", "prefix": "/a", "backend": "http://x"},
                    {"type": "image", "prefix": "/b", "backend": "http://x"},
                ]
            },
            "duplicate type",
        ),
        ({"peers": [{"name": "Paris", "url": "http://x", "public_key": KEY}]}, "own name"),
        (
            {"peers": [{"name": "Corte", "url": "http://x", "read_timeout": "slow"}]},
            "expected a non-negative float",
        ),
        ({"peers": [{"name": "Corte", "url": "http://x"}]}, "give the peer's 'public_key'"),
        ({"peers": [{"name": "C", "url": "http://x", "public_key": "rsa:x"}]}, "ed25519:<base64>"),
        ({"peers": [{"name": "C", "url": "http://x", "public_key": "ed25519:AAAA"}]}, "32 bytes"),
        ({"secret": "s" * 20}, "each site signs with its own key"),
        ({"private_key": "ed25519:!!"}, "not base64"),
        ({"tls": {"cert_file": "/nope", "key_file": "/nope"}}, "not a readable file"),
        ({"limits": {"max_fanout": 2.5}}, "expected a non-negative int"),
        ({"limits": {"max_fanout": 2, "speed": 1}}, "valid keys: client_idle_timeout, hop_window"),
    ],
)
def test_mistakes_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(base(**overrides))


def test_missing_or_bad_key_files(tmp_path: Path) -> None:
    raw = base()
    del raw["private_key"]
    with pytest.raises(ConfigError, match="missing 'private_key_file'"):
        parse_config(raw)
    raw["private_key_file"] = str(tmp_path / "nope")
    with pytest.raises(ConfigError, match="cannot read"):
        parse_config(raw)
    (tmp_path / "junk").write_text("abc")
    raw["private_key_file"] = str(tmp_path / "junk")
    with pytest.raises(ConfigError, match="not an unencrypted PEM key"):
        parse_config(raw)


def test_mutual_tls_needs_a_ca(tmp_path: Path) -> None:
    for name in ("c.pem", "k.pem"):
        (tmp_path / name).write_text("x")
    tls = {"cert_file": "c.pem", "key_file": "k.pem"}
    with pytest.raises(ConfigError, match=r"needs tls\.ca_file"):
        parse_config(base(tls=tls), base_dir=tmp_path)
    config = parse_config(base(tls={**tls, "require_client_cert": False}), base_dir=tmp_path)
    assert config.tls is not None and config.tls.cert_file == tmp_path / "c.pem"


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("site = ")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path / "bad.toml")


def test_delegation_is_per_peer_and_off_unless_written() -> None:
    creds = {"auth_url": "http://127.0.0.1:1/v3", "username": "u", "password": "p", "project": "s"}
    config = parse_config(base(identity=creds))
    assert config.trust.of("Corte", configured=True).delegate_roles == ()
    trust = {"sites": {"Corte": {"delegate_roles": ["admin"]}}}
    config = parse_config(base(identity=creds, trust=trust))
    assert config.trust.of("Corte", configured=True).delegate_roles == ("admin",)
    assert config.trust.of("Lyon", configured=True).delegate_roles == ()
    with pytest.raises(ConfigError, match=r"identity\.delegate_roles is gone.*trust\.sites"):
        parse_config(base(identity={**creds, "delegate_roles": ["admin"]}))
    for bad in ("admin", [""], [1]):
        with pytest.raises(ConfigError, match=r"trust\.sites\.Corte\.delegate_roles: expected"):
            parse_config(base(trust={"sites": {"Corte": {"delegate_roles": bad}}}))


def test_the_trust_table_is_validated_with_clear_errors() -> None:
    config = parse_config(base())
    assert config.trust.configured == {"route", "replicas", "directory"}
    assert config.trust.learned == {"route"}
    config = parse_config(
        base(trust={"learned": ["route", "directory"], "sites": {"Lyon": {"may": []}}})
    )
    assert config.trust.learned == {"route", "directory"}
    assert config.trust.of("Lyon", configured=False).may == frozenset()
    for bad, message in (
        ({"learned": ["route", "admin"]}, r"trust\.learned: unknown capability 'admin'"),
        ({"configured": ["delegate"]}, r"unknown capability 'delegate' \(delegation is"),
        ({"learned": "route"}, r"trust\.learned: expected a list"),
        ({"sites": {"Lyon": {"may": ["route"], "roles": []}}}, r"unknown key 'roles'"),
        ({"sites": {"bad name": {}}}, r"trust\.sites\.bad name: 'bad name' is not a site"),
        ({"everyone": True}, r"\[trust\]: unknown key 'everyone'"),
        ([], r"\[trust\]: expected a table"),
    ):
        with pytest.raises(ConfigError, match=message):
            parse_config(base(trust=bad))
