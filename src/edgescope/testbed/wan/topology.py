"""The WAN topology: sites, their addresses, and the RTT, jitter and loss of every pair.

Pure data, no I/O besides reading the TOML file. ``netns`` builds namespaces from it,
``delayer`` and ``netem`` turn its links into delays, ``partition`` cuts its pairs.

    >>> topo = load_topology()                       # the shipped Renater default
    >>> [s.name for s in topo.sites]
    ['Paris', 'Corte', 'Marseille']
    >>> topo.link("Corte", "Paris").rtt_ms
    20.0
    >>> topo.site("paris").address                   # site names are case-insensitive
    '10.66.0.1'
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from edgescope.errors import ConfigError

DEFAULT_TOPOLOGY = "renater"
_SITE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,11}$")
_TOP_KEYS = {"subnet", "sites", "links", "default_rtt_ms"}
_SITE_KEYS = {"name", "address", "optional"}
_LINK_KEYS = {"sites", "rtt_ms", "jitter_ms", "loss"}


@dataclass(frozen=True)
class Site:
    name: str
    """Display name, e.g. ``Paris``; the namespace is ``es-paris``."""
    address: str
    """IPv4 address of the site inside the WAN subnet (only visible inside our namespaces)."""
    optional: bool = False
    """Optional sites are only brought up when selected by name."""


@dataclass(frozen=True)
class Link:
    a: str
    b: str
    rtt_ms: float
    """Round-trip time; each direction is delayed by ``rtt_ms / 2``."""
    jitter_ms: float = 0.0
    """Added to each one-way delay, uniformly in ``[-jitter_ms, +jitter_ms]``."""
    loss: float = 0.0
    """Probability (0..1) that a packet is dropped, applied in each direction."""

    @property
    def one_way_ms(self) -> float:
        return self.rtt_ms / 2


@dataclass(frozen=True)
class Topology:
    subnet: str
    sites: tuple[Site, ...]
    links: tuple[Link, ...]
    """Exactly one link per unordered pair of ``sites``."""

    @property
    def prefixlen(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.sites]

    def site(self, name: str) -> Site:
        """The site called ``name`` (any case); ConfigError listing the valid names otherwise."""
        for site in self.sites:
            if site.name.lower() == name.lower():
                return site
        raise ConfigError(f"unknown site {name!r}; valid sites: {', '.join(self.names)}")

    def link(self, a: str, b: str) -> Link:
        """The link between two distinct sites (either order)."""
        first, second = self.site(a).name, self.site(b).name
        if first == second:
            raise ConfigError(f"a link needs two different sites, got {first} twice")
        for link in self.links:
            if {link.a, link.b} == {first, second}:
                return link
        raise ConfigError(f"no link between {first} and {second}")  # unreachable once validated

    def with_link(
        self,
        a: str,
        b: str,
        *,
        rtt_ms: float | None = None,
        jitter_ms: float | None = None,
        loss: float | None = None,
    ) -> Topology:
        """A copy where the a–b link has the given RTT, jitter or loss."""
        old = self.link(a, b)
        new = replace(
            old,
            rtt_ms=old.rtt_ms if rtt_ms is None else float(rtt_ms),
            jitter_ms=old.jitter_ms if jitter_ms is None else float(jitter_ms),
            loss=old.loss if loss is None else float(loss),
        )
        _check_link_values(new, f"link {old.a}–{old.b}")
        return replace(self, links=tuple(new if lk == old else lk for lk in self.links))

    def to_dict(self) -> dict[str, Any]:
        """The TOML-shaped dict this topology loads back from (used to persist WAN state)."""
        return {
            "subnet": self.subnet,
            "sites": [
                {"name": s.name, "address": s.address, "optional": s.optional} for s in self.sites
            ],
            "links": [
                {
                    "sites": [lk.a, lk.b],
                    "rtt_ms": lk.rtt_ms,
                    "jitter_ms": lk.jitter_ms,
                    "loss": lk.loss,
                }
                for lk in self.links
            ],
        }


def load_topology(
    path: str | Path | None = None, *, sites: Sequence[str] | None = None
) -> Topology:
    """Read a topology TOML file (default: the shipped Renater one) and validate it.

    ``sites`` selects sites by name (optional ones included); by default every
    non-optional site is kept.
    """
    if path is None:
        text = (
            resources.files(__package__).joinpath(f"topologies/{DEFAULT_TOPOLOGY}.toml").read_text()
        )
        origin = f"<default {DEFAULT_TOPOLOGY} topology>"
    else:
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read topology file {path}: {exc.strerror}") from exc
        origin = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: invalid TOML: {exc}") from exc
    try:
        return parse_topology(data, sites=sites)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from exc


def parse_topology(data: Mapping[str, Any], *, sites: Sequence[str] | None = None) -> Topology:
    """Validate a TOML-shaped mapping into a Topology (see ``load_topology``)."""
    _check_keys(data, _TOP_KEYS, "top level")
    subnet = _parse_subnet(data.get("subnet", "10.66.0.0/24"))
    all_sites = _parse_sites(data.get("sites"), subnet)
    chosen = _select(all_sites, sites)
    default_rtt = data.get("default_rtt_ms")
    links = _parse_links(data.get("links", []), all_sites, chosen, default_rtt)
    return Topology(subnet=str(subnet), sites=tuple(chosen), links=tuple(links))


def _parse_subnet(value: Any) -> ipaddress.IPv4Network:
    try:
        net = ipaddress.ip_network(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"subnet {value!r} is not an IPv4 network like '10.66.0.0/24'") from exc
    if not isinstance(net, ipaddress.IPv4Network) or not net.is_private or net.num_addresses < 4:
        raise ConfigError(f"subnet {value!r} must be a private IPv4 network with room for sites")
    return net


def _parse_sites(raw: Any, subnet: ipaddress.IPv4Network) -> list[Site]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError("'sites' must be a non-empty list of [[sites]] tables")
    hosts = list(subnet.hosts())
    result: list[Site] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"sites[{index}] must be a table with a 'name'")
        _check_keys(entry, _SITE_KEYS, f"sites[{index}]")
        name = entry.get("name")
        if not isinstance(name, str) or not _SITE_NAME.match(name):
            raise ConfigError(
                f"sites[{index}]: name {name!r} must be 1-12 letters, digits or '_', "
                "starting with a letter"
            )
        if any(s.name.lower() == name.lower() for s in result):
            raise ConfigError(f"site {name!r} is listed twice")
        address = entry.get("address", str(hosts[index]) if index < len(hosts) else None)
        try:
            ip = ipaddress.IPv4Address(address)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"site {name}: address {address!r} is not an IPv4 address") from exc
        if ip not in hosts:
            raise ConfigError(f"site {name}: address {ip} is not a host address of {subnet}")
        if any(s.address == str(ip) for s in result):
            raise ConfigError(f"site {name}: address {ip} is already used")
        result.append(Site(name=name, address=str(ip), optional=bool(entry.get("optional", False))))
    return result


def _select(all_sites: list[Site], wanted: Sequence[str] | None) -> list[Site]:
    if wanted is None:
        return [s for s in all_sites if not s.optional]
    by_name = {s.name.lower(): s for s in all_sites}
    chosen: list[Site] = []
    for name in wanted:
        site = by_name.get(name.lower())
        if site is None:
            valid = ", ".join(s.name for s in all_sites)
            raise ConfigError(f"unknown site {name!r}; valid sites: {valid}")
        if site not in chosen:
            chosen.append(site)
    if len(chosen) < 2:
        raise ConfigError("a WAN needs at least two sites")
    return chosen


def _parse_links(
    raw: Any, all_sites: list[Site], chosen: list[Site], default_rtt: Any
) -> list[Link]:
    if not isinstance(raw, list):
        raise ConfigError("'links' must be a list of [[links]] tables")
    names = {s.name.lower(): s.name for s in all_sites}
    given: dict[frozenset[str], Link] = {}
    for index, entry in enumerate(raw):
        where = f"links[{index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table with 'sites' and 'rtt_ms'")
        _check_keys(entry, _LINK_KEYS, where)
        pair = entry.get("sites")
        if (
            not isinstance(pair, list)
            or len(pair) != 2
            or not all(isinstance(p, str) for p in pair)
        ):
            raise ConfigError(f"{where}: 'sites' must be a list of two site names")
        unknown = [p for p in pair if p.lower() not in names]
        if unknown:
            raise ConfigError(
                f"{where}: unknown site {unknown[0]!r}; valid sites: {', '.join(names.values())}"
            )
        a, b = (names[p.lower()] for p in pair)
        if a == b:
            raise ConfigError(f"{where}: a link needs two different sites, got {a} twice")
        key = frozenset((a, b))
        if key in given:
            raise ConfigError(f"{where}: the {a}–{b} link is listed twice")
        if "rtt_ms" not in entry:
            raise ConfigError(f"{where}: 'rtt_ms' is required")
        link = Link(
            a,
            b,
            _number(entry, "rtt_ms", where),
            _number(entry, "jitter_ms", where),
            _number(entry, "loss", where),
        )
        _check_link_values(link, where)
        given[key] = link
    links: list[Link] = []
    for i, first in enumerate(chosen):
        for second in chosen[i + 1 :]:
            found = given.get(frozenset((first.name, second.name)))
            if found is not None:
                links.append(found)
                continue
            if default_rtt is None:
                raise ConfigError(
                    f"no link between {first.name} and {second.name}: add a [[links]] table "
                    "or a top-level default_rtt_ms"
                )
            link = Link(first.name, second.name, _number({"d": default_rtt}, "d", "default_rtt_ms"))
            _check_link_values(link, "default_rtt_ms")
            links.append(link)
    return links


def _number(entry: Mapping[str, Any], key: str, where: str) -> float:
    value = entry.get(key, 0.0)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    return float(value)


def _check_link_values(link: Link, where: str) -> None:
    if not 0 <= link.rtt_ms <= 10_000:
        raise ConfigError(f"{where}: rtt_ms must be between 0 and 10000, got {link.rtt_ms:g}")
    if not 0 <= link.jitter_ms <= link.rtt_ms / 2:
        raise ConfigError(
            f"{where}: jitter_ms must be between 0 and half the RTT ({link.rtt_ms / 2:g}), "
            f"got {link.jitter_ms:g}"
        )
    if not 0 <= link.loss <= 1:
        raise ConfigError(f"{where}: loss must be a fraction between 0 and 1, got {link.loss:g}")


def _check_keys(entry: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(allowed))}"
        )
