"""Plots of the proxy benchmark's tables (matplotlib, no display needed).

``python -m bench`` writes them beside its JSON; any stored run can be plotted again:

    python -m bench.plots bench/results/proxy-20261128T192136Z.json
    # -> proxy-20261128T192136Z.latency.png, .fanout.png, .failover.png beside it

1. latency: added latency per path (p50 and p99 over the direct call), one bar pair each;
2. fanout: ``&`` latency against the number of sites, with the slowest site alone;
3. failover: ``|`` time per case (the first site failing in each way), log scale.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

from matplotlib import pyplot
from matplotlib.figure import Figure

Rows = list[dict[str, Any]]


def latency_plot(rows: Rows) -> Figure:
    """Added latency per hop, p50 and p99, for each path but the direct one."""
    shown = [r for r in rows if r["path"] != "direct to backend"]
    figure, axes = pyplot.subplots(figsize=(9, 0.6 * len(shown) + 1.5))
    positions = list(range(len(shown)))
    axes.barh([p + 0.2 for p in positions], [r["added_p50"] for r in shown], 0.4, label="p50")
    axes.barh([p - 0.2 for p in positions], [r["added_p99"] for r in shown], 0.4, label="p99")
    axes.set_yticks(positions, [r["path"] for r in shown], fontsize=8)
    axes.invert_yaxis()
    axes.set_xlabel("added latency per hop (ms, over the direct call)")
    axes.set_title("1. Added latency per path")
    axes.legend()
    figure.tight_layout()
    return figure


def fanout_plot(rows: Rows) -> Figure:
    """``&`` latency (p50, p99) and the slowest site alone, against the fan-out width."""
    widths = [r["width"] for r in rows]
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    axes.plot(widths, [r["fanout_p50"] for r in rows], "o-", label="fan-out p50")
    axes.plot(widths, [r["fanout_p99"] for r in rows], "s--", label="fan-out p99")
    axes.plot(widths, [r["slowest_p50"] for r in rows], "k:", label="slowest site alone p50")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("sites in the & (width)")
    axes.set_ylabel("latency (ms)")
    axes.set_title("2. Fan-out width vs latency")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    return figure


def failover_plot(rows: Rows) -> Figure:
    """``|`` time per case, p50 and p99."""
    figure, axes = pyplot.subplots(figsize=(9, 0.6 * len(rows) + 1.5))
    positions = list(range(len(rows)))
    axes.barh([p + 0.2 for p in positions], [r["p50"] for r in rows], 0.4, label="p50")
    axes.barh([p - 0.2 for p in positions], [r["p99"] for r in rows], 0.4, label="p99")
    axes.set_yticks(positions, [r["case"] for r in rows], fontsize=8)
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel("time of the call (ms, log scale)")
    axes.set_title("3. | fail-over: the first site fails")
    axes.legend()
    figure.tight_layout()
    return figure


PLOTS = {"latency": latency_plot, "fanout": fanout_plot, "failover": failover_plot}


def write_plots(figures: dict[str, Rows], beside: Path) -> list[Path]:
    """One PNG per plotted table, named ``<beside's stem>.<table>.png`` in its folder."""
    written = []
    for name, plot in PLOTS.items():
        if not figures.get(name):
            continue
        figure = plot(figures[name])
        path = beside.with_name(f"{beside.stem}.{name}.png")
        figure.savefig(path, dpi=110)
        pyplot.close(figure)
        written.append(path)
    return written


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.plots")
    parser.add_argument("results", type=Path, help="a stored run (bench/results/proxy-*.json)")
    args = parser.parse_args()
    try:
        stored = json.loads(args.results.read_text())
        figures = stored["figures"]
    except (OSError, ValueError, KeyError) as exc:
        parser.exit(2, f"error: {args.results} is not a stored benchmark run: {exc}\n")
    for path in write_plots(figures, args.results):
        print(path)


if __name__ == "__main__":
    main()
