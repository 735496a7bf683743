"""What a proxy tells an operator's console: call and state events, and the bounded feed.

Pure shapes (:func:`call_event`, :func:`state_event`) and :class:`Feed`, which hands each
event, encoded once as a server-sent event, to every subscriber's bounded queue. A slow
subscriber never slows the proxy: when its queue is full the event is dropped for it and
counted (:attr:`Subscriber.dropped`, reported in its next state event).

Nothing secret goes in an event: no header values but the caller's User-Agent product, no
query string (a path's ids are kept), no body.

    feed = Feed(queue_size=1000, max_subscribers=8)
    subscriber = feed.subscribe()
    feed.publish("call", call_event(call, 200, 0.012, "Paris"))
    chunk = await subscriber.queue.get()      # b"event: call\\ndata: {...}\\n\\n"; b"": the end
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any

from edgescope.errors import EdgescopeError
from edgescope.proxy.call import BranchTrace, Call

PATH_LIMIT = 200
AGENT_LIMIT = 60


class FeedFull(EdgescopeError):
    """As many consoles as the proxy allows are connected already (-> 503)."""


class Subscriber:
    """One console's connection: a bounded queue of encoded events, and what it missed."""

    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self.dropped = 0

    def close(self) -> None:
        """End the stream: an empty chunk, in place of whatever was still waiting."""
        while self.queue.full():
            self.queue.get_nowait()
        self.queue.put_nowait(b"")

    def offer(self, chunk: bytes) -> None:
        try:
            self.queue.put_nowait(chunk)
        except asyncio.QueueFull:
            self.dropped += 1


class Feed:
    """Every connected console's queue; :meth:`publish` never waits."""

    def __init__(self, queue_size: int, max_subscribers: int) -> None:
        self.queue_size = queue_size
        self.max_subscribers = max_subscribers
        self.subscribers: set[Subscriber] = set()
        self.dropped = 0
        """Events dropped for slow consoles since start, all consoles together."""
        self.refused = 0
        """Consoles refused because ``max_subscribers`` were connected."""

    def subscribe(self) -> Subscriber:
        if len(self.subscribers) >= self.max_subscribers:
            self.refused += 1
            raise FeedFull(
                f"{len(self.subscribers)} consoles are connected (max_subscribers); retry later"
            )
        subscriber = Subscriber(self.queue_size)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.discard(subscriber)

    def close(self) -> None:
        """End every subscriber's stream (the proxy stops)."""
        for subscriber in self.subscribers:
            subscriber.close()

    def publish(self, kind: str, data: Mapping[str, Any]) -> None:
        if not self.subscribers:
            return
        chunk = encode(kind, data)
        for subscriber in self.subscribers:
            before = subscriber.dropped
            subscriber.offer(chunk)
            self.dropped += subscriber.dropped - before

    def offer_state(self, subscriber: Subscriber, data: Mapping[str, Any]) -> None:
        """A state event for one subscriber (each has its own count of dropped events)."""
        before = subscriber.dropped
        subscriber.offer(encode("state", data))
        self.dropped += subscriber.dropped - before


def encode(kind: str, data: Mapping[str, Any]) -> bytes:
    """One server-sent event (``event:`` and a one-line JSON ``data:``)."""
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def call_event(call: Call, status: int, seconds: float, site: str) -> dict[str, Any]:
    """A call as the console shows it: who, what, the scope, and the route it took."""
    request = call.request
    agent = request.headers.get("User-Agent", "").split(" ", 1)[0][:AGENT_LIMIT]
    return {
        "id": call.request_id,
        "at": round(time.time() - seconds, 3),
        "site": site,
        "method": request.method,
        "service": call.service,
        "path": call.path.split("?", 1)[0][:PATH_LIMIT],
        "scope": call.scope_text,
        "resolved": call.resolved,
        "carrier": call.carrier,
        "mode": call.mode,
        "from_peer": call.from_peer,
        "client": call.from_peer or request.remote or "",
        "agent": agent,
        "status": status,
        "ms": round(seconds * 1000, 1),
        "route": [branch_event(b) for b in call.branches],
    }


def branch_event(trace: BranchTrace) -> dict[str, Any]:
    return {
        "site": trace.site,
        "status": trace.status,
        "error": trace.error[:200],
        "ms": None if trace.seconds is None else round(trace.seconds * 1000, 1),
        "breaker": trace.breaker,
    }


def state_event(
    status: Mapping[str, Any],
    replicas: Mapping[str, Any] | None,
    *,
    dropped: int,
) -> dict[str, Any]:
    """The proxy's state: its peers (breaker, RTT, last error), replicas, events dropped."""
    peers = [
        {
            "name": p["name"],
            "breaker": p["breaker"],
            "failures": p["failures"],
            "last_error": str(p["last_error"])[:200],
            "rtt_ms": p["rtt_ms"],
        }
        for p in status.get("peers", [])
    ]
    return {
        "site": status.get("site"),
        "at": round(time.time(), 3),
        "peers": peers,
        "services": [s["type"] for s in status.get("services", [])],
        "replicas": dict(replicas) if replicas is not None else None,
        "dropped": dropped,
    }
