"""Build a site's proxy TOML from its Keystone catalog (``openstack endpoint list -f json``).

Neighbours: ``cli/proxy.py`` (``edgescope proxy gen-config``) reads the JSON and writes the
text (through ``config_file.py``, the one TOML writer); ``config.py`` loads the result.
Pure: JSON in, TOML text out.

Each catalog endpoint of the chosen interface (and region) becomes one ``[[services]]``
entry: the canonical service type, prefix ``/<type>``, and the endpoint's origin
(``scheme://host:port``) as the backend. A comment under each entry gives the URL the
catalog should hold afterwards, so clients go through the proxy.

    >>> rows = [{"Service Type": "image", "Interface": "public", "Region": "RegionOne",
    ...          "URL": "http://127.0.0.1:9292", "Enabled": True}]
    >>> print(site_toml(rows, site="Paris", listen="127.0.0.1:20190",
    ...                 private_key_file="/etc/edgescope/paris.key").splitlines()[0])
    # edgescope proxy config for site Paris, generated from its Keystone catalog
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from yarl import URL

from edgescope.errors import ConfigError
from edgescope.proxy.config import canonical_service
from edgescope.proxy.config_file import COMMENT, render_config


def site_toml(
    endpoints: Sequence[Mapping[str, Any]],
    *,
    site: str,
    listen: str,
    private_key_file: str,
    interface: str = "public",
    region: str | None = None,
    peers: Iterable[tuple[str, str, str]] = (),
) -> str:
    """``peers`` are (name, proxy URL, public key)."""
    # The TOML text for ``site``; raises ConfigError on an ambiguous or empty catalog.
    chosen: dict[str, tuple[URL, Mapping[str, Any]]] = {}
    regions = sorted({str(e.get("Region")) for e in endpoints})
    for endpoint in endpoints:
        if str(endpoint.get("Interface", "")).lower() != interface:
            continue
        if region is not None and endpoint.get("Region") != region:
            continue
        if endpoint.get("Enabled") is False:
            continue
        service = canonical_service(str(endpoint.get("Service Type", "")))
        url = URL(str(endpoint.get("URL", "")))
        if not url.host or url.scheme not in ("http", "https"):
            raise ConfigError(f"endpoint {endpoint.get('ID', '?')}: bad URL {url}")
        if service in chosen and chosen[service][0] != url:
            raise ConfigError(
                f"several {interface} endpoints for {service}; pass --region, "
                f"one of: {', '.join(regions)}"
            )
        chosen[service] = (url, endpoint)
    if not chosen:
        raise ConfigError(
            f"no {interface} endpoint in the catalog"
            + (f" for region {region}" if region else "")
            + "; valid interfaces: public, internal, admin"
        )
    services = [
        {
            "type": service,
            "prefix": f"/{service}",
            "backend": str(url.origin()),
            COMMENT: "catalog URL through the proxy: "
            f"http://{listen}/{service}{url.raw_path.rstrip('/')}",
        }
        for service, (url, _) in chosen.items()
    ]
    peer_tables = [
        {
            "name": name,
            "url": peer_url,
            "public_key": public_key,
            "connect_timeout": 2.0,
            "read_timeout": 30.0,
        }
        for name, peer_url, public_key in peers
    ]
    doc: dict[str, Any] = {
        COMMENT: f"edgescope proxy config for site {site}, generated from its Keystone catalog",
        "site": site,
        "listen": listen,
        "private_key_file": private_key_file,
        "services": services,
    }
    if peer_tables:
        doc["peers"] = peer_tables
    return render_config(doc)


def load_endpoints(text: str) -> list[Mapping[str, Any]]:
    try:
        rows = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"not the JSON of 'openstack endpoint list -f json': {exc}") from exc
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ConfigError("expected a JSON list of endpoints ('openstack endpoint list -f json')")
    return rows
