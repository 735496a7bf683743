"""Per-site proxy configuration: frozen dataclasses loaded from one TOML file, validated at load.

Neighbours: ``server.py`` builds the aiohttp app from a :class:`ProxyConfig`; ``cli/proxy.py``
loads it (``edgescope proxy run --config site.toml``) and ``gen_config.py`` writes one from a
Keystone catalog. Every error is a :class:`~edgescope.errors.ConfigError` naming the key and,
where there is a closed set, the valid choices.

    >>> key = "ed25519:" + "A" * 43 + "="
    >>> config = parse_config({"site": "Paris", "listen": "127.0.0.1:0", "private_key": key,
    ...     "services": [{"type": "glance", "prefix": "/image", "backend": "http://127.0.0.1:9292"}]})
    >>> config.services[0].type
    'image'

The file format (also in docs/proxy.md)::

    site = "Paris"
    listen = "127.0.0.1:20190"                 # clients and this site's services
    peer_listen = "10.0.0.1:20191"             # optional: peer proxies only (TLS with [tls])
    private_key_file = "paris.key"             # this site's Ed25519 key (proxy keygen)
    trust_forwarded = false                    # true behind a TLS-terminating HAProxy
    [[services]]        type = "identity"  prefix = "/identity"  backend = "http://127.0.0.1:20100"
                        plain_token = false        # true: the backend checks tokens itself
    [[carriers]]        read = "X-Trans-Id"  write = "X-Trans-Id-Extra"  services = ["swift"]
                        (a scope handle an application forwards on its own calls: carriers.py)
    [[peers]]           name = "Corte"  url = "https://10.0.0.2:20291"
                        public_key = "ed25519:..."  (or public_keys = [old, new])
                        connect_timeout = 2.0  read_timeout = 30.0
    [tls]               cert_file, key_file, ca_file, require_client_cert = true
    [identity]          auth_url, username, password, project, user_domain, project_domain
    [trust]             configured = ["route", "replicas", "directory"]  learned = ["route"]
    [trust.sites.Corte] may = [...]  delegate_roles = []   (proxy/trust.py, docs/security.md)
    [limits]            max_scope_bytes = 4096  max_fanout = 64  max_hops = 4  hop_window = 30.0
    [breaker]           failure_threshold = 5  open_seconds = 5.0  probe_interval = 2.0
    [hedging]           max_extra = 1  floor = 0.05  ceiling = 2.0  unknown = 0.5
    [replicas] [directory] [events] [tracing] [haproxy]   any other table: an extension's,
                        kept raw here, parsed and validated by its owner when the site loads
                        (cli/extensions.py); the core knows no extension's name or keys
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from math import inf
from pathlib import Path
from typing import Any

from yarl import URL

from edgescope.errors import ConfigError
from edgescope.lang.registry import DEFAULT_REGISTRY
from edgescope.proxy.carriers import (
    BAGGAGE_HEADER,
    REQUEST_ID_HEADER,
    SCOPE_HEADER,
    TOKEN_HEADERS,
    HandleCarrier,
)
from edgescope.proxy.keys import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
    load_private,
    load_private_file,
    load_public,
)
from edgescope.proxy.protocol import RESERVED_PREFIX
from edgescope.proxy.trust import CAPABILITIES, Capability, PeerTrust, TrustPolicy

CANONICAL_SERVICES = DEFAULT_REGISTRY.services
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,62}$")
_SITE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
_OWN_CARRIERS = {
    h.lower() for h in (SCOPE_HEADER, *TOKEN_HEADERS, BAGGAGE_HEADER, REQUEST_ID_HEADER)
}


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
    plain_token: bool = False
    """The backend checks tokens itself (Swift's tempauth): it gets ``X-Auth-Token`` with no
    scope piggybacked, as an identity backend does; the scope travels in the other carriers."""


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Another site's proxy."""

    name: str
    url: URL
    connect_timeout: float = 2.0
    read_timeout: float = 30.0
    public_keys: tuple[Ed25519PublicKey, ...] = field(default=(), repr=False, compare=False)
    """The keys the peer signs with: one, or two while it rotates its key."""


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS between proxies: the peer listener's certificate, and whom to trust."""

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    """Certificates of peers (and their client certificates) are checked against it."""
    require_client_cert: bool = True
    """Mutual TLS: the peer listener accepts only clients with a certificate of ``ca_file``."""


@dataclass(frozen=True, slots=True)
class IdentityCredentials:
    """The site's own service account, used to validate tokens on behalf of peers."""

    auth_url: URL
    username: str
    password: str = field(repr=False)
    project: str
    user_domain: str = "Default"
    project_domain: str = "Default"


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
    max_spool_total: int = 4 * 1024 * 1024 * 1024
    """Most bytes all the kept bodies together may hold; past it the call gets a 503."""
    max_connections: int = 1024
    """Most connections one listener holds at once; past it a new one gets a 503."""
    max_per_peer: int = 256
    """Most calls awaiting an answer from one peer at once; past it a call waits for a slot
    at most the peer's ``connect_timeout``, then that branch fails (not the peer's breaker)."""
    scope_memory: int = 10_000
    """Scopes remembered for the calls services make on behalf of a scoped call (request id,
    handle); 1/16 of them per client address and token. A forgotten one: 503."""
    scope_memory_horizon: float = 3600.0
    """Seconds after its issue a forgotten id is still a 503; later, a replay: local."""


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    """Per-peer circuit breaker."""

    failure_threshold: int = 5
    """Failures in a row (calls and probes, no success between) that open a peer's breaker,
    when they span at least ``failure_span`` seconds: one lost packet is not a dead site."""
    failure_span: float = 1.0
    open_seconds: float = 5.0
    """Without probes: how long a breaker stays open before one trial call."""
    probe_backoff_min: float = 0.1
    """An open breaker's peer is probed at once, then after this delay, doubled after each
    failed probe up to ``probe_backoff_max``, each times a random 0.5-1.5 (jitter)."""
    probe_backoff_max: float = 1.0
    probe_interval: float = 2.0
    """Seconds between rounds of health probes of the peers in use (0 disables probing)."""
    probe_recent: float = 60.0
    """A peer is in use for this many seconds after a call to it (or while its breaker is
    not closed): only peers in use are probed."""
    probe_concurrency: int = 16
    """Most probes in flight at once."""


@dataclass(frozen=True, slots=True)
class HedgeConfig:
    """``[hedging]``: when a ``|`` read asks its next site too."""

    max_extra: int = 1
    """Further sites a read may ask while the earlier ones have not answered (0: no hedging)."""
    floor: float = 0.05
    """Never hedge sooner than this many seconds (a site's p95 on a quiet LAN is tiny)."""
    ceiling: float = 2.0
    """Always hedge by this many seconds (a site's p95 under a cut can be its timeout)."""
    unknown: float = 0.5
    """The delay for a site with fewer than ``min_samples`` recent answers."""
    min_samples: int = 10
    samples: int = 100
    """Answers kept per site (the newest)."""
    window: float = 60.0
    """Answers older than this many seconds are forgotten."""


@dataclass(frozen=True, slots=True)
class ProxyConfig:
    """A whole site proxy."""

    site: str
    host: str
    port: int
    private_key: Ed25519PrivateKey = field(repr=False, compare=False)
    services: tuple[ServiceConfig, ...]
    peers: tuple[PeerConfig, ...] = ()
    carriers: tuple[HandleCarrier, ...] = ()
    """Headers an application forwards on its own calls, where a scope handle may travel."""
    identity: IdentityCredentials | None = None
    limits: Limits = Limits()
    breaker: BreakerConfig = BreakerConfig()
    hedging: HedgeConfig = HedgeConfig()
    extension_tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Raw tables of the extensions (``[replicas]``...), each parsed by its owner."""
    base_dir: Path | None = None
    """The config file's folder: relative paths in extension tables are from here."""
    peer_listen: tuple[str, int] | None = None
    """A listener for peer proxies only; when set, the main one refuses peer hops."""
    tls: TlsConfig | None = None
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    """``[trust]``: what each peer may do here (``proxy/trust.py``)."""
    trust_forwarded: bool = False
    """Keep the ``X-Forwarded-Host``/``-Proto`` a call arrives with (set by the site's
    HAProxy, e.g. ``https`` where it terminates TLS) instead of this listener's own, so the
    services build links to the URL the client used."""

    peer_index: dict[str, PeerConfig] = field(init=False, repr=False, compare=False)
    """Peers by name (a call to a 1000-site fan-out looks each one up)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "peer_index", {p.name: p for p in self.peers})

    def peer(self, name: str) -> PeerConfig | None:
        return self.peer_index.get(name)

    def service(self, service_type: str) -> ServiceConfig | None:
        return next((s for s in self.services if s.type == service_type), None)

    def public_keys(self, peer: str) -> tuple[Ed25519PublicKey, ...]:
        """The keys ``peer`` may sign with (none: not a peer)."""
        found = self.peer_index.get(peer)
        return found.public_keys if found is not None else ()

    @property
    def site_names(self) -> tuple[str, ...]:
        """This site first, then its peers."""
        return (self.site, *(p.name for p in self.peers))


def canonical_service(name: str) -> str:
    """``nova`` -> ``compute``; canonical and custom names pass through."""
    return DEFAULT_REGISTRY.canonical(name) or name.lower()


def load_config(path: str | Path, *, extensions: Collection[str] | None = None) -> ProxyConfig:
    """Read and validate a site TOML file; relative paths in it are from its folder.
    ``extensions``: as for :func:`parse_config`."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read proxy config {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
    return parse_config(data, base_dir=path.parent, extensions=extensions)


_CORE_KEYS = frozenset(
    {
        "site",
        "listen",
        "private_key_file",
        "private_key",
        "secret_file",
        "secret",
        "peer_listen",
        "tls",
        "services",
        "peers",
        "carriers",
        "identity",
        "limits",
        "breaker",
        "hedging",
        "trust_forwarded",
        "trust",
    }
)


def parse_config(
    data: Mapping[str, Any],
    base_dir: Path | None = None,
    *,
    extensions: Collection[str] | None = None,
) -> ProxyConfig:
    """Validate a decoded TOML document; ``private_key`` (inline) may replace the file.

    A table that is not the core's belongs to an extension and is kept raw
    (:attr:`ProxyConfig.extension_tables`): ``extensions`` names the tables the proxy's
    extensions claim (any other is an unknown key); None keeps every such table."""
    tables = _extension_tables(data, extensions)
    _only(
        data,
        "",
        {
            *_CORE_KEYS,
            *tables,
            *(extensions or ()),
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
    carriers = tuple(_carrier(c, i) for i, c in enumerate(_list(data, "carriers")))
    _check_unique([c.read for c in carriers], "carriers", "read")
    _check_unique([p.name for p in peers], "peers", "name")
    if site in {p.name for p in peers}:
        raise ConfigError(f"peers: {site!r} is this site's own name")
    identity = _identity(data["identity"]) if "identity" in data else None
    limits = Limits(**_numbers(data.get("limits", {}), "limits", Limits()))
    breaker = BreakerConfig(**_numbers(data.get("breaker", {}), "breaker", BreakerConfig()))
    hedging = HedgeConfig(**_numbers(data.get("hedging", {}), "hedging", HedgeConfig()))
    if hedging.floor > hedging.ceiling:
        raise ConfigError(
            f"hedging.floor ({hedging.floor}) is above hedging.ceiling ({hedging.ceiling})"
        )
    trust_forwarded = data.get("trust_forwarded", False)
    if not isinstance(trust_forwarded, bool):
        raise ConfigError(f"trust_forwarded: expected true or false, got {trust_forwarded!r}")
    return ProxyConfig(
        site=site,
        host=host,
        port=port,
        private_key=_private_key(data, base_dir),
        services=services,
        peers=peers,
        carriers=carriers,
        identity=identity,
        limits=limits,
        breaker=breaker,
        hedging=hedging,
        extension_tables=tables,
        base_dir=base_dir,
        peer_listen=_listen(_req(data, "peer_listen", str, "")) if "peer_listen" in data else None,
        tls=_tls(data["tls"], base_dir) if "tls" in data else None,
        trust=_trust(data.get("trust", {})),
        trust_forwarded=trust_forwarded,
    )


def _extension_tables(
    data: Mapping[str, Any], extensions: Collection[str] | None
) -> dict[str, Mapping[str, Any]]:
    """The extensions' tables of ``data``: the claimed ones (None: any that is a table and
    not the core's), each checked to be a table."""
    if extensions is None:
        names = {k for k, v in data.items() if k not in _CORE_KEYS and isinstance(v, Mapping)}
    else:
        names = set(extensions) & set(data)
    tables = {}
    for name in sorted(names):
        if not isinstance(data[name], Mapping):
            raise ConfigError(f"[{name}]: expected a table")
        tables[name] = data[name]
    return tables


def _service(raw: Any, index: int) -> ServiceConfig:
    where = f"services[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _only(raw, where, {"type", "prefix", "port", "backend", "plain_token"})
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
    plain_token = raw.get("plain_token", False)
    if not isinstance(plain_token, bool):
        raise ConfigError(f"{where}.plain_token: expected true or false, got {plain_token!r}")
    return ServiceConfig(
        service_type,
        http_url(_req(raw, "backend", str, where), f"{where}.backend"),
        prefix=prefix,
        port=port,
        plain_token=plain_token,
    )


def _carrier(raw: Any, index: int) -> HandleCarrier:
    where = f"carriers[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _only(raw, where, {"read", "write", "services"})
    read = _header_name(_req(raw, "read", str, where), f"{where}.read")
    write = raw.get("write")
    if write is not None:
        write = _header_name(_req(raw, "write", str, where), f"{where}.write")
    services = raw.get("services", [])
    if not isinstance(services, list) or not all(isinstance(s, str) and s for s in services):
        raise ConfigError(f'{where}.services: expected a list of service types, e.g. ["swift"]')
    if services and write is None:
        raise ConfigError(f"{where}.services: names where 'write' goes; give 'write' too")
    if read.lower() in _OWN_CARRIERS or (write or "").lower() in _OWN_CARRIERS:
        raise ConfigError(f"{where}: {read!r}/{write!r}: the proxy's own carriers are not declared")
    return HandleCarrier(read, write, frozenset(canonical_service(s) for s in services))


def _header_name(name: str, where: str) -> str:
    if not _HEADER.match(name):
        raise ConfigError(f"{where}: {name!r} is not an HTTP header name (e.g. 'X-Trans-Id')")
    return name


def _peer(raw: Any, index: int) -> PeerConfig:
    where = f"peers[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table")
    _only(
        raw, where, {"name", "url", "connect_timeout", "read_timeout", "public_key", "public_keys"}
    )
    numbers = _numbers(
        {k: raw[k] for k in ("connect_timeout", "read_timeout") if k in raw},
        where,
        PeerConfig("x", URL("http://x")),
    )
    keys = raw.get("public_keys", [raw["public_key"]] if "public_key" in raw else [])
    if not isinstance(keys, list) or not keys or not all(isinstance(k, str) for k in keys):
        raise ConfigError(
            f"{where}: give the peer's 'public_key' (or 'public_keys' = [old, new] while it "
            'rotates), e.g. "ed25519:..." as `edgescope proxy keygen` prints it'
        )
    return PeerConfig(
        _site_name(_req(raw, "name", str, where), f"{where}.name"),
        http_url(_req(raw, "url", str, where), f"{where}.url"),
        **numbers,
        public_keys=tuple(load_public(k) for k in keys),
    )


def _identity(raw: Any) -> IdentityCredentials:
    if not isinstance(raw, Mapping):
        raise ConfigError("[identity]: expected a table")
    keys = ("auth_url", "username", "password", "project", "user_domain", "project_domain")
    if "delegate_roles" in raw:
        raise ConfigError(
            "identity.delegate_roles is gone: delegation is decided per peer, off unless "
            'written: [trust.sites.<peer>] delegate_roles = ["admin"] (docs/security.md)'
        )
    _only(raw, "identity", set(keys))
    values = {k: _req(raw, k, str, "identity") for k in keys[:4]}
    return IdentityCredentials(
        auth_url=http_url(values["auth_url"], "identity.auth_url"),
        username=values["username"],
        password=values["password"],
        project=values["project"],
        user_domain=str(raw.get("user_domain", "Default")),
        project_domain=str(raw.get("project_domain", "Default")),
    )


def _trust(raw: Any) -> TrustPolicy:
    if not isinstance(raw, Mapping):
        raise ConfigError("[trust]: expected a table")
    _only(raw, "trust", {"configured", "learned", "sites"})
    sites = raw.get("sites", {})
    if not isinstance(sites, Mapping):
        raise ConfigError("[trust.sites]: expected tables, e.g. [trust.sites.Corte]")
    per_site = {}
    for name, entry in sites.items():
        where = f"trust.sites.{name}"
        _site_name(name, where)
        if not isinstance(entry, Mapping):
            raise ConfigError(f"[{where}]: expected a table")
        _only(entry, where, {"may", "delegate_roles"})
        may = _capabilities(entry["may"], f"{where}.may") if "may" in entry else None
        roles = entry.get("delegate_roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) and r for r in roles):
            raise ConfigError(
                f'{where}.delegate_roles: expected a list of role names, e.g. ["admin"] '
                f"(default []: never act for this peer's users), got {roles!r}"
            )
        per_site[name] = PeerTrust(may, tuple(roles))
    defaults = TrustPolicy()
    return TrustPolicy(
        configured=_capabilities(raw["configured"], "trust.configured")
        if "configured" in raw
        else defaults.configured,
        learned=_capabilities(raw["learned"], "trust.learned")
        if "learned" in raw
        else defaults.learned,
        sites=per_site,
    )


def _capabilities(raw: Any, where: str) -> frozenset[Capability]:
    if not isinstance(raw, list) or not all(isinstance(c, str) for c in raw):
        raise ConfigError(f"{where}: expected a list of {', '.join(CAPABILITIES)}; got {raw!r}")
    for name in raw:
        if name not in CAPABILITIES:
            hint = " (delegation is delegate_roles = [...])" if name == "delegate" else ""
            raise ConfigError(
                f"{where}: unknown capability {name!r}{hint}; valid: {', '.join(CAPABILITIES)}"
            )
    return frozenset(raw)


def _private_key(data: Mapping[str, Any], base_dir: Path | None) -> Ed25519PrivateKey:
    if "secret" in data or "secret_file" in data:
        raise ConfigError(
            "'secret'/'secret_file' (one HMAC secret shared by every site) is gone: each site "
            "signs with its own key: 'private_key_file' (make one with `edgescope proxy "
            "keygen`), and each [[peers]] entry names the peer's 'public_key'"
        )
    if "private_key" in data:
        return load_private(_req(data, "private_key", str, ""))
    if "private_key_file" not in data:
        raise ConfigError("missing 'private_key_file' (this site's key: `edgescope proxy keygen`)")
    return load_private_file(_path(_req(data, "private_key_file", str, ""), base_dir))


def _tls(raw: Any, base_dir: Path | None) -> TlsConfig:
    if not isinstance(raw, Mapping):
        raise ConfigError("[tls]: expected a table")
    _only(raw, "tls", {"cert_file", "key_file", "ca_file", "require_client_cert"})
    required = raw.get("require_client_cert", True)
    if not isinstance(required, bool):
        raise ConfigError(f"tls.require_client_cert: expected true or false, got {required!r}")
    tls = TlsConfig(
        cert_file=_path(_req(raw, "cert_file", str, "tls"), base_dir),
        key_file=_path(_req(raw, "key_file", str, "tls"), base_dir),
        ca_file=_path(raw["ca_file"], base_dir) if isinstance(raw.get("ca_file"), str) else None,
        require_client_cert=required,
    )
    for name in ("cert_file", "key_file", "ca_file"):
        path = getattr(tls, name)
        if path is not None and not path.is_file():
            raise ConfigError(f"tls.{name}: {path} is not a readable file")
    if required and tls.ca_file is None:
        raise ConfigError("tls.require_client_cert needs tls.ca_file (to check client certs)")
    return tls


def _path(text: str, base_dir: Path | None) -> Path:
    path = Path(text)
    return base_dir / path if not path.is_absolute() and base_dir is not None else path


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ConfigError(f"listen: {text!r} must be 'HOST:PORT', e.g. '127.0.0.1:20190'")
    return host.strip("[]"), int(port)


def http_url(text: object, where: str) -> URL:
    """``text`` as an http(s) URL with a host; raises ConfigError naming ``where``."""
    try:
        url = URL(text) if isinstance(text, str) else None
    except ValueError:  # yarl: a port out of range, a bad IPv6 literal
        url = None
    if url is None or url.scheme not in ("http", "https") or not url.host or not url.port:
        raise ConfigError(f"{where}: {text!r} must be an http:// or https:// URL with a host")
    return url


def is_site_name(name: str) -> bool:
    """Whether ``name`` may name a site: letters, digits, '_', '-' (what headers, scopes and
    the console carry unquoted), up to 63 characters, a letter first."""
    return _SITE.fullmatch(name) is not None


def _site_name(name: str, where: str) -> str:
    if not is_site_name(name):
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
        ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < inf
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
