"""The HAProxy fast path: scoped calls to edgescope, every other call straight to its service.

Pure: a site's proxy config (its ``[haproxy]`` table) in, HAProxy configuration text out.
``edgescope deploy haproxy`` (cli/deploy.py) prints it; the testbed runs a whole site's
HAProxy from :func:`site_config`. What decides "scoped" is :data:`SCOPED_ACLS`: exactly the
carriers the proxy reads from headers (``carriers.read_scope_text``), so no call that
edgescope would route elsewhere is served locally, and an unscoped call never reaches
edgescope. Correlation by request id (carrier 4) is seen by the form of the id: edgescope
remembers scopes only for ids it minted, of a version OpenStack never mints, so a service's
downstream call of a scoped request goes to edgescope too (docs/deploy.md).

    [haproxy]
    flavor = "kolla"                 # kolla | openstack-ansible | plain
    on_edgescope_down = "closed"     # closed: a clear 503; open: served locally, unscoped
    proxies = ["ctl1=10.0.0.11", "ctl2=10.0.0.12"]   # where this config's proxies run
    peer_bind = "10.0.0.250:20291"   # optional: one address for peers, TLS passed through

    [haproxy.ports]                  # optional: the site's API ports (default: the flavor's)
    compute = 8774
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgescope.errors import ConfigError
from edgescope.proxy.carriers import CORRELATION_ID_REGEX, REQUEST_ID_HEADER
from edgescope.proxy.config import ProxyConfig, ServiceConfig

FLAVORS = ("kolla", "openstack-ansible", "plain")
ON_DOWN = ("closed", "open")
STANDARD_PORTS = {
    "identity": 5000,
    "compute": 8774,
    "image": 9292,
    "placement": 8780,
    "network": 9696,
    "volumev3": 8776,
    "block-storage": 8776,
}
"""The API ports Kolla-Ansible and OpenStack-Ansible give each service on their VIPs."""
LOCAL_BACKENDS = {
    "kolla": {
        "identity": "keystone_internal_back",
        "compute": "nova_api_back",
        "image": "glance_api_back",
        "placement": "placement_api_back",
        "network": "neutron_server_back",
        "volumev3": "cinder_api_back",
        "block-storage": "cinder_api_back",
    },
    "openstack-ansible": {
        "identity": "keystone_service-back",
        "compute": "nova_api_os_compute-back",
        "image": "glance_api-back",
        "placement": "placement-back",
        "network": "neutron_server-back",
        "volumev3": "cinder_api-back",
        "block-storage": "cinder_api-back",
    },
}
"""Each flavor's backend of a service's API servers (where the return path sends calls)."""
SCOPED_ACLS = (
    "acl edgescope_scoped req.hdr_cnt(X-Scope) gt 0",
    "acl edgescope_scoped req.hdr(X-Auth-Token) -m sub ~scope~",
    "acl edgescope_scoped req.hdr(X-Subject-Token) -m sub ~scope~",
    "acl edgescope_scoped req.hdr(baggage) -m sub scope",
    f"acl edgescope_scoped req.hdr(X-OpenStack-Request-ID) -m reg '{CORRELATION_ID_REGEX}'",
)
"""A call is scoped when it has any carrier the proxy reads from headers: an ``X-Scope``
header (even empty: edgescope answers it 400), a piggyback on either token header, or a
``scope`` member in W3C baggage: any baggage that so much as mentions ``scope``, so that no
spacing, quoting or Unicode whitespace HAProxy splits or trims differently keeps a scope
local (the proxy reads such a call's scope, refuses an ambiguous key with a 400, or serves
it locally itself when the baggage has no ``scope`` member); or
when its global request id is one edgescope minted for a scoped call (the request-id
carrier: a service's own downstream call, e.g. nova-scheduler -> placement, carries nothing
else; edgescope routes it by the scope it remembers)."""
DOWN_BODY = json.dumps(
    {
        "error": {
            "code": 503,
            "title": "Site Unreachable",
            "message": "edgescope: no proxy of this site is up; scoped calls are refused "
            "(on_edgescope_down = closed)",
        }
    }
)
BYPASS_HEADER = "X-Edgescope-Bypassed"
DEFAULT_CHECK = "check inter 2s fall 2 rise 2"


@dataclass(frozen=True, slots=True)
class Node:
    """One edgescope proxy of the site (a host running this config)."""

    name: str
    address: str


@dataclass(frozen=True, slots=True)
class HaproxySettings:
    """The ``[haproxy]`` table of a site's proxy config."""

    flavor: str = "plain"
    on_edgescope_down: str = "closed"
    proxies: tuple[Node, ...] = ()
    """Empty: this config's own ``listen`` host, as one proxy named ``edgescope``."""
    ports: Mapping[str, int] = field(default_factory=dict)
    peer_bind: str | None = None
    check: str = DEFAULT_CHECK
    """The options of each ``server`` line (HAProxy's health check of a proxy)."""

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> HaproxySettings:
        keys = {"flavor", "on_edgescope_down", "proxies", "ports", "peer_bind", "check"}
        unknown = sorted(set(raw) - keys)
        if unknown:
            raise ConfigError(
                f"[haproxy]: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(keys))}"
            )
        flavor = _choice(raw, "flavor", FLAVORS, "plain")
        on_down = _choice(raw, "on_edgescope_down", ON_DOWN, "closed")
        proxies = tuple(_node(text) for text in _strings(raw, "proxies"))
        ports = raw.get("ports", {})
        if not isinstance(ports, Mapping) or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports.values()
        ):
            raise ConfigError("haproxy.ports: expected a table of service type = port (1-65535)")
        peer_bind = raw.get("peer_bind")
        if peer_bind is not None and (not isinstance(peer_bind, str) or ":" not in peer_bind):
            raise ConfigError(f"haproxy.peer_bind: expected 'host:port', got {peer_bind!r}")
        check = raw.get("check", DEFAULT_CHECK)
        if not isinstance(check, str) or not check.startswith("check"):
            raise ConfigError(f"haproxy.check: expected server check options, got {check!r}")
        return cls(flavor, on_down, proxies, dict(ports), peer_bind, check)


