"""``python -m bench --smoke`` in CI (issue 19): every path of the bench, a few calls each, with
real servers and proxies; a path that fails makes the run exit 1, so a broken bench cannot land.
It never writes docs/ (its results go to a temporary folder here)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from bench.verdicts import TWO_PROXIES, TWO_PROXIES_TLS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "benchmarks.md"

pytestmark = pytest.mark.slow


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else ""


def test_the_smoke_run_measures_every_path_and_writes_no_docs(tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") is not None
    if not haproxy and os.environ.get("CI") == "true":
        pytest.fail("HAProxy is not installed: the bench's HAProxy paths would go unchecked")
    before = digest(DOCS)
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--results", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out[-6000:]
    assert "docs/benchmarks.md left unchanged (smoke run)" in done.stdout
    assert digest(DOCS) == before
    assert not re.search(r"\bnan\b", out, re.IGNORECASE), out[-6000:]

    (proxy,) = tmp_path.glob("proxy-*.json")
    stored = json.loads(proxy.read_text())
    assert stored["smoke"] is True and stored["failed"] == [] and stored["crashed"] == {}
    figures = stored["figures"]
    assert set(figures) == {"latency", "stack", "fanout", "failover", "body", "parse"}
    for name, rows in figures.items():
        assert rows, name
        assert all(row["failed"] is None for row in rows), name
    for path in (TWO_PROXIES, TWO_PROXIES_TLS):
        hop = next(r for r in figures["latency"] if r["path"] == path)
        assert hop["ok"] > 0 and hop["errors"] == 0, path  # Corte knows Paris as a peer
    widths = {r["width"]: r for r in figures["fanout"]}
    assert sorted(widths) == [1, 10, 100, 1000] and widths[1000]["ok"] >= 2
    assert ("HAProxy 1 thread, X-Scope header routing" in {r["path"] for r in figures["latency"]}) \
        is haproxy  # fmt: skip
    if haproxy:
        (behind,) = tmp_path.glob("haproxy-*.json")
        rows = json.loads(behind.read_text())["figures"]["rows"]
        assert len(rows) == 5 and all(r["failed"] is None and r["ok"] > 0 for r in rows)
