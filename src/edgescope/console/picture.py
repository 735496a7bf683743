"""What the console shows, made from what the proxies say: sites, links, calls (pure).

Each watched proxy's stream brings ``state`` events (its peers' breakers and RTTs, its
replicas) and ``call`` events; the WAN, on a testbed, says which links are cut. A link's
state is a pure function of both ends' breakers and the cut:

    cut        the WAN cuts it (testbed)
    down       a proxy at either end holds the other's breaker open
    degraded   a breaker is half-open
    up         a breaker is closed (calls or probes went through)
    idle       neither end has called the other yet (breakers unused)
    unknown    no end of it can be heard from

    picture = Picture(["Paris", "Corte"])
    picture.state("Paris", {"peers": [{"name": "Corte", "breaker": "open", ...}], ...})
    picture.links()[0]["state"]        # 'down'
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

CALLS_KEPT = 500
MAX_SITES = 1000
"""Most sites the picture holds (watched, and peers the proxies name); more are ignored and
counted (``ignored_sites`` in the overview), so a proxy naming a million peers grows nothing."""


@dataclass(slots=True)
class SiteView:
    """One proxy as the console hears it."""

    name: str
    watched: bool = True
    reachable: bool = False
    error: str = "not connected yet"
    state: dict[str, Any] | None = None
    heard_at: float | None = None

    def breaker_of(self, peer: str) -> str | None:
        """This proxy's breaker towards ``peer``, when it can be heard from."""
        if not self.reachable or self.state is None:
            return None
        for entry in self.state.get("peers", []):
            if entry.get("name") == peer:
                return str(entry.get("breaker"))
        return None

    def rtt_to(self, peer: str) -> float | None:
        if not self.reachable or self.state is None:
            return None
        for entry in self.state.get("peers", []):
            if entry.get("name") == peer and isinstance(entry.get("rtt_ms"), int | float):
                return float(entry["rtt_ms"])
        return None


@dataclass(slots=True)
class Picture:
    """The whole picture, updated event by event."""

    sites: list[str]
    seen_from: str | None = None
    """Where the console runs (its network namespace on a testbed), if known."""
    views: dict[str, SiteView] = field(default_factory=dict)
    cuts: frozenset[frozenset[str]] = frozenset()
    wan_rtt: dict[frozenset[str], float] = field(default_factory=dict)
    """The WAN's configured RTT per pair (testbed)."""
    calls: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=CALLS_KEPT))
    ignored: int = 0
    """Peers not added because the picture holds :data:`MAX_SITES` sites."""

    def __post_init__(self) -> None:
        for name in self.sites:
            self.views.setdefault(name, SiteView(name))

    # -- events ---------------------------------------------------------------------------

    def connected(self, site: str) -> None:
        view = self.views[site]
        view.reachable, view.error, view.heard_at = True, "", time.time()

    def lost(self, site: str, error: str) -> None:
        view = self.views[site]
        view.reachable, view.error = False, error

    def state(self, site: str, data: Mapping[str, Any]) -> None:
        view = self.views[site]
        view.state, view.reachable, view.error, view.heard_at = dict(data), True, "", time.time()
        for peer in data.get("peers", []):
            name = peer.get("name")
            if isinstance(name, str) and name not in self.views:
                if len(self.views) >= MAX_SITES:
                    self.ignored += 1
                    continue
                self.views[name] = SiteView(name, watched=False, error="not watched")
                self.sites.append(name)

    def call(self, site: str, data: Mapping[str, Any]) -> dict[str, Any]:
        event = {**data, "reported_by": site}
        self.calls.append(event)
        return event

    def wan(self, cuts: Iterable[Iterable[str]], rtt: Mapping[frozenset[str], float]) -> bool:
        """The WAN's cuts and configured RTTs; whether the cuts changed."""
        new = frozenset(frozenset(c) for c in cuts)
        changed = new != self.cuts
        self.cuts, self.wan_rtt = new, dict(rtt)
        return changed

    # -- what the browser gets ------------------------------------------------------------

    def links(self) -> list[dict[str, Any]]:
        pairs: set[frozenset[str]] = set(self.wan_rtt) | set(self.cuts)
        for view in self.views.values():
            for peer in (view.state or {}).get("peers", []):
                if isinstance(peer.get("name"), str):
                    pairs.add(frozenset((view.name, peer["name"])))
        return [self._link(*sorted(pair)) for pair in sorted(pairs, key=sorted) if len(pair) == 2]

    def _link(self, a: str, b: str) -> dict[str, Any]:
        ends = {a: self.views.get(a), b: self.views.get(b)}
        breakers = {}
        for here, there in ((a, b), (b, a)):
            view = ends[here]
            breakers[f"{here}→{there}"] = view.breaker_of(there) if view is not None else None
        rtts = [r for v, p in ((ends[a], b), (ends[b], a)) if v and (r := v.rtt_to(p)) is not None]
        cut = frozenset((a, b)) in self.cuts
        return {
            "id": f"{a}|{b}",
            "a": a,
            "b": b,
            "state": link_state(cut, list(breakers.values())),
            "cut": cut,
            "rtt_ms": min(rtts) if rtts else None,
            "wan_rtt_ms": self.wan_rtt.get(frozenset((a, b))),
            "breakers": breakers,
        }

    def snapshot(self, calls: int = 200) -> dict[str, Any]:
        """Everything the page draws (the last ``calls`` calls)."""
        return {
            "seen_from": self.seen_from,
            "sites": [self._site(name) for name in self.sites],
            "links": self.links(),
            "calls": list(self.calls)[-calls:],
            "ignored_sites": self.ignored,
        }

    def overview(self) -> dict[str, Any]:
        """The snapshot without its calls (sent on every state change)."""
        return {"seen_from": self.seen_from, "sites": [self._site(n) for n in self.sites],
                "links": self.links(), "ignored_sites": self.ignored}  # fmt: skip

    def _site(self, name: str) -> dict[str, Any]:
        view = self.views[name]
        state = view.state or {}
        replicas = state.get("replicas") if view.reachable else None
        return {
            "name": name,
            "watched": view.watched,
            "reachable": view.reachable,
            "error": view.error,
            "heard_at": view.heard_at,
            "peers": state.get("peers", []) if view.reachable else [],
            "services": state.get("services", []),
            "replicas": replicas,
            "pending": sum((replicas or {}).get("pending", {}).values()) if replicas else 0,
            "dropped": state.get("dropped", 0),
        }


def link_state(cut: bool, breakers: Sequence[str | None]) -> str:
    """A link's state from the WAN's cut and both ends' breakers (None: not heard)."""
    if cut:
        return "cut"
    known = [b for b in breakers if b is not None]
    if "open" in known:
        return "down"
    if "half-open" in known:
        return "degraded"
    if "closed" in known:
        return "up"
    if known:
        return "idle"
    return "unknown"
