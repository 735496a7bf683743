"""Whether a call with a remote parent (``traceparent``) is traced: trusted from peers only.

:class:`RemoteParent` is the sampler :mod:`tracing` gives OpenTelemetry's ``ParentBased`` for
remote parents. A call from a signed peer proxy (the span's ``edgescope.from_peer``
attribute, set only after the hop marker was verified) follows the peer's sampled flag, so
a trace is kept or dropped as a whole; a call from a client is kept with this proxy's
``sample_ratio``, drawn at random, whatever flag or trace id the client sent.

    ParentBased(TraceIdRatioBased(0.1), remote_parent_sampled=RemoteParent(0.1),
                remote_parent_not_sampled=RemoteParent(0.1))
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, get_current_span
from opentelemetry.trace.span import TraceState
from opentelemetry.util.types import Attributes

FROM_PEER = "edgescope.from_peer"


class RemoteParent(Sampler):
    """A signed peer's sampled flag is followed; a client's is not (the ratio decides)."""

    def __init__(self, ratio: float) -> None:
        self.ratio = ratio
        self._random = random.SystemRandom()

    def should_sample(
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: TraceState | None = None,
    ) -> SamplingResult:
        parent = get_current_span(parent_context).get_span_context()
        if attributes and attributes.get(FROM_PEER):
            keep = parent.trace_flags.sampled
        else:
            keep = self._random.random() < self.ratio
        decision = Decision.RECORD_AND_SAMPLE if keep else Decision.DROP
        return SamplingResult(decision, attributes if keep else None, parent.trace_state)

    def get_description(self) -> str:
        return f"EdgescopeRemoteParent{{peer flag, else ratio {self.ratio}}}"
