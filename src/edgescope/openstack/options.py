"""What ``--os-scope`` means for one command: parse, check, and complete the scope. Pure, no I/O.

Neighbours: ``osc_plugin.py`` declares the option, ``session.py`` attaches the result to every
request, scope-lang (:mod:`edgescope.lang`) parses and checks. The sites a scope may name are the
ones the client knows: the clouds and regions of ``clouds.yaml``, or ``--os-scope-sites``.

    >>> scope = resolve_scope("{nova: Paris, glance: Corte}",
    ...                       known_sites={"Paris", "Corte"}, own_site="Paris")
    >>> unparse(scope)
    '{compute: Paris, image: Corte, identity: Paris}'
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from edgescope.catalog import Catalog
from edgescope.errors import ScopeCheckError
from edgescope.lang import Scope, check_scope, parse_scope, unparse

__all__ = ["known_sites_from_clouds", "parse_site_list", "resolve_scope", "unparse"]


def resolve_scope(text: str, *, known_sites: Iterable[str], own_site: str | None) -> Scope:
    """Parse ``text``, check it against ``known_sites``, make ``identity`` explicit.

    ``identity`` defaults to the user's own site (the cloud's region), so a remote service
    knows which Keystone must validate the user's token. Raises :class:`ScopeError`
    subclasses with positions; nothing here sends a request.
    """
    scope = parse_scope(text)
    sites = sorted(set(known_sites) | ({own_site} if own_site else set()))
    if not sites:
        raise ScopeCheckError(
            "no known site to check the scope against: name the sites with --os-scope-sites "
            "(env OS_SCOPE_SITES) or give each clouds.yaml entry a region_name",
            text,
            0,
            len(text),
        )
    check_scope(scope, Catalog.from_sites(sites))
    if scope.expr_for("identity") is None:
        if own_site is None:
            raise ScopeCheckError(
                "the scope has no identity entry and the cloud has no region_name: "
                "add 'identity: <your site>' to the scope",
                text,
                0,
                len(text),
            )
        scope = scope.with_site("identity", own_site)
    return scope


def parse_site_list(text: str | None) -> frozenset[str]:
    """``"Paris, Corte"`` -> {"Paris", "Corte"}; empty or None -> empty set."""
    return frozenset(part.strip() for part in (text or "").split(",") if part.strip())


def known_sites_from_clouds(clouds: Mapping[str, Any]) -> frozenset[str]:
    """The sites a ``clouds.yaml`` ``clouds:`` mapping knows: its regions.

    A site is an OpenStack region (keystoneauth selects endpoints by region). A cloud entry
    without any region counts by its own name, as edge deployments name clouds after sites.
    """
    sites: set[str] = set()
    for name, cloud in clouds.items():
        regions = _regions(cloud) if isinstance(cloud, Mapping) else []
        sites.update(regions or [str(name)])
    return frozenset(sites)


def _regions(cloud: Mapping[str, Any]) -> list[str]:
    found = [str(cloud["region_name"])] if cloud.get("region_name") else []
    for region in cloud.get("regions") or ():
        region_name = region.get("name") if isinstance(region, Mapping) else region
        if region_name:
            found.append(str(region_name))
    return found
