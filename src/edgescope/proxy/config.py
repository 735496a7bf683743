"""Per-site proxy configuration: frozen dataclasses loaded from one TOML file, validated at load.

Neighbours: ``server.py`` builds the aiohttp app from a :class:`ProxyConfig`; ``cli/proxy.py``
loads it (``edgescope proxy run --config site.toml``) and ``gen_config.py`` writes one from a
Keystone catalog. Every error is a :class:`~edgescope.errors.ConfigError` naming the key and,
where there is a closed set, the valid choices.

    >>> config = parse_config({"site": "Paris", "listen": "127.0.0.1:0", "secret": "s3cret",
    ...     "services": [{"type": "glance", "prefix": "/image", "backend": "http://127.0.0.1:9292"}]})
    >>> config.services[0].type
    'image'

The file format (also in docs/proxy.md)::

    site = "Paris"
    listen = "127.0.0.1:20190"
    secret_file = "/path/shared-secret"
    [[services]]        type = "identity"  prefix = "/identity"  backend = "http://127.0.0.1:20100"
    [[peers]]           name = "Corte"  url = "http://127.0.0.1:20290"
                        connect_timeout = 2.0  read_timeout = 30.0
    [identity]          auth_url, username, password, project, user_domain, project_domain,
                        delegate_roles = ["admin"]
    [limits]            max_scope_bytes = 4096  max_fanout = 64  max_hops = 4  hop_window = 30.0
    [breaker]           failure_threshold = 3  open_seconds = 5.0  probe_interval = 2.0
    [replicas]          read by the replicas extension, not here (EXTENSION_TABLES)
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from yarl import URL

from edgescope.errors import ConfigError
from edgescope.lang.registry import DEFAULT_REGISTRY
from edgescope.proxy.protocol import RESERVED_PREFIX

CANONICAL_SERVICES = DEFAULT_REGISTRY.services
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SITE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


EXTENSION_TABLES = frozenset({"replicas"})
"""Tables of the site TOML that belong to an extension: kept raw for whoever builds it."""


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """One local service: where clients reach it on the proxy, and where the real one listens."""

    type: str
    """Canonical service type (``compute``) or a custom lower-case name (``catalog``)."""
    backend: URL
    prefix: str | None = None
    """Path prefix on the main listener, e.g. ``/image``; exclusive with ``port``."""
    port: int | None = None
    """Dedicated listen port (same host as ``listen``); exclusive with ``prefix``."""


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Another site's proxy."""

    name: str
    url: URL
    connect_timeout: float = 2.0
    read_timeout: float = 30.0


@dataclass(frozen=True, slots=True)
class IdentityCredentials:
    """The site's own service account, used to validate tokens on behalf of peers."""

    auth_url: URL
    username: str
    password: str = field(repr=False)
    project: str
    user_domain: str = "Default"
    project_domain: str = "Default"
    delegate_roles: tuple[str, ...] = ("admin",)
    """Roles a peer site's user must hold for this site to act for them on its own Keystone
    (``{keystone: ...}`` calls with a foreign token, docs/security.md); empty: never."""


@dataclass(frozen=True, slots=True)
class Limits:
    """Guards against bad input."""

    max_scope_bytes: int = 4096
    """Largest scope carrier accepted (header value or decoded piggyback); over it: 431."""
    max_fanout: int = 64
    """Most sites one request may touch; over it: 400."""
    max_scope_sites: int = 128
    """Most sites one scope may name (all services together), checked before parsing."""
    max_hops: int = 4
    """Most proxy-to-proxy hops of one call; over it: 508 (a routing loop)."""
    hop_window: float = 30.0
    """Seconds a signed hop marker stays valid (clock skew plus transit)."""
    max_merge_bytes: int = 16 * 1024 * 1024
    """Largest branch body an ``&`` reads whole to merge; over it: 507."""
    max_merge_total: int = 32 * 1024 * 1024
    """Largest size of all the branch bodies of one ``&`` together; over it: 507."""
    max_merge_items: int = 200_000
    """Most items (JSON objects) a merge parses, counted before parsing; over it: 507."""
    client_idle_timeout: float = 30.0
    """Seconds a client may keep a connection without a complete request head (idle, or a
    slow head), or send nothing of its body; then the connection is closed (408 for a body)."""
    max_spool_bytes: int = 1024 * 1024 * 1024
    """Largest request body kept to be resent (``|``, or ``&`` with a ``|`` inside); 413."""
    max_spools: int = 16
    """Most calls keeping a body to resend at once; past it a 503."""
    max_connections: int = 1024
    """Most connections one listener holds at once; past it a new one gets a 503."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Per-peer circuit breaker."""

    failure_threshold: int = 3
    open_seconds: float = 5.0
    probe_interval: float = 2.0
    """Seconds between light health probes of each peer (0 disables probing)."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """A whole site proxy."""

    site: str
    host: str
    port: int
    secret: bytes = field(repr=False)
    services: tuple[ServiceConfig, ...]
    peers: tuple[PeerConfig, ...] = ()
    identity: IdentityCredentials | None = None
    limits: Limits = Limits()
    breaker: BreakerConfig = BreakerConfig()
    extension_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Raw ``[replicas]``-style tables, for the extensions' own parsers."""
    base_dir: Path | None = None
    """The config file's folder: relative paths in extension tables are from here."""

    peer_index: dict[str, PeerConfig] = field(init=False, repr=False, compare=False)
    """Peers by name (a call to a 1000-site fan-out looks each one up)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "peer_index", {p.name: p for p in self.peers})

    def peer(self, name: str) -> PeerConfig | None:
        return self.peer_index.get(name)

    def service(self, service_type: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.type == service_type), None)

    @property
    def site_names(self) -> tuple[str, ...]:
        """This site first, then its peers."""
        return (self.site, *(p.name for p in self.peers))


def canonical_service(name: str) -> str:
    """``nova`` -> ``compute``; canonical and custom names pass through."""
    return DEFAULT_REGISTRY.canonical(name) or name.lower()


def load_config(path: str | Path) -> ProxyConfig:
    """Read and validate a site TOML file; relative ``secret_file`` paths are from the file."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read proxy config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return parse_config(data, base_dir=path.parent)


