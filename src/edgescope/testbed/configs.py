"""The configuration files of one site's OpenStack services and proxy, rendered from a plan.

Pure functions: a :class:`~edgescope.testbed.layout.SitePlan` plus the site's
:class:`Credentials` in, ``{relative path: text}`` out. ``site.py`` writes them at every
start, so a config change in code reaches existing state folders. The keys that matter
(see docs/testbed.md): Keystone's cache is on, every SQLite URL has ``?timeout=30``,
nova-compute uses ``fake.FakeDriverWithoutFakeNodes`` and sees no DB settings, neutron
runs ML2/OVN on the site's own OVN (``ovn.py``; ML2 with no mechanism driver where OVN
cannot run), nova sends a service token (cinder needs it to detach).

    >>> files = render_site(plan, creds, transport_url="rabbit://paris:pw@127.0.0.1:25672/paris")
    >>> sorted(files)[0]
    'etc/glance/glance-api.conf'
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from edgescope.proxy.config_file import COMMENT, render_config
from edgescope.testbed import ovn as ovn_site
from edgescope.testbed.layout import SERVICE_TYPES, SitePlan
from edgescope.testbed.pki import SiteSecurity

Ini = dict[str, dict[str, str]]

SERVICE_USERS = ("glance", "placement", "nova", "neutron", "cinder", "edgescope")
"""Users of project ``service`` (admin + service roles); ``edgescope`` is the proxy's."""


@dataclass(frozen=True)
class Credentials:
    """One site's passwords. Each site has its own: no site can validate another's tokens."""

    admin: str
    service: str
    """Password of every service user of this site (glance, nova, ..., edgescope)."""
    demo: str
    rabbit: str

    @classmethod
    def generate(cls) -> Credentials:
        """Random hex passwords: none starts with ``-``, which rabbitmqctl takes for an option."""
        return cls(*(secrets.token_hex(16) for _ in range(4)))

    @classmethod
    def load_or_create(cls, path: Path) -> Credentials:
        """Read the site's credentials file, creating it (mode 0600) on first use."""
        if path.exists():
            return cls(**json.loads(path.read_text()))
        creds = cls.generate()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(json.dumps(asdict(creds), indent=1))
        return creds


def render_ini(sections: Ini) -> str:
    """Render ``{section: {key: value}}`` as an oslo.config / paste style ini file."""
    out: list[str] = []
    for section, values in sections.items():
        out.append(f"[{section}]")
        out.extend(f"{key} = {value}" for key, value in values.items())
        out.append("")
    return "\n".join(out)


def _auth(plan: SitePlan, username: str, password: str) -> dict[str, str]:
    """keystoneauth password settings for a service user of this site."""
    return {
        "auth_url": plan.auth_url,
        "auth_type": "password",
        "project_domain_name": "Default",
        "user_domain_name": "Default",
        "project_name": "service",
        "username": username,
        "password": password,
        "region_name": plan.name,
    }


def _authtoken(plan: SitePlan, username: str, creds: Credentials) -> dict[str, str]:
    """``[keystone_authtoken]``: token validation goes through the catalog's identity URL."""
    section = {"www_authenticate_uri": plan.auth_url, **_auth(plan, username, creds.service)}
    section["memcached_servers"] = ""
    return section


def _common(plan: SitePlan) -> Ini:
    return {
        "oslo_concurrency": {"lock_path": str(plan.run / "lock")},
        "oslo_middleware": {"enable_proxy_headers_parsing": "true"},
        "oslo_messaging_notifications": {"driver": "noop"},
    }


def keystone_conf(plan: SitePlan) -> Ini:
    keys = str(plan.data / "fernet-keys")
    conf: Ini = {
        "DEFAULT": {"use_stderr": "true"},
        "database": {"connection": plan.sqlite_url("keystone")},
        "token": {"provider": "fernet"},
        "fernet_tokens": {"key_repository": keys},
        "fernet_receipts": {"key_repository": keys},
        "credential": {"key_repository": str(plan.data / "credential-keys")},
        # Without the cache every authenticated call costs ~450 ms of role SQL queries.
        "cache": {"enabled": "true", "backend": "dogpile.cache.memory"},
        **_common(plan),
    }
    if plan.catalog != "direct":
        conf["DEFAULT"]["public_endpoint"] = plan.public_base("keystone") + "/"
    return conf


