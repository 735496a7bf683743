"""The proxy's extensions, by the table each owns in a site's TOML, and how a site loads.

The core config (``proxy/config.py``) knows no extension: it keeps every other table raw.
Here each extension names its table and its own parser, which validates the table whole
(``[replicas]: unknown key 'x'; valid keys: ...``); :func:`load_site` runs them all when
the file is read, so a bad table stops ``edgescope proxy run`` (and ``status``) with a
clear error before anything starts, and a table no extension owns is an unknown key.

    config = load_site(Path("paris.toml"))         # raises ConfigError
    extensions = build_extensions(config, state_dir=None)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from edgescope.deploy.haproxy import HaproxySettings
from edgescope.directory.gossip import Directory, DirectoryConfig
from edgescope.observe.events import Events, EventsConfig
from edgescope.observe.tracing import Tracing, TracingConfig
from edgescope.proxy.config import ProxyConfig, load_config, parse_config
from edgescope.proxy.extension import Extension
from edgescope.replicas.extension import Replicas, ReplicasConfig

Parser = Callable[[Mapping[str, Any], Path | None], object]

TABLES: Mapping[str, Parser] = {
    "directory": DirectoryConfig.parse,
    "replicas": ReplicasConfig.parse,
    "events": lambda raw, _: EventsConfig.parse(raw),
    "tracing": lambda raw, _: TracingConfig.parse(raw),
    "haproxy": lambda raw, _: HaproxySettings.parse(raw),
}
"""Each extension's table and the parser that validates it (``[haproxy]`` is read by
``edgescope deploy haproxy``, not by the proxy, and is checked all the same)."""


def load_site(path: str | Path, state_dir: Path | None = None) -> ProxyConfig:
    """Read a site's TOML: the core's part and every extension's table, each validated by
    its owner (``state_dir``: ``--state-dir``, which sets ``[replicas] state_dir``).
    Raises ConfigError."""
    return checked(load_config(path, extensions=TABLES), state_dir)


def parse_site(
    data: Mapping[str, Any], base_dir: Path | None = None, state_dir: Path | None = None
) -> ProxyConfig:
    """:func:`load_site` of a decoded document."""
    return checked(parse_config(data, base_dir, extensions=TABLES), state_dir)


def checked(config: ProxyConfig, state_dir: Path | None = None) -> ProxyConfig:
    """``config`` once each extension's parser accepted its table; raises ConfigError."""
    for name, raw in config.extension_tables.items():
        TABLES[name](
            _replicas_table(raw, state_dir) if name == "replicas" else raw, config.base_dir
        )
    return config


def _replicas_table(raw: Mapping[str, Any] | None, state_dir: Path | None) -> dict[str, Any]:
    return {**(raw or {}), **({"state_dir": str(state_dir)} if state_dir else {})}


def build_extensions(config: ProxyConfig, state_dir: Path | None) -> list[Extension]:
    """The proxy's extensions from its config: the site directory with a ``[directory]``
    table; replicas with a ``[replicas]`` table or ``--state-dir``; the console's events with
    ``[events]``; OpenTelemetry traces with ``[tracing]``."""
    extensions: list[Extension] = []
    tables = config.extension_tables
    if "directory" in tables:
        services = [s.type for s in config.services]
        settings = DirectoryConfig.parse(tables["directory"], config.base_dir)
        extensions.append(Directory(config.site, config.private_key, settings, services))
    raw = tables.get("replicas")
    replicas = None
    if state_dir is not None or raw is not None:
        replicas_config = ReplicasConfig.parse(_replicas_table(raw, state_dir), config.base_dir)
        replicas = Replicas.from_config(config.site, replicas_config)
        extensions.append(replicas)
    if "events" in tables:
        events = Events(config.site, EventsConfig.parse(tables["events"]), replicas=replicas)
        extensions.append(events)
    if "tracing" in tables:
        extensions.append(Tracing(config.site, TracingConfig.parse(tables["tracing"])))
    return extensions