def parse_config(data: Mapping[str, Any], base_dir: Path | None = None) -> ProxyConfig:
    """Validate a decoded TOML document; ``secret`` (inline) may replace ``secret_file``."""
    _only(
        data,
        "",
        {
            "site",
            "listen",
            "secret_file",
            "secret",
            "services",
            "peers",
            "identity",
            "limits",
            "breaker",
            *EXTENSION_TABLES,
        },
    )
    site = _site_name(_req(data, "site", str, ""), "site")
    host, port = _listen(_req(data, "listen", str, ""))
    services = tuple(_service(s, i) for i, s in enumerate(_list(data, "services")))
    if not services:
        raise ConfigError("[[services]]: at least one service is required")
    _check_unique([s.type for s in services], "services", "type")
    _check_unique([s.prefix for s in services if s.prefix], "services", "prefix")
    _check_unique([s.port for s in services if s.port], "services", "port")
    peers = tuple(_peer(p, i) for i, p in enumerate(_list(data, "peers")))
    _check_unique([p.name for p in peers], "peers", "name")
    if site in {p.name for p in peers}:
        raise ConfigError(f"peers: {site!r} is this site's own name")
    identity = _identity(data["identity"]) if "identity" in data else None
    limits = Limits(**_numbers(data.get("limits", {}), "limits", Limits()))
    breaker = BreakerConfig(**_numbers(data.get("breaker", {}), "breaker", BreakerConfig()))
    return ProxyConfig(
        site=site,
        host=host,
        port=port,
        secret=_secret(data, base_dir),
        services=services,
        peers=peers,
        identity=identity,
        limits=limits,
        breaker=breaker,
        extension_tables=_extension_tables(data),
        base_dir=base_dir,
    )


def _extension_tables(data: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    tables = {}
    for name in sorted(EXTENSION_TABLES & set(data)):
        if not isinstance(data[name], Mapping):
            raise ConfigError(f"[{name}]: expected a table")
        tables[name] = data[name]
    return tables


def _service(raw: Any, index: int) -> ServiceConfig:
    where = f"services[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _only(raw, where, {"type", "prefix", "port", "backend"})
    service_type = canonical_service(_req(raw, "type", str, where))
    if not _NAME.match(service_type):
        raise ConfigError(
            f"{where}.type: {service_type!r} is not a service type; use one of "
            f"{', '.join(CANONICAL_SERVICES)} (or a lower-case custom name)"
        )
    prefix, port = raw.get("prefix"), raw.get("port")
    if (prefix is None) == (port is None):
        raise ConfigError(f"{where}: give exactly one of 'prefix' or 'port'")
    if prefix is not None:
        if not isinstance(prefix, str) or not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix):
            raise ConfigError(f"{where}.prefix: {prefix!r} must look like '/image' (no trailing /)")
        if prefix == RESERVED_PREFIX or prefix.startswith(RESERVED_PREFIX + "/"):
            raise ConfigError(f"{where}.prefix: {RESERVED_PREFIX} is reserved for the proxy")
    if port is not None and (not isinstance(port, int) or not 0 <= port < 65536):
        raise ConfigError(f"{where}.port: {port!r} is not a TCP port")
    return ServiceConfig(
        service_type,
        _http_url(_req(raw, "backend", str, where), f"{where}.backend"),
        prefix=prefix,
        port=port,
    )