def glance_conf(plan: SitePlan, creds: Credentials) -> Ini:
    conf: Ini = {
        "DEFAULT": {"use_stderr": "true", "enabled_backends": "fs:file"},
        "glance_store": {"default_backend": "fs"},
        "fs": {"filesystem_store_datadir": str(plan.data / "images")},
        "os_glance_staging_store": {"filesystem_store_datadir": str(plan.data / "glance-staging")},
        "os_glance_tasks_store": {"filesystem_store_datadir": str(plan.data / "glance-tasks")},
        "database": {"connection": plan.sqlite_url("glance")},
        "paste_deploy": {
            "flavor": "keystone",
            "config_file": str(plan.etc / "glance" / "glance-api-paste.ini"),
        },
        "keystone_authtoken": _authtoken(plan, "glance", creds),
        **_common(plan),
    }
    if plan.catalog != "direct":
        conf["DEFAULT"]["public_endpoint"] = plan.public_base("glance")
    return conf


def placement_conf(plan: SitePlan, creds: Credentials) -> Ini:
    return {
        "DEFAULT": {"use_stderr": "true"},
        "placement_database": {"connection": plan.sqlite_url("placement")},
        "api": {"auth_strategy": "keystone"},
        "keystone_authtoken": _authtoken(plan, "placement", creds),
        **_common(plan),
    }


def nova_conf(plan: SitePlan, creds: Credentials, transport_url: str) -> Ini:
    """nova.conf, shared by all nova services; DB settings live in :func:`nova_db_conf`."""
    nova_data = plan.data / "nova"
    return {
        "DEFAULT": {
            "use_stderr": "true",
            "transport_url": transport_url,
            # Plain FakeDriver has a random node UUID per process and cannot restart.
            "compute_driver": "fake.FakeDriverWithoutFakeNodes",
            "host": plan.compute_host,
            "my_ip": plan.bind_host,
            "state_path": str(nova_data),
            "instances_path": str(nova_data / "instances"),
            "use_rootwrap_daemon": "false",
        },
        "api": {"auth_strategy": "keystone"},
        "wsgi": {"api_paste_config": str(plan.etc / "nova" / "api-paste.ini")},
        "conductor": {"workers": "1"},
        "scheduler": {"workers": "1", "discover_hosts_in_cells_interval": "-1"},
        "vnc": {"enabled": "false"},
        "glance": {"region_name": plan.name},
        "cinder": {"os_region_name": plan.name, **_auth(plan, "nova", creds.service)},
        # cinder refuses to delete an attachment of an in-use volume unless nova's call
        # carries a service token (detach, and deleting a server booted from a volume)
        "service_user": {"send_service_user_token": "true", **_auth(plan, "nova", creds.service)},
        "keystone_authtoken": _authtoken(plan, "nova", creds),
        "placement": _auth(plan, "placement", creds.service),
        "neutron": _auth(plan, "nova", creds.service),
        **_common(plan),
    }


def nova_db_conf(plan: SitePlan) -> Ini:
    """DB settings for nova-api, conductor, scheduler: nova-compute must not see them."""
    return {
        "api_database": {"connection": plan.sqlite_url("nova_api")},
        "database": {"connection": plan.sqlite_url("nova_cell1")},
    }


