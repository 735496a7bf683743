"""``python -m bench``: the proxy benchmarks (issue 3). Prints the tables and a verdict per
target, stores everything in ``bench/results/proxy-<UTC time>.json`` (machine and measured
load included), writes the "Proxy" section of docs/benchmarks.md from it, and plots of its
tables beside the JSON (bench/plots.py: ``proxy-<UTC time>.latency.png``, ``.fanout.png``,
``.failover.png``).

    python -m bench              # all figures, a few minutes
    python -m bench --smoke      # every path, a few calls each, < 1 min; never writes docs/
    python -m bench --no-docs    # store the result, leave docs/benchmarks.md unchanged
    python -m bench --no-write   # print only

Figures: 1) added latency per hop and throughput, direct vs HAProxy vs edgescope, plus the
HTTP-stack choice; 2) ``&`` fan-out width; 3) ``|`` fail-over; 4) ``&`` request bodies;
5) scope parsing; then, with HAProxy installed, the fast path behind the site's HAProxy
(bench/haproxy.py, its own section and results file). Every figure is compared with a
baseline measured in the same run; the targets and their verdicts are in
``bench/verdicts.py``. The WAN benchmark is separate (bench/wan_accuracy.py, needs root).

The bench fails loudly (bench/_run.py): a path whose calls do not all answer 2xx is FAILED
with its first error, the run exits 1 and docs/benchmarks.md stays as it was.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rich.console import Console

from bench import _proxy_report, _results
from bench._run import Options, Outcome, crash_reason, finish, measured_at
from bench._tables import markdown, md_table
from bench.body import body_figures
from bench.failover import failover_figures
from bench.fanout import fanout_figures
from bench.parse import parse_figures
from bench.plots import write_plots
from bench.proxy_latency import latency_figures, stack_figures
from bench.verdicts import describe, proxy_verdicts

START, END = "<!-- proxy-bench:start -->", "<!-- proxy-bench:end -->"
FIGURES: dict[str, Callable[[bool], list[dict[str, Any]]]] = {
    "latency": latency_figures,
    "stack": stack_figures,
    "fanout": fanout_figures,
    "failover": failover_figures,
    "body": body_figures,
    "parse": parse_figures,
}


def proxy_outcome(smoke: bool) -> Outcome:
    """Measure figures 1-5; a figure that raises is FAILED as a whole, the others still run."""
    started, meter = time.time(), _results.LoadMeter()
    figures: dict[str, list[dict[str, Any]]] = {}
    crashed: dict[str, str] = {}
    for name, measure in FIGURES.items():
        began = time.monotonic()
        try:
            figures[name] = measure(smoke)
        except Exception as exc:  # reported as a FAILED figure; the run exits 1
            figures[name], crashed[name] = [], crash_reason(exc)
        Console().print(f"measured {name} in {time.monotonic() - began:.0f} s", markup=False)
    load = meter.stop()
    verdicts = proxy_verdicts(
        *(figures.get(name, []) for name in ("latency", "fanout", "failover"))
    )
    sections = _proxy_report.sections(figures, crashed)
    targets = [[v.target, describe(v)] for v in verdicts]
    command = "python -m bench" + (" --smoke" if smoke else "")
    context = measured_at(started, load, command)

    def docs(path: str) -> str:
        return (
            f"{START}\n## Proxy (issue 3)\n\n{context} Every figure below is in `{path}`.\n\n"
            f"### Targets\n\n{md_table(['target', 'verdict'], targets)}\n\n"
            f"{markdown(sections)}\n{END}\n"
        )

    return Outcome(
        name="proxy",
        command=command,
        started=started,
        load=load,
        document={
            "figures": figures,
            "crashed": crashed,
            "verdicts": [v.as_json() for v in verdicts],
        },
        sections=sections,
        targets=targets,
        context=context,
        failures=_proxy_report.failures(figures, crashed),
        docs=docs,
        markers=(START, END),
        plot=lambda path: write_plots(figures, path),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Every proxy figure, then (with HAProxy installed) the fast path's (bench/haproxy.py)."""
    options = Options.parse("python -m bench", argv)
    outcomes = [proxy_outcome(options.smoke)]
    if shutil.which("haproxy"):
        from bench._haproxy_report import outcome

        outcomes.append(outcome(options.smoke))
    else:
        Console().print("HAProxy is not installed: its paths are not measured.")
    return finish(outcomes, options)


if __name__ == "__main__":
    sys.exit(main())
