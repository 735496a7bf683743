"""Figure 5: what parsing a scope costs the proxy, uncached and from the parse cache.

In-process, on ``edgescope.lang.parse_scope``: every uncached call parses a text not seen
before (a distinct site name each time), every cached call the same text again.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from edgescope.lang import parse_scope

CALLS = 2000
OK = {"failed": None}
TEMPLATE = "{{nova: Paris & Corte, glance: Corte | Marseille, keystone: S{i}}}"


def _median_ms(texts: list[str]) -> float:
    times = []
    for text in texts:
        started = time.perf_counter()
        parse_scope(text)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def parse_figures(smoke: bool = False) -> list[dict[str, Any]]:
    calls = 50 if smoke else CALLS
    parse_scope(TEMPLATE.format(i="warm-up"))  # builds the parser once
    unique = [TEMPLATE.format(i=f"{i}-{time.monotonic_ns()}") for i in range(calls)]
    same = [TEMPLATE.format(i=0)] * calls
    # In-process: a parse returns or raises (then the figure fails as a whole).
    return [
        {"case": "uncached (a scope not seen before)", "p50_ms": _median_ms(unique), **OK},
        {"case": "cached (the same scope again)", "p50_ms": _median_ms(same), **OK},
    ]