def neutron_conf(
    plan: SitePlan, creds: Credentials, transport_url: str, *, ovn: bool = True
) -> Ini:
    """neutron.conf; with ``ovn``, the OVN router and port events sent to nova."""
    notify = "true" if ovn else "false"
    conf: Ini = {
        "DEFAULT": {
            "use_stderr": "true",
            "core_plugin": "ml2",
            "service_plugins": "ovn-router" if ovn else "",
            "auth_strategy": "keystone",
            "transport_url": transport_url,
            "notify_nova_on_port_status_changes": notify,
            "notify_nova_on_port_data_changes": notify,
            "api_paste_config": str(plan.etc / "neutron" / "api-paste.ini"),
            "state_path": str(plan.data / "neutron"),
            "bind_host": plan.bind_host,
            "bind_port": str(plan.port("neutron")),
        },
        "database": {"connection": plan.sqlite_url("neutron")},
        "keystone_authtoken": _authtoken(plan, "neutron", creds),
        **_common(plan),
    }
    if ovn:
        conf["nova"] = _auth(plan, "nova", creds.service)
    return conf


def ml2_conf(plan: SitePlan, *, ovn: bool = True) -> Ini:
    """ML2/OVN with Geneve project networks on the site's own OVN (``ovn.py``); without
    ``ovn``, no mechanism driver and no project network type (servers boot ``--nic none``)."""
    if not ovn:
        return {
            "ml2": {
                "type_drivers": "flat,vlan",
                "tenant_network_types": "",
                "mechanism_drivers": "",
                "extension_drivers": "port_security",
            },
            "ml2_type_flat": {"flat_networks": "*"},
        }
    return {
        "ml2": {
            "type_drivers": "local,flat,vlan,geneve",
            "tenant_network_types": "geneve",
            "mechanism_drivers": "ovn",
            "extension_drivers": "port_security",
            "overlay_ip_version": "4",
        },
        "ml2_type_geneve": {"vni_ranges": "1:65536", "max_header_size": "38"},
        "ml2_type_flat": {"flat_networks": "*"},
        "securitygroup": {"enable_security_group": "true"},
        "ovn": {
            "ovn_nb_connection": ovn_site.socket(plan, "ovnnb_db"),
            "ovn_sb_connection": ovn_site.socket(plan, "ovnsb_db"),
            "ovn_metadata_enabled": "false",
            "enable_distributed_floating_ip": "false",
        },
    }


def proxy_toml(
    plan: SitePlan,
    creds: Credentials,
    peers: list[SitePlan],
    security: Mapping[str, SiteSecurity],
    seeds: Sequence[str] = (),
) -> str:
    """The site's proxy config, in the format ``edgescope proxy run --config`` reads: its own
    key, a peer listener over mutual TLS, each static peer's TLS address and public key, and
    the site directory (its endorsement; ``seeds``, or else its static peers, to gossip with)
    through which sites that join later become peers."""
    own = security[plan.name]
    seeds = list(seeds) or [peer.peer_url for peer in peers]
    services = []
    for service, (service_type, prefix) in SERVICE_TYPES.items():
        entry: dict[str, Any] = {"type": service_type}
        # behind HAProxy each service has a listener of its own (docs/deploy.md)
        if plan.catalog == "haproxy":
            entry["port"] = plan.proxy_listener_port(service)
        else:
            entry["prefix"] = prefix
        services.append({**entry, "backend": plan.direct_url(service)})
    doc: dict[str, Any] = {
        "site": plan.name,
        "listen": f"{plan.bind_host}:{plan.port('proxy')}",
        "peer_listen": f"{plan.bind_host}:{plan.port('proxy-peer')}",
        "private_key_file": str(own.key_file),
        "services": services,
        "peers": [
            {
                "name": peer.name,
                "url": peer.peer_url,
                "public_key": security[peer.name].public_key,
                "connect_timeout": 2.0,
                "read_timeout": 30.0,
            }
            for peer in peers
        ],
        "identity": {
            "auth_url": plan.keystone_direct_v3,
            "username": "edgescope",
            "password": creds.service,
            "project": "service",
            "user_domain": "Default",
            "project_domain": "Default",
        },
        "trust": {
            COMMENT: "the testbed's operator trusts its sites: the static peers with everything, "
            "their\nadmins acting on this Keystone too; sites that join later route and gossip",
            "configured": ["route", "replicas", "directory"],
            "learned": ["route", "directory"],
            "sites": {
                peer.name: {
                    COMMENT: "its admins may act on this Keystone (docs/security.md)",
                    "delegate_roles": ["admin"],
                }
                for peer in peers
            },
        },
        "tls": {
            "cert_file": str(own.cert_file),
            "key_file": str(own.tls_key_file),
            "ca_file": str(own.ca_file),
            "require_client_cert": True,
        },
        "replicas": {"state_dir": str(plan.root)},
        "directory": {
            "state_dir": str(plan.root),
            "url": plan.peer_url,
            "endorsement_file": str(own.endorsement_file),
            "authorities": [own.authority],
            "seeds": seeds,
        },
        "events": {
            COMMENT: "the console's feed, for this site's admins (edgescope console)",
            "operator_roles": ["admin"],
        },
    }
    if plan.catalog == "haproxy":
        doc["haproxy"] = haproxy_table(plan)
    return render_config(doc)