@dataclass(frozen=True, slots=True)
class FastPath:
    """What HAProxy needs per service of a site."""

    service: str
    frontend_port: int
    """The port clients call (``dst_port`` at the VIP)."""
    edgescope_port: int
    """The proxy's listener of this service."""
    local_backend: str
    """The HAProxy backend of the service's own API servers."""
    return_bind: str | None
    """``host:port`` of the return frontend edgescope's ``backend`` names (None: ``plain``)."""


def settings_of(config: ProxyConfig) -> HaproxySettings:
    return HaproxySettings.parse(config.extension_tables.get("haproxy", {}))


def plan_fast_path(config: ProxyConfig, settings: HaproxySettings) -> list[FastPath]:
    """One :class:`FastPath` per service, or a ConfigError naming what is missing."""
    paths = []
    for service in config.services:
        paths.append(_fast_path(service, settings))
    return paths


def _fast_path(service: ServiceConfig, settings: HaproxySettings) -> FastPath:
    kind = service.type
    if service.port is None:
        raise ConfigError(
            f"services.{kind}: behind HAProxy each service needs a listener of its own "
            f"(port = ...), not a prefix: the service builds its links from the client's URL"
        )
    port = settings.ports.get(kind, STANDARD_PORTS.get(kind))
    if port is None:
        raise ConfigError(f"haproxy.ports: give the API port of {kind!r} (no standard one)")
    backend = service.backend
    if settings.flavor == "plain":
        return FastPath(kind, port, service.port, f"{_name(kind)}_local", None)
    local = LOCAL_BACKENDS[settings.flavor].get(kind)
    if local is None:
        raise ConfigError(f"haproxy: no known {settings.flavor} backend for {kind!r}")
    if backend.port == port:
        raise ConfigError(
            f"services.{kind}.backend = {backend}: that is the service's own frontend, whose "
            "fast path sends scoped calls back to edgescope (a loop); point it at a return "
            f"port, e.g. http://{backend.host}:{port + 10000}"
        )
    return FastPath(kind, port, service.port, local, f"{backend.host}:{backend.port}")


