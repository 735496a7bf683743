"""Which proxies a console watches, and with whose credentials.

From a testbed's state folder (each site's proxy, each site's admin from its
``clouds.yaml``, the WAN's state when it has one), or from proxy URLs and one operator's
credentials (the ``OS_*`` variables of the OpenStack client), used at each site's Keystone
through that site's proxy (``<proxy>/identity/v3`` unless told otherwise).

    targets = from_urls(["http://10.0.0.1:20190"], Credentials("admin", "pw"))
    view = from_testbed(Path("state-wan"))     # targets, wan_state, namespaces
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from yarl import URL

from edgescope.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Credentials:
    """An operator's password credentials at one site's Keystone (v3)."""

    username: str
    password: str = field(repr=False)
    project: str = "admin"
    user_domain: str = "Default"
    project_domain: str = "Default"

    def token_request(self) -> dict[str, object]:
        """The body of ``POST /v3/auth/tokens`` for a project-scoped token."""
        return {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.username,
                            "domain": {"name": self.user_domain},
                            "password": self.password,
                        }
                    },
                },
                "scope": {
                    "project": {"name": self.project, "domain": {"name": self.project_domain}}
                },
            }
        }


@dataclass(frozen=True, slots=True)
class Target:
    """One proxy the console watches."""

    site: str
    """The name the console shows until the proxy says its own (from its state events)."""
    url: str
    auth_url: str
    credentials: Credentials


@dataclass(frozen=True, slots=True)
class TestbedView:
    """What a console needs of a testbed: the proxies, the WAN, each site's namespace."""

    targets: tuple[Target, ...]
    wan_state: Path | None
    namespaces: Mapping[str, str]
    """Site -> its network namespace (``es-paris``) on a WAN testbed; empty on loopback."""


def from_urls(
    urls: Sequence[str], credentials: Credentials, auth_path: str = "/identity/v3"
) -> tuple[Target, ...]:
    """One target per proxy URL; each site's token from ``<url><auth_path>``."""
    if not urls:
        raise ConfigError("name at least one proxy (--proxy URL) or a testbed (--state-dir)")
    targets = []
    for url in urls:
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ConfigError(f"--proxy {url!r}: expected an http(s) URL such as http://host:port")
        base = str(parsed.with_path("").with_query(None)).rstrip("/")
        targets.append(Target(parsed.host, base, base + auth_path, credentials))
    return tuple(targets)


def from_testbed(state_dir: Path) -> TestbedView:
    """The proxies of the testbed in ``state_dir``, each watched as that site's admin."""
    from edgescope.testbed import Testbed

    testbed = Testbed.from_state(state_dir)
    clouds = _clouds(testbed.clouds_yaml)
    targets = []
    namespaces = {}
    for name, info in testbed.sites.items():
        cloud = clouds.get(info.cloud)
        if cloud is None:
            raise ConfigError(f"{testbed.clouds_yaml} has no cloud {info.cloud!r}: is it up?")
        auth = cloud["auth"]
        credentials = Credentials(
            auth["username"],
            auth["password"],
            auth.get("project_name", "admin"),
            auth.get("user_domain_name", "Default"),
            auth.get("project_domain_name", "Default"),
        )
        targets.append(Target(name, info.proxy_url, auth["auth_url"], credentials))
        prefix = list(info.exec_prefix)
        if prefix[:3] == ["ip", "netns", "exec"] and len(prefix) >= 4:
            namespaces[name] = prefix[3]
    return TestbedView(tuple(targets), testbed.wan_state, namespaces)


def _clouds(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    try:
        data = json.loads(path.read_text())  # the testbed writes it as JSON (valid YAML)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the testbed's {path}: {exc}") from None
    clouds: dict[str, dict[str, dict[str, str]]] = data.get("clouds", {})
    return clouds