def haproxy_table(plan: SitePlan) -> dict[str, Any]:
    """``[haproxy]`` of a site run as Kolla runs one (``edgescope deploy haproxy`` reads it,
    and the testbed's HAProxy is made from it): the ``plain`` flavor, scoped calls refused
    with a clear 503 when the proxy is down, the catalog's ports, and a quick health check so
    a restarted proxy takes its calls back within a second."""
    return {
        "flavor": "plain",
        "on_edgescope_down": "closed",
        "check": "check inter 1s fall 2 rise 1",
        "ports": {
            service_type: plan.haproxy_port(service)
            for service, (service_type, _) in SERVICE_TYPES.items()
        },
    }


def render_site(
    plan: SitePlan,
    creds: Credentials,
    *,
    transport_url: str,
    peers: list[SitePlan] | None = None,
    security: Mapping[str, SiteSecurity] | None = None,
    seeds: Sequence[str] = (),
    ovn: bool = True,
) -> dict[str, str]:
    """Every config file of the site, by path relative to the site folder (cinder's and
    Ceph's: ``cinder.py``, ``ceph.py``)."""
    neutron = neutron_conf(plan, creds, transport_url, ovn=ovn)
    files = {
        "etc/keystone/keystone.conf": render_ini(keystone_conf(plan)),
        "etc/glance/glance-api.conf": render_ini(glance_conf(plan, creds)),
        "etc/placement/placement.conf": render_ini(placement_conf(plan, creds)),
        "etc/nova/nova.conf": render_ini(nova_conf(plan, creds, transport_url)),
        "etc/nova/nova-db.conf": render_ini(nova_db_conf(plan)),
        "etc/neutron/neutron.conf": render_ini(neutron),
        "etc/neutron/plugins/ml2/ml2_conf.ini": render_ini(ml2_conf(plan, ovn=ovn)),
    }
    if security is not None:
        files["etc/proxy.toml"] = proxy_toml(plan, creds, peers or [], security, seeds)
    return files


_PASTE_SETTINGS = {
    # keystonemiddleware's delay_auth_decision (glance ships it on) turns "the identity site
    # cannot be reached" into an invalid token: a 401, on which '|' rightly does not fall
    # back. Off, the same failure is a 503, so a scope such as {glance: Corte | Marseille}
    # moves on when Corte cannot reach the user's Keystone. The service token nova adds
    # (X-Service-Token) never crosses to a peer (sender.keep_credentials_home), so a remote
    # glance validates the user's token only. Every glance call here is authenticated.
    "glance/glance-api-paste.ini": {"delay_auth_decision": "false"},
}


def adjust_paste(rel: str, text: str) -> str:
    """A package's paste .ini with the testbed's settings (``key = value`` lines replaced)."""
    settings = _PASTE_SETTINGS.get(rel, {})
    lines = text.splitlines(keepends=True)
    for i, line in enumerate(lines):
        key = line.split("=", 1)[0].strip()
        if "=" in line and key in settings:
            lines[i] = f"{key} = {settings[key]}\n"
    return "".join(lines)


# Shared with the modules of the newer services (cinder.py).
auth_settings = _auth
authtoken = _authtoken
common = _common
