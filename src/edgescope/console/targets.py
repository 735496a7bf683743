"""Which proxies a console watches, and with whose credentials.

From a testbed's state folder (each site's proxy, each site's admin from its
``clouds.yaml``, the WAN's state when it has one), or from proxy URLs, each with the
credentials of its own site: one ``clouds.yaml`` entry per proxy (:func:`from_clouds`,
read with openstacksdk's own loader: its search path, ``secure.yaml``; never the ``OS_*``
variables). One password for every site is refused; the ``OS_*`` credentials
(:func:`from_urls`) serve a console of one proxy only.

Passwords and tokens never cross a network in clear: a proxy or Keystone URL in plain
``http`` must be on a loopback address, unless ``allow_http`` (``--allow-http``) says so.

    targets = from_clouds([("https://paris.example:20190", "paris")])
    targets = from_urls(["http://127.0.0.1:20190"], Credentials("admin", "pw"))
    view = from_testbed(Path("state-wan"))     # targets, wan_state, namespaces
"""

from __future__ import annotations

import ipaddress
import json
import warnings
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
    urls: Sequence[str],
    credentials: Credentials,
    auth_path: str = "/identity/v3",
    *,
    allow_http: bool = False,
) -> tuple[Target, ...]:
    """One target per proxy URL; each site's token from ``<url><auth_path>``. One set of
    credentials for one proxy only: several sites each need their own (:func:`from_clouds`)."""
    if not urls:
        raise ConfigError("name at least one proxy (--proxy URL) or a testbed (--state-dir)")
    if len(urls) > 1:
        raise ConfigError(
            "one password for several sites would go to every site's Keystone: give each "
            "--proxy its own credentials with --cloud NAME (an entry of clouds.yaml)"
        )
    targets = []
    for url in urls:
        base = _base(url, allow_http)
        host = URL(base).host or base
        targets.append(Target(host, base, _checked(base + auth_path, allow_http), credentials))
    return tuple(targets)


def from_clouds(
    pairs: Sequence[tuple[str, str]],
    clouds_file: Path | None = None,
    *,
    allow_http: bool = False,
) -> tuple[Target, ...]:
    """One target per ``(proxy URL, cloud name)``, shown by the cloud's name: each site's
    operator from its own entry of ``clouds.yaml`` (``clouds_file``, else openstacksdk's
    search path)."""
    if not pairs:
        raise ConfigError("name at least one proxy (--proxy URL) or a testbed (--state-dir)")
    targets = []
    for url, cloud in pairs:
        base = _base(url, allow_http)
        auth = cloud_auth(cloud, clouds_file)
        missing = [k for k in ("auth_url", "username", "password") if not auth.get(k)]
        if missing:
            raise ConfigError(f"cloud {cloud!r}: its auth has no {', '.join(missing)}")
        credentials = Credentials(
            str(auth["username"]),
            str(auth["password"]),
            str(auth.get("project_name") or "admin"),
            str(auth.get("user_domain_name") or "Default"),
            str(auth.get("project_domain_name") or "Default"),
        )
        auth_url = _checked(str(auth["auth_url"]).rstrip("/"), allow_http, f"cloud {cloud!r}")
        targets.append(Target(cloud, base, auth_url, credentials))
    return tuple(targets)


def cloud_auth(cloud: str, clouds_file: Path | None = None) -> dict[str, object]:
    """The ``auth`` of ``cloud`` in ``clouds.yaml`` (and ``secure.yaml``), never ``OS_*``."""
    try:
        with warnings.catch_warnings():  # openstacksdk warns of its own deprecations on import
            warnings.simplefilter("ignore")
            from openstack.config.loader import OpenStackConfig

            from openstack import exceptions
    except ImportError:
        raise ConfigError(
            "--cloud reads clouds.yaml with openstacksdk: pip install openstacksdk"
        ) from None
    files = [str(clouds_file)] if clouds_file is not None else None
    if clouds_file is not None and not clouds_file.is_file():
        raise ConfigError(f"--clouds-file {clouds_file}: no such file")
    try:
        with warnings.catch_warnings():  # and of its metrics options when it loads a cloud
            warnings.simplefilter("ignore")
            config = OpenStackConfig(config_files=files, load_envvars=False)
            region = config.get_one(cloud=cloud, validate=False)
    except exceptions.ConfigException as exc:
        raise ConfigError(f"--cloud {cloud!r}: {exc}") from None
    auth = region.config.get("auth") or {}
    return dict(auth)


def _base(url: str, allow_http: bool) -> str:
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"--proxy {url!r}: expected an http(s) URL such as http://host:port")
    return _checked(str(parsed.with_path("").with_query(None)).rstrip("/"), allow_http)


def _checked(url: str, allow_http: bool, where: str = "--proxy") -> str:
    """``url``, unless it is plain http to an address off this host (credentials in clear)."""
    parsed = URL(url)
    if parsed.scheme == "http" and not allow_http and not _is_loopback(parsed.host or ""):
        raise ConfigError(
            f"{where}: {url} is plain http to another host: the operator's password and "
            "token would cross the network in clear; use https, or --allow-http to accept it"
        )
    return url


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


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
