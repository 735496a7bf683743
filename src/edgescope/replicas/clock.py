"""The site's hybrid logical clock: :func:`~model.tick` and :func:`~model.observe` on wall time.

clock = Clock("Paris")
stamp = clock.now()          # a local write
clock.observe(remote_stamp)  # a stamp received from a peer
"""

from __future__ import annotations

import time

from edgescope.replicas.model import Hlc, observe, tick

MAX_LEAD_SECONDS = 300.0
"""How far ahead of this site's wall clock a received stamp may be (clock skew and transit);
a stamp further ahead is refused, so it cannot drag the clock (and every later LWW
comparison) into the future."""


class ClockTooFarAhead(ValueError):
    """A received stamp is further ahead of the local wall clock than ``max_lead``."""


class Clock:
    """One site's HLC (wall time in ms from ``time.time``)."""

    def __init__(self, site: str, max_lead: float = MAX_LEAD_SECONDS, tiebreak: str = "") -> None:
        self.site = site
        self.max_lead = max_lead
        self.last: Hlc | None = None
        self.stamp_site = f"{site}/{tiebreak}" if tiebreak else site
        """What this proxy's stamps name: the site, plus a tiebreak of its own when several
        proxies of the site stamp writes (two stamps of one site never compare equal)."""

    def now(self) -> Hlc:
        self.last = tick(self.last, now_ms=time.time_ns() // 1_000_000, site=self.stamp_site)
        return self.last

    def observe(self, remote: Hlc) -> Hlc:
        """Fold in a received stamp; raises :class:`ClockTooFarAhead` past ``max_lead``."""
        now_ms = time.time_ns() // 1_000_000
        if remote.wall_ms > now_ms + self.max_lead * 1000:
            ahead = (remote.wall_ms - now_ms) / 1000
            raise ClockTooFarAhead(
                f"stamp {remote.encode()} is {ahead:.0f} s ahead of {self.site}'s clock "
                f"(at most {self.max_lead:g} s)"
            )
        self.last = observe(self.last, remote, now_ms=now_ms, site=self.stamp_site)
        return self.last