def _peer(raw: Any, index: int) -> PeerConfig:
    where = f"peers[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _only(raw, where, {"name", "url", "connect_timeout", "read_timeout"})
    numbers = _numbers(
        {k: raw[k] for k in ("connect_timeout", "read_timeout") if k in raw},
        where,
        PeerConfig("x", URL("http://x")),
    )
    return PeerConfig(
        _site_name(_req(raw, "name", str, where), f"{where}.name"),
        _http_url(_req(raw, "url", str, where), f"{where}.url"),
        **numbers,
    )


def _identity(raw: Any) -> IdentityCredentials:
    if not isinstance(raw, Mapping):
        raise ConfigError("[identity]: expected a table")
    keys = ("auth_url", "username", "password", "project", "user_domain", "project_domain")
    _only(raw, "identity", {*keys, "delegate_roles"})
    values = {k: _req(raw, k, str, "identity") for k in keys[:4]}
    roles = raw.get("delegate_roles", ["admin"])
    if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
        raise ConfigError(
            f'identity.delegate_roles: expected a list of role names, e.g. ["admin"], got {roles!r}'
        )
    return IdentityCredentials(
        auth_url=_http_url(values["auth_url"], "identity.auth_url"),
        username=values["username"],
        password=values["password"],
        project=values["project"],
        user_domain=str(raw.get("user_domain", "Default")),
        project_domain=str(raw.get("project_domain", "Default")),
        delegate_roles=tuple(roles),
    )


def _secret(data: Mapping[str, Any], base_dir: Path | None) -> bytes:
    if "secret" in data:
        secret = str(_req(data, "secret", str, "")).encode()
    elif "secret_file" in data:
        path = Path(_req(data, "secret_file", str, ""))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        try:
            secret = path.read_bytes().strip()
        except OSError as exc:
            raise ConfigError(f"secret_file: cannot read {path}: {exc.strerror}") from exc
    else:
        raise ConfigError("missing 'secret_file' (the per-deployment HMAC secret shared by peers)")
    if len(secret) < 16 and "secret" not in data:
        raise ConfigError("secret_file: the shared secret must be at least 16 bytes")
    if not secret:
        raise ConfigError("secret: must not be empty")
    return secret


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen: {text!r} must be 'HOST:PORT', e.g. '127.0.0.1:20190'")
    return host.strip("[]"), int(port)


def _http_url(text: str, where: str) -> URL:
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{where}: {text!r} must be an http:// or https:// URL with a host")
    return url


def _site_name(name: str, where: str) -> str:
    if not _SITE.match(name):
        raise ConfigError(f"{where}: {name!r} is not a site name (letters, digits, '_', '-')")
    return name


def _req(raw: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    label = f"{where}.{key}" if where else key
    if key not in raw:
        raise ConfigError(f"missing '{label}'")
    if not isinstance(raw[key], kind):
        raise ConfigError(f"{label}: expected a {kind.__name__}, got {raw[key]!r}")
    return raw[key]


def _list(data: Mapping[str, Any], key: str) -> list[Any]:
    value = data.get(key, [])
    if not isinstance(value, list):
        raise ConfigError(f"{key}: expected an array of tables ([[{key}]])")
    return value


def _only(raw: Mapping[str, Any], where: str, allowed: set[str]) -> None:
    unknown = sorted(set(raw) - allowed)
    if unknown:
        label = f"[{where}]" if where else "top level"
        raise ConfigError(
            f"{label}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}"
        )


def _numbers(raw: Any, where: str, defaults: Any) -> dict[str, Any]:
    """Validate a table of numeric fields against the fields of ``defaults``."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"[{where}]: expected a table")
    allowed = {name for name in defaults.__dataclass_fields__ if name not in ("name", "url")}
    _only(raw, where, allowed)
    out: dict[str, Any] = {}
    for key, value in raw.items():
        default = getattr(defaults, key)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and value >= 0
        if not ok or (
            isinstance(default, int)
            and not isinstance(default, bool)
            and not isinstance(value, int)
        ):
            raise ConfigError(
                f"{where}.{key}: expected a non-negative {type(default).__name__}, got {value!r}"
            )
        out[key] = type(default)(value)
    return out


def _check_unique(values: list[Any], table: str, key: str) -> None:
    seen: set[Any] = set()
    for value in values:
        if value in seen:
            raise ConfigError(f"[[{table}]]: duplicate {key} {value!r}")
        seen.add(value)
