"""bench/plots.py draws the stored tables' numbers (checked on the figures' own data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from bench.plots import failover_plot, fanout_plot, latency_plot, write_plots

STORED = Path(__file__).resolve().parents[2] / "bench" / "results"


def stored_figures() -> dict[str, list[dict[str, object]]]:
    run = sorted(STORED.glob("proxy-*.json"))[-1]
    figures: dict[str, list[dict[str, object]]] = json.loads(run.read_text())["figures"]
    return figures


def test_fanout_plot_draws_each_width_and_latency() -> None:
    rows = stored_figures()["fanout"]
    axes = fanout_plot(rows).axes[0]
    p50 = axes.get_lines()[0]
    assert list(p50.get_xdata()) == [r["width"] for r in rows]
    assert list(p50.get_ydata()) == [r["fanout_p50"] for r in rows]
    assert axes.get_xscale() == "log"


def test_latency_and_failover_bars_are_the_tables_numbers() -> None:
    figures = stored_figures()
    bars = latency_plot(figures["latency"]).axes[0].patches
    shown = [r for r in figures["latency"] if r["path"] != "direct to backend"]
    assert sorted(b.get_width() for b in bars) == sorted(
        [r["added_p50"] for r in shown] + [r["added_p99"] for r in shown]
    )
    labels = [t.get_text() for t in failover_plot(figures["failover"]).axes[0].get_yticklabels()]
    assert labels == [r["case"] for r in figures["failover"]]


def test_write_plots_writes_pngs_beside_the_run(tmp_path: Path) -> None:
    run = sorted(STORED.glob("proxy-*.json"))[-1]
    copy = tmp_path / run.name
    shutil.copy(run, copy)
    written = write_plots(json.loads(copy.read_text())["figures"], copy)
    assert [p.name for p in written] == [
        f"{copy.stem}.latency.png",
        f"{copy.stem}.fanout.png",
        f"{copy.stem}.failover.png",
    ]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in written)
