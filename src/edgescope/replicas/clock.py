"""The site's hybrid logical clock: :func:`~model.tick` and :func:`~model.observe` on wall time.

clock = Clock("Paris")
stamp = clock.now()          # a local write
clock.observe(remote_stamp)  # a stamp received from a peer
"""

from __future__ import annotations

import time

from edgescope.replicas.model import Hlc, observe, tick


class Clock:
    """One site's HLC (wall time in ms from ``time.time``)."""

    def __init__(self, site: str) -> None:
        self.site = site
        self.last: Hlc | None = None

    def now(self) -> Hlc:
        self.last = tick(self.last, now_ms=time.time_ns() // 1_000_000, site=self.site)
        return self.last

    def observe(self, remote: Hlc) -> Hlc:
        self.last = observe(self.last, remote, now_ms=time.time_ns() // 1_000_000, site=self.site)
        return self.last
