"""The replicas extension's metrics, served with the proxy's own at ``/metrics``.

    edgescope_replica_queue_writes            writes queued for unreachable members
    edgescope_replica_queue_bytes             bytes they hold (bodies and kept headers)
    edgescope_replica_queue_full_total        eventual writes refused: the queue at a bound
    edgescope_replica_quarantined_total       stored rows moved aside (failed their checks)
    edgescope_replica_push_refused_total      record pushes from peers refused

Read when scraped from what the extension keeps (no database query on a scrape).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from edgescope.replicas.peers import RecordLink

if TYPE_CHECKING:
    from prometheus_client import Metric


class ReplicaCollector(Collector):
    def __init__(self, link: RecordLink) -> None:
        self.link = link

    def collect(self) -> Iterator[Metric]:
        link = self.link
        count, size = link.registry.usage
        yield GaugeMetricFamily(
            "edgescope_replica_queue_writes", "Writes queued for unreachable members", count
        )
        yield GaugeMetricFamily(
            "edgescope_replica_queue_bytes", "Bytes the queued writes hold", size
        )
        yield CounterMetricFamily(
            "edgescope_replica_queue_full",
            "Eventual writes refused because the queue was at a bound",
            link.registry.queue_full,
        )
        yield CounterMetricFamily(
            "edgescope_replica_quarantined",
            "Stored replica rows moved aside because they failed their checks",
            link.registry.quarantined,
        )
        yield CounterMetricFamily(
            "edgescope_replica_push_refused",
            "Replica record pushes from peers refused",
            link.refused_pushes,
        )


def register_metrics(registry: CollectorRegistry | None, link: RecordLink) -> None:
    """Add the replicas' metrics to the proxy's registry (once; none without one)."""
    if registry is not None:
        registry.register(ReplicaCollector(link))
