"""The fault campaign of issue 24 as a test: 3 minutes of clients at every site under a seeded
schedule of faults on the WAN testbed, then the independent checker (``bench/campaign``).

Marked ``wan`` and ``testbed``: it shares the session's ``wtb`` WAN testbed. It asserts 0
anomalies and prints each one with its operations (and the faults during them) otherwise; the
run's figures and history go to ``artifacts/campaign-ci-<seed>.*``. The known limits of
``checker.KNOWN`` (e.g. a partial set after its proxy was SIGKILLed mid-call) are printed and
stored, not failed on.

NOT collected by ``make test`` yet (its name does not start with ``test_``): the 30-minute
campaign of 2026-12-07 (bench/results/campaign-20261207T120640Z.json) found 31 anomalies that
are still open (issue 24), so this test would fail every CI run. Run it by name, on a WAN
testbed: ``pytest tests/integration/campaign_wan_check.py``; rename it ``test_campaign_wan.py``
once the campaign finds none.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest
from bench.campaign.__main__ import campaign, explain
from bench.campaign.history import write_lines
from wan_testbed import WanTestbed

pytestmark = [pytest.mark.wan, pytest.mark.testbed]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
SEED = int(os.environ.get("EDGESCOPE_CAMPAIGN_SEED", "2424"))
MINUTES = 3.0


def test_a_three_minute_campaign_finds_no_anomaly(wtb: WanTestbed) -> None:
    args = argparse.Namespace(seed=SEED, minutes=MINUTES, clients=3, http_clients=2)
    figures = campaign(wtb.testbed, wtb.wan, args)
    report = explain(figures)
    ops, faults = figures.pop("_history")
    figures.pop("_anomalies")
    ARTIFACTS.mkdir(exist_ok=True)
    stem = ARTIFACTS / f"campaign-ci-{SEED}"
    stem.with_suffix(".json").write_text(json.dumps(figures, indent=1, default=str))
    write_lines(stem.with_suffix(".ops.jsonl"), ops)
    write_lines(stem.with_suffix(".faults.jsonl"), faults)
    summary = (f"{figures['operations']} operations, {figures['faults']} faults "
               f"{figures['faults_by_kind']}")  # fmt: skip
    print(summary)
    assert figures["operations"] > 0 and figures["faults"] > 0, summary
    print(report)
    assert figures["anomalies_unexpected"] == 0, f"{summary}\n{report}"
