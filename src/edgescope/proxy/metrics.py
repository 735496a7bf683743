"""Prometheus metrics of one site proxy, served at ``/metrics``.

Neighbours: ``server.py`` owns one :class:`ProxyMetrics` (its own registry, so several
proxies can live in one process, as in the tests) and feeds it on every call and probe.

    edgescope_peer_request_seconds{peer="Corte"}   histogram of calls to each peer proxy
    edgescope_breaker_state{peer="Corte"}          0 closed, 1 half-open, 2 open
    edgescope_fanout_width                         histogram of sites per multi-site call
    edgescope_requests_total{service, status}      every call the proxy answered
    edgescope_own_lag_retries_total                connects retried: this proxy was too busy
    edgescope_resent_on_heal_total{peer="Corte"}   reads sent again, fresh, when a peer healed
    edgescope_watch_probes_total{peer, outcome}    a suspect peer's watch probes (fresh)
    edgescope_bound_size{bound="spool_bytes"}      what a bounded queue, cache or spool holds
    edgescope_bound_limit{bound="spool_bytes"}     its bound (docs/security.md, "Limits")
    edgescope_bound_refused_total{bound=...}       items refused or evicted at the bound
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from edgescope.proxy.body import SpoolBudget
from edgescope.proxy.breaker import STATE_VALUES, State

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
)
FANOUT_BUCKETS = (1, 2, 3, 5, 10, 20, 50, 100, 200, 500, 1000)


@dataclass(frozen=True, slots=True)
class Bound:
    """One bounded structure as the metrics see it: read when ``/metrics`` is scraped."""

    name: str
    size: Callable[[], float]
    limit: float
    refused: Callable[[], float] | None = None


class _Bounds:
    """A collector of every registered :class:`Bound` (three families, labelled by bound)."""

    def __init__(self) -> None:
        self.bounds: dict[str, Bound] = {}

    def collect(self) -> Iterator[Metric]:
        size = GaugeMetricFamily(
            "edgescope_bound_size", "What a bounded queue, cache or spool holds", labels=["bound"]
        )
        limit = GaugeMetricFamily("edgescope_bound_limit", "Its bound", labels=["bound"])
        refused = CounterMetricFamily(
            "edgescope_bound_refused",
            "Items refused (or, for a cache, evicted) because the bound was reached",
            labels=["bound"],
        )
        for bound in self.bounds.values():
            size.add_metric([bound.name], bound.size())
            limit.add_metric([bound.name], bound.limit)
            if bound.refused is not None:
                refused.add_metric([bound.name], bound.refused())
        yield from (size, limit, refused)


class ProxyMetrics:
    """The metric families of one proxy, in a private registry."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, site: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = {"site": site}
        self.peer_latency = Histogram(
            "edgescope_peer_request_seconds",
            "Time to the response headers of a peer proxy",
            ["peer"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels
        self.breaker_state = Gauge(
            "edgescope_breaker_state",
            "Per-peer circuit breaker: 0 closed, 1 half-open, 2 open",
            ["peer"],
            registry=self.registry,
        )
        self.fanout = Histogram(
            "edgescope_fanout_width",
            "Sites touched by one multi-site call",
            buckets=FANOUT_BUCKETS,
            registry=self.registry,
        )
        self.requests = Counter(
            "edgescope_requests",
            "Calls answered by this proxy",
            ["service", "status"],
            registry=self.registry,
        )
        self.own_lag_retries = Counter(
            "edgescope_own_lag_retries",
            "Connects to a peer retried because this proxy's own loop was too late to see "
            "them made in time (a wide fan-out on a busy proxy), not counted against the peer",
            registry=self.registry,
        )
        self.resent_on_heal = Counter(
            "edgescope_resent_on_heal",
            "Reads waiting on a peer sent once more, on a fresh connection, when that peer "
            "healed (a probe or call got through after a failure)",
            ["peer"],
            registry=self.registry,
        )
        self.watch_probes = Counter(
            "edgescope_watch_probes",
            "Probes of a suspect peer on a fresh connection, listening for its heal",
            ["peer", "outcome"],
            registry=self.registry,
        )
        self.untrusted = Counter(
            "edgescope_peer_requests_refused",
            "Signed peer requests this site's [trust] policy refused, by the capability needed",
            ["needs"],
            registry=self.registry,
        )
        self.hedges = Counter(
            "edgescope_hedges",
            "Reads of a | sent to the next site too because the first had not answered "
            "within its recent p95 (docs/proxy.md, Hedged reads)",
            ["outcome"],
            registry=self.registry,
        )
        self.info = Gauge(
            "edgescope_proxy_info", "This proxy's site", ["site"], registry=self.registry
        )
        self.info.labels(**labels).set(1)
        self._bounds = _Bounds()
        self.registry.register(self._bounds)

    def bound(
        self,
        name: str,
        size: Callable[[], float],
        limit: float,
        refused: Callable[[], float] | None = None,
    ) -> None:
        """Report a bounded structure (``edgescope_bound_*{bound=name}``)."""
        self._bounds.bounds[name] = Bound(name, size, limit, refused)

    def watch_spools(self, budget: SpoolBudget) -> None:
        """The spool budget: how many bodies are kept, and their bytes."""
        self.bound("spools", lambda: budget.count, budget.max_count, lambda: budget.refused)
        self.bound("spool_bytes", lambda: budget.bytes, budget.max_bytes)

    def set_breaker(self, peer: str, state: State) -> None:
        self.breaker_state.labels(peer=peer).set(STATE_VALUES[state])

    def render(self) -> bytes:
        return generate_latest(self.registry)