def frontend_lines(paths: Sequence[FastPath], settings: HaproxySettings) -> list[str]:
    """The lines every HTTP frontend of the site gets (Kolla's ``haproxy_frontend_http_extra``,
    OpenStack-Ansible's ``haproxy_frontend_extra_raw``): route scoped calls to edgescope.

    Each condition tests the cheap terms first (the port, whether a proxy is up) and the scope
    ACL last: HAProxy stops at the first false term, so an unscoped call evaluates the scope
    ACL once (in its port's ``use_backend``), not once per rule and service."""
    lines = list(SCOPED_ACLS)
    routes = []
    closed = settings.on_edgescope_down == "closed"
    for path in paths:
        backend = edgescope_backend(path.service, settings)
        port = f"{{ dst_port {path.frontend_port} }}"
        down = f"{{ nbsrv({backend}) eq 0 }}"
        if closed:
            lines.append(
                f"http-request return status 503 content-type application/json "
                f"hdr Retry-After 5 string '{DOWN_BODY}' if {port} {down} edgescope_scoped"
            )
        else:  # served locally as an unscoped call, and said so
            lines.append(
                f"http-request set-var(txn.edgescope_bypass) str(1) if {port} {down} "
                "edgescope_scoped"
            )
        routes.append(
            f"use_backend {backend} if {port} "
            + ("" if closed else f"!{down} ")
            + "edgescope_scoped"
        )
    if not closed:
        bypass = "if { var(txn.edgescope_bypass) -m found }"
        lines += [
            f"http-request del-header X-Scope {bypass}",
            f"http-request replace-header X-Auth-Token '^([^~]*)~scope~.*$' '\\1' {bypass}",
            f"http-request replace-header X-Subject-Token '^([^~]*)~scope~.*$' '\\1' {bypass}",
            f"http-request del-header baggage {bypass}",
            f"http-response set-header {BYPASS_HEADER} 'no edgescope proxy up; served "
            f"locally, unscoped' {bypass}",
        ]
    return lines + routes


def edgescope_backend(service: str, settings: HaproxySettings) -> str:
    suffix = "-back" if settings.flavor == "openstack-ansible" else ""
    return f"edgescope_{_name(service)}{suffix}"


def backend_sections(
    config: ProxyConfig, paths: Sequence[FastPath], settings: HaproxySettings
) -> str:
    """``backend edgescope_<service>`` per service (the site's proxies, health-checked on
    ``/edgescope/health`` at their main listener), the return frontends edgescope's own
    local calls go through (not plain), and the peers' entry when ``peer_bind`` is set."""
    nodes = settings.proxies or (Node("edgescope", config.host),)
    out: list[str] = []
    for path in paths:
        out += [
            f"backend {edgescope_backend(path.service, settings)}",
            "    mode http",
            "    balance roundrobin",
            "    option httpchk GET /edgescope/health",
            "    http-check expect status 200",
            *(
                f"    server {n.name} {n.address}:{path.edgescope_port} {settings.check} "
                f"port {config.port}"
                for n in nodes
            ),
            "",
        ]
        if path.return_bind is not None:
            out += [
                f"frontend edgescope_{_name(path.service)}_return",
                "    mode http",
                f"    bind {path.return_bind}",
                f"    default_backend {path.local_backend}",
                "",
            ]
    if settings.peer_bind is not None and config.peer_listen is not None:
        peer_port = config.peer_listen[1]
        out += [
            "listen edgescope_peers",
            "    mode tcp",
            f"    bind {settings.peer_bind}",
            "    balance roundrobin",
            "    option httpchk GET /edgescope/health",
            *(
                f"    server {n.name} {n.address}:{peer_port} {settings.check} port {config.port}"
                for n in nodes
            ),
            "",
        ]
    return "\n".join(out)


