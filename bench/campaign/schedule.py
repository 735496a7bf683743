"""The seeded fault schedule: which fault, where, when and for how long (pure, reproducible).

``plan(seed, seconds, sites)`` gives the same list for the same arguments. Kinds:

* ``partition``: one pair cut (``detail.pair``);
* ``minority``: one site cut from all others (the minority; the rest keep a majority);
* ``loss``: a loss burst on one pair (``detail.loss``, 20–50%);
* ``proxy-kill``: SIGKILL of one site's proxy, restarted at the end;
* ``service-restart``: one site's glance or keystone stopped and started again (calls in
  flight fail; ``detail.service``);
* ``clock-step``: one site's proxy restarted with its clock stepped by ``detail.offset``
  seconds (±10–120 s, within the allowed skew of ``replicas/clock.py``; the test-only
  ``EDGESCOPE_CLOCK_OFFSET_SECONDS``), restarted again without it at the end;
* ``db-lock``: the database holding one site's replica state made unavailable for writes (an
  exclusive transaction held on it), then released.

Not scheduled, with the reason (:data:`SKIPPED`): a *restart* of that database: in the
testbed it is the proxy's embedded SQLite (``[replicas] state_dir``), with no server to
restart (it lives and dies with the proxy: ``proxy-kill``); ``db-lock`` is its outage.

    >>> plan(7, 60, ("Paris", "Corte", "Marseille")) == plan(7, 60, ("Paris", "Corte", "Marseille"))
    True
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

KINDS = ("partition", "minority", "loss", "proxy-kill", "service-restart", "clock-step", "db-lock")
SKIPPED = {
    "db-restart": "the testbed's replica state is the proxy's embedded SQLite, no server to "
    "restart (see proxy-kill); its outage is db-lock",
}
SERVICES = ("glance", "keystone")
WEIGHTS = (2, 2, 2, 1, 1, 1, 2)
"""Restarts (``proxy-kill``, ``service-restart``, ``clock-step``) drawn half as often as the
rest: each keeps a site's stack down for 30–75 s on the loaded test machine (start-up
included), the others only for their hold."""


@dataclass(frozen=True)
class Planned:
    """A fault to apply ``at`` seconds into the run, for ``hold`` seconds."""

    at: float
    hold: float
    kind: str
    sites: tuple[str, ...]
    detail: dict[str, Any] = field(default_factory=dict)


def plan(
    seed: int,
    seconds: float,
    sites: Sequence[str],
    *,
    gap: tuple[float, float] = (1.0, 4.0),
    hold: tuple[float, float] = (3.0, 9.0),
    settle: float = 10.0,
) -> list[Planned]:
    """Faults one after another (never two at once), none in the last ``settle`` seconds."""
    if len(sites) < 2:
        raise ValueError("a fault campaign needs at least two sites")
    if seconds <= 0:
        raise ValueError(f"the run must last a positive time, not {seconds}")
    rng = random.Random(seed)
    faults: list[Planned] = []
    now = rng.uniform(*gap)
    while True:
        length = round(rng.uniform(*hold), 2)
        if now + length > seconds - settle:
            return faults
        kind = rng.choices(KINDS, weights=WEIGHTS)[0]
        faults.append(_one(rng, round(now, 2), length, kind, list(sites)))
        now += length + rng.uniform(*gap)


def _one(rng: random.Random, at: float, length: float, kind: str, sites: list[str]) -> Planned:
    if kind in ("partition", "loss"):
        pair = tuple(sorted(rng.sample(sites, 2)))
        detail: dict[str, Any] = {"loss": round(rng.uniform(0.2, 0.5), 2)} if kind == "loss" else {}
        return Planned(at, length, kind, pair, detail)
    site = rng.choice(sites)
    detail = {}
    if kind == "service-restart":
        detail = {"service": rng.choice(SERVICES)}
    elif kind == "clock-step":
        detail = {"offset": round(rng.choice((-1, 1)) * rng.uniform(10.0, 120.0), 1)}
    return Planned(at, length, kind, (site,), detail)
