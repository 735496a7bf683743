"""bench/_scale_report.py on stored runs: an incomplete `&` is FAILED, with no verdict."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench._scale_report import failures, markdown, tables

from bench import _results

STORED = Path(__file__).resolve().parents[2] / "bench" / "results"


def stored(name: str) -> dict[str, Any]:
    """A stored run, its baselines' failure counts set to 0 (those runs predate them)."""
    figures: dict[str, Any] = json.loads((STORED / f"{name}.json").read_text())
    for row in figures["fanout"]:
        row.update(bare_failed=0, bare_first_error=None, raw_failed=0, raw_first_error=None)
    return figures


def fanout_table(figures: dict[str, Any]) -> list[list[str]]:
    return next(rows for title, _, rows in tables(figures) if title.startswith("& fan-out"))


def test_a_run_with_incomplete_calls_is_failed_and_gets_no_verdict() -> None:
    figures = stored("scale-20261129T004108Z")  # the 999-wide & completed 1 call of 5
    assert failures(figures) == ["`&` over 999 sites: 4 of 5 `&` calls were incomplete"]
    assert [row[1] for row in fanout_table(figures)] == ["5/5", "5/5", "FAILED: 1/5"]
    load = _results.LoadMeter().stop()
    text = markdown(figures, load, STORED / "scale-20261129T004108Z.json")
    assert "no verdict: 4 of 5 `&` calls were incomplete (target <= 0.1 ms)" in text
    assert " met" not in text.split("Target (issue 14)")[1].split("\n")[0]


def test_a_run_that_did_not_count_its_baselines_failures_gets_no_verdict() -> None:
    figures = json.loads((STORED / "scale-20261129T030202Z.json").read_text())
    assert failures(figures)[-1] == (
        "`&` over 999 sites: not known whether every bare baseline call succeeded"
    )


def test_complete_calls_and_baselines_get_a_verdict() -> None:
    figures = stored("scale-20261129T030202Z")
    assert failures(figures) == []
    load = _results.LoadMeter().stop()
    text = markdown(figures, load, STORED / "scale-20261129T030202Z.json")
    assert "missed by 0.51 ms (measured 0.61 ms; target <= 0.1 ms)" in text
    figures["fanout"][-1]["bare_failed"] = 2
    figures["fanout"][-1]["bare_first_error"] = "no answer: ServerDisconnectedError"
    assert failures(figures) == [
        "`&` over 999 sites: 2 bare baseline calls failed, the first: no answer: "
        "ServerDisconnectedError"
    ]
