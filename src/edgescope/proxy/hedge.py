"""When a ``|`` read asks its next site too: the pure decision ("The Tail at Scale", gRPC and
Envoy hedging).

Neighbours: ``dispatch.py`` notes how long each site took to answer
(:meth:`Latencies.observe`) and hands :meth:`HedgePolicy.delay` to
:func:`~edgescope.lang.evaluate`, which starts the next operand of a ``|`` when the
running one has not answered within that delay, keeps the first good answer and cancels
the others. Only reads hedge (``GET``/``HEAD``): a write is never sent twice. The clock is
an argument.

A site whose breaker says it is *suspect* (:attr:`~breaker.Breaker.suspect`: a failure, or
a read abandoned for a later site's answer, since its last success) gets the ``floor``
delay: the next site is asked at once too, instead of every read of a cut link waiting the
hedge delay (the link's recent p95, itself seconds under loss) before moving on.
:func:`overtaken` names the sites a read abandoned.

    latencies = Latencies(samples=50, window=60.0)
    latencies.observe("Corte", 0.040, now=10.0)
    policy = HedgePolicy(HedgeConfig())
    policy.delay("GET", latencies.p95("Corte", now=11.0))   # 0.5: too few samples yet
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from edgescope.proxy.config import HedgeConfig

HEDGED_METHODS = frozenset({"GET", "HEAD"})
"""Methods that may be sent to a second site while the first still works on them."""


class Latencies:
    """Each site's recent answer times (to the answer's head), newest ``samples`` within
    ``window`` seconds."""

    def __init__(self, samples: int = 100, window: float = 60.0) -> None:
        self.samples = max(1, samples)
        self.window = window
        self._by_site: dict[str, deque[tuple[float, float]]] = {}

    def observe(self, site: str, seconds: float, *, now: float) -> None:
        found = self._by_site.get(site)
        if found is None:
            found = self._by_site[site] = deque(maxlen=self.samples)
        found.append((now, seconds))

    def recent(self, site: str, *, now: float) -> list[float]:
        found = self._by_site.get(site)
        if not found:
            return []
        while found and now - found[0][0] > self.window:
            found.popleft()
        return [seconds for _, seconds in found]

    def p95(self, site: str, *, now: float, min_samples: int = 1) -> float | None:
        """The 95th percentile of ``site``'s recent answer times; None below ``min_samples``."""
        recent = sorted(self.recent(site, now=now))
        if len(recent) < max(1, min_samples):
            return None
        return recent[min(len(recent) - 1, int(0.95 * len(recent)))]


class HedgePolicy:
    """The decision: whether a call may hedge, and after how long."""

    def __init__(self, config: HedgeConfig) -> None:
        self.config = config

    def may_hedge(self, method: str) -> bool:
        return self.config.max_extra > 0 and method.upper() in HEDGED_METHODS

    def delay(self, method: str, p95: float | None, *, suspect: bool = False) -> float | None:
        """Seconds after which the next site is asked too; None: never (a write, or off).
        A ``suspect`` site is raced at once (after ``floor``)."""
        if not self.may_hedge(method):
            return None
        config = self.config
        wait = config.unknown if p95 is None else p95
        if suspect:
            wait = config.floor
        return min(config.ceiling, max(config.floor, wait))


def overtaken(branches: Sequence[tuple[str, str]], winner: str) -> list[str]:
    """Sites a hedged read abandoned: cancelled, and asked before the ``winner`` (a site
    asked after the winner and cancelled was only the hedge that lost). ``branches`` are
    (site, error) in the order they were sent.

        >>> overtaken([("Corte", "cancelled"), ("Marseille", "")], "Marseille")
        ['Corte']
        >>> overtaken([("Corte", ""), ("Marseille", "cancelled")], "Corte")
        []
    """
    sent = [site for site, _ in branches]
    if winner not in sent:
        return []
    first = sent.index(winner)
    return [site for site, error in branches[:first] if error == "cancelled"]
