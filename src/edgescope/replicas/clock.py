"""The site's hybrid logical clock: :func:`~model.tick` and :func:`~model.observe` on wall time.

clock = Clock("Paris")
stamp = clock.now()          # a local write
clock.observe(remote_stamp)  # a stamp received from a peer

For tests only, ``EDGESCOPE_CLOCK_OFFSET_SECONDS`` (read when the proxy starts, unset by
default) adds a fixed offset, at most :data:`MAX_LEAD_SECONDS` either way, to the wall time
this clock reads: it stands for a host whose clock was stepped within the allowed skew
(``bench.campaign``'s ``clock-step`` fault restarts one proxy with it).
"""

from __future__ import annotations

import math
import os
import time

from edgescope.errors import ConfigError
from edgescope.replicas.model import Hlc, observe, tick

MAX_LEAD_SECONDS = 300.0
"""How far ahead of this site's wall clock a received stamp may be (clock skew and transit);
a stamp further ahead is refused, so it cannot drag the clock (and every later LWW
comparison) into the future."""


OFFSET_ENV = "EDGESCOPE_CLOCK_OFFSET_SECONDS"


def offset_from_env() -> float:
    """The test-only clock offset in seconds (0 when unset); a clear error when malformed."""
    text = os.environ.get(OFFSET_ENV, "").strip()
    if not text:
        return 0.0
    try:
        offset = float(text)
    except ValueError:
        raise ConfigError(f"{OFFSET_ENV}={text!r} is not a number of seconds") from None
    if not math.isfinite(offset) or abs(offset) > MAX_LEAD_SECONDS:
        raise ConfigError(f"{OFFSET_ENV}={text!r}: at most {MAX_LEAD_SECONDS:g} s either way")
    return offset


class ClockTooFarAhead(ValueError):
    """A received stamp is further ahead of the local wall clock than ``max_lead``."""


class Clock:
    """One site's HLC (wall time in ms from ``time.time``)."""

    def __init__(
        self,
        site: str,
        max_lead: float = MAX_LEAD_SECONDS,
        tiebreak: str = "",
        offset: float | None = None,
    ) -> None:
        self.site = site
        self.offset_ns = int((offset_from_env() if offset is None else offset) * 1e9)
        """Added to the host's wall time (0 unless a test steps this clock)."""
        self.max_lead = max_lead
        self.last: Hlc | None = None
        self.stamp_site = f"{site}/{tiebreak}" if tiebreak else site
        """What this proxy's stamps name: the site, plus a tiebreak of its own when several
        proxies of the site stamp writes (two stamps of one site never compare equal)."""

    def now(self) -> Hlc:
        self.last = tick(self.last, now_ms=self._now_ms(), site=self.stamp_site)
        return self.last

    def observe(self, remote: Hlc) -> Hlc:
        """Fold in a received stamp; raises :class:`ClockTooFarAhead` past ``max_lead``."""
        now_ms = self._now_ms()
        if remote.wall_ms > now_ms + self.max_lead * 1000:
            ahead = (remote.wall_ms - now_ms) / 1000
            raise ClockTooFarAhead(
                f"stamp {remote.encode()} is {ahead:.0f} s ahead of {self.site}'s clock "
                f"(at most {self.max_lead:g} s)"
            )
        self.last = observe(self.last, remote, now_ms=now_ms, site=self.stamp_site)
        return self.last

    def _now_ms(self) -> int:
        return (time.time_ns() + self.offset_ns) // 1_000_000
