"""Site TOML: loads the documented format; every mistake names the key and the valid choices."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from edgescope.errors import ConfigError
from edgescope.proxy.config import load_config, parse_config

SITE_TOML = """
site = "Paris"
listen = "127.0.0.1:20190"
secret_file = "secret"
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
    (tmp_path / "secret").write_text("0123456789abcdef0123\n")
    (tmp_path / "paris.toml").write_text(SITE_TOML)
    config = load_config(tmp_path / "paris.toml")
    assert config.site == "Paris" and (config.host, config.port) == ("127.0.0.1", 20190)
    assert config.secret == b"0123456789abcdef0123"
    assert [s.type for s in config.services] == ["identity", "compute"]
    assert config.services[1].port == 20191 and config.services[0].prefix == "/identity"
    assert config.peer("Corte") is not None and config.peer("Corte").read_timeout == 30.0  # type: ignore[union-attr]
    assert config.identity is not None and config.identity.project == "service"


def base(**overrides: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "site": "Paris",
        "listen": "127.0.0.1:0",
        "secret": "s",
        "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:1"}],
    }
    raw.update(overrides)
    return raw


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"listen": "nowhere"}, "must be 'HOST:PORT'"),
        ({"site": "Par is"}, "not a site name"),
        ({"colour": "blue"}, "valid keys: breaker, identity, limits, listen"),
        ({"services": []}, "at least one service"),
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
        ({"peers": [{"name": "Paris", "url": "http://x"}]}, "this site's own name"),
        (
            {"peers": [{"name": "Corte", "url": "http://x", "read_timeout": "slow"}]},
            "expected a non-negative float",
        ),
        ({"limits": {"max_fanout": 2.5}}, "expected a non-negative int"),
        ({"limits": {"max_fanout": 2, "speed": 1}}, "valid keys: client_idle_timeout, hop_window"),
        ({"secret": ""}, "must not be empty"),
    ],
)
def test_mistakes_are_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_config(base(**overrides))


def test_missing_secret_file_and_short_secret(tmp_path: Path) -> None:
    raw = base(secret_file=str(tmp_path / "nope"))
    del raw["secret"]
    with pytest.raises(ConfigError, match="cannot read"):
        parse_config(raw)
    (tmp_path / "short").write_text("abc")
    raw["secret_file"] = str(tmp_path / "short")
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        parse_config(raw)


def test_bad_toml_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("site = ")
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_config(tmp_path / "bad.toml")


def test_delegate_roles_default_to_admin_and_are_validated() -> None:
    creds = {"auth_url": "http://127.0.0.1:1/v3", "username": "u", "password": "p", "project": "s"}
    config = parse_config(base(identity=creds))
    assert config.identity is not None and config.identity.delegate_roles == ("admin",)
    config = parse_config(base(identity={**creds, "delegate_roles": []}))
    assert config.identity is not None and config.identity.delegate_roles == ()
    for bad in ("admin", [""], [1]):
        with pytest.raises(ConfigError, match=r"identity\.delegate_roles: expected a list"):
            parse_config(base(identity={**creds, "delegate_roles": bad}))
