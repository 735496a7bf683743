"""``edgescope proxy run`` builds the events and tracing extensions from their tables."""

from __future__ import annotations

from pathlib import Path

import pytest

import sitekeys
from edgescope.cli.extensions import build_extensions
from edgescope.errors import ConfigError
from edgescope.observe.events import Events
from edgescope.observe.tracing import Tracing
from edgescope.proxy.config import parse_config
from edgescope.replicas.extension import Replicas

RAW = {
    "site": "Paris",
    "listen": "127.0.0.1:0",
    "private_key": sitekeys.private("Paris"),
    "services": [{"type": "image", "prefix": "/image", "backend": "http://127.0.0.1:9"}],
}


def test_events_see_the_replicas_and_tracing_is_built(tmp_path: Path) -> None:
    config = parse_config(
        {
            **RAW,
            "replicas": {"state_dir": str(tmp_path)},
            "events": {"operator_roles": ["admin", "operator"], "queue_size": 10},
            "tracing": {"otlp_endpoint": "http://127.0.0.1:4318/v1/traces"},
        }
    )
    replicas, events, tracing = build_extensions(config, None)
    assert isinstance(replicas, Replicas) and isinstance(tracing, Tracing)
    assert isinstance(events, Events) and events.replicas is replicas
    assert events.config.operator_roles == ("admin", "operator")
    assert events.feed.queue_size == 10
    assert tracing.config.otlp_endpoint == "http://127.0.0.1:4318/v1/traces"
    replicas.registry.close()


def test_a_bad_table_stops_the_proxy_before_it_starts() -> None:
    config = parse_config({**RAW, "events": {"queue_size": -1}})
    with pytest.raises(ConfigError, match=r"events\.queue_size"):
        build_extensions(config, None)