def osa_services(config: ProxyConfig, paths: Sequence[FastPath], settings: HaproxySettings) -> str:
    """``haproxy_extra_services`` for OpenStack-Ansible's haproxy_server role: edgescope's
    backends (``edgescope_<service>-back``) and the return frontends."""
    nodes = settings.proxies or (Node("edgescope", config.host),)
    services: list[dict[str, Any]] = []
    for path in paths:
        services.append(
            {
                "haproxy_service_name": f"edgescope_{_name(path.service)}",
                "haproxy_backend_nodes": [{"name": n.name, "ip_addr": n.address} for n in nodes],
                "haproxy_port": path.frontend_port,
                "haproxy_backend_port": path.edgescope_port,
                "haproxy_check_port": config.port,
                "haproxy_backend_only": True,
                "haproxy_balance_type": "http",
                "haproxy_balance_alg": "roundrobin",
                "haproxy_backend_options": ["httpchk GET /edgescope/health"],
                "haproxy_backend_httpcheck_options": ["expect status 200"],
            }
        )
        if path.return_bind is not None:
            host, _, port = path.return_bind.rpartition(":")
            services.append(
                {
                    "haproxy_service_name": f"edgescope_{_name(path.service)}_return",
                    "haproxy_bind": [host],
                    "haproxy_port": int(port),
                    "haproxy_frontend_only": True,
                    "haproxy_balance_type": "http",
                    "haproxy_frontend_raw": [f"default_backend {path.local_backend}"],
                    "haproxy_backend_nodes": [],
                }
            )
    items = "\n".join(f"  - {json.dumps(s)}" for s in services)
    return f"haproxy_extra_services:\n{items}\n"


def kolla_globals(lines: Sequence[str]) -> str:
    """``/etc/kolla/globals.yml`` lines: the fast path in every HTTP frontend."""
    items = "\n".join(f"  - {json.dumps(line)}" for line in lines)
    return f"haproxy_frontend_http_extra:\n{items}\n"


def osa_variables(lines: Sequence[str]) -> str:
    """``/etc/openstack_deploy/user_variables.yml`` lines: the fast path in every frontend."""
    items = "\n".join(f"  - {json.dumps(line)}" for line in lines)
    return f"haproxy_frontend_extra_raw:\n{items}\n"


def site_config(
    config: ProxyConfig,
    settings: HaproxySettings,
    *,
    bind_host: str,
    stats_socket: str | None = None,
    fast_path: bool = True,
    access_log: bool = False,
) -> str:
    """A whole HAProxy for a ``plain`` site (the testbed): one frontend per service on
    ``bind_host`` at its API port, scoped calls to edgescope (or, without ``fast_path``,
    every call to edgescope: the plain mode), the others to the service itself. With
    ``access_log``, one line per call on stdout naming the backend that took it and the
    call's request id (HAProxy's ``option httplog``)."""
    paths = plan_fast_path(config, settings)
    extra = frontend_lines(paths, settings) if fast_path else []
    if access_log:
        extra = [f"http-request capture req.hdr({REQUEST_ID_HEADER}) len 64", *extra]
    out = [
        "global",
        "    maxconn 4096",
        *([f"    stats socket {stats_socket} mode 600 level admin"] if stats_socket else []),
        *(["    log stdout format raw local0"] if access_log else []),
        "defaults",
        *(["    log global", "    option httplog"] if access_log else []),
        "    mode http",
        "    option http-keep-alive",
        "    timeout connect 5s",
        "    timeout client 330s",
        "    timeout server 330s",
        "    timeout http-request 30s",
        "    retries 2",
        "    option redispatch",
        "",
    ]
    for path in paths:
        service = config.service(path.service)
        assert service is not None
        default = path.local_backend if fast_path else edgescope_backend(path.service, settings)
        out += [
            f"frontend {_name(path.service)}",
            f"    bind {bind_host}:{path.frontend_port}",
            *(f"    {line}" for line in extra),
            f"    default_backend {default}",
            "",
            f"backend {path.local_backend}",
            f"    server local {service.backend.host}:{service.backend.port}",
            "",
        ]
    return "\n".join(out) + "\n" + backend_sections(config, paths, settings)


def _name(service: str) -> str:
    return service.replace("-", "_")


def _choice(raw: Mapping[str, Any], key: str, choices: Sequence[str], default: str) -> str:
    value = raw.get(key, default)
    if value not in choices:
        raise ConfigError(f"haproxy.{key}: {value!r} is not one of {', '.join(choices)}")
    return str(value)


def _strings(raw: Mapping[str, Any], key: str) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"haproxy.{key}: expected a list of strings, got {value!r}")
    return value


def _node(text: str) -> Node:
    name, eq, address = text.partition("=")
    if not eq or not name or not address or any(c.isspace() for c in text):
        raise ConfigError(f"haproxy.proxies: expected 'name=address', got {text!r}")
    return Node(name, address)
