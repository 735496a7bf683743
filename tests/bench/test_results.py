"""bench/_results.py: the load is measured (own CPU vs everything else) and stored with the run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench.verdicts import cpus_shared

from bench import _results


def burn(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_own_work_is_counted_as_own_children_included() -> None:
    meter = _results.LoadMeter()
    burn(0.3)
    subprocess.run([sys.executable, "-c", "import time\nt = time.process_time() + 0.3\n"
                    "while time.process_time() < t: pass"], check=True)  # fmt: skip
    load = meter.stop()
    assert load.own_cpu_seconds >= 0.6
    assert load.other_cpu_seconds == pytest.approx(max(0.0, load.busy_cpu_seconds - 0.6), abs=1)
    assert load.shared is cpus_shared(load.other_cpu_seconds, load.wall_seconds)
    assert "of the" in load.sentence() and str(load.cpus) in load.sentence()


def test_detached_helpers_count_as_own_when_named() -> None:
    helper = subprocess.Popen([sys.executable, "-c", "import time\nt = time.process_time() + 0.4\n"
                               "while time.process_time() < t: pass\ntime.sleep(30)"])  # fmt: skip
    try:
        before = _results.tree_cpu_seconds([helper.pid])
        deadline = time.monotonic() + 60  # a loaded machine gives the helper its CPU late
        while _results.tree_cpu_seconds([helper.pid]) - before < 0.3:
            assert time.monotonic() < deadline, "the helper's CPU time was never counted"
            time.sleep(0.1)
    finally:
        helper.kill()
        helper.wait()
    assert _results.tree_cpu_seconds([helper.pid]) == 0.0  # gone: nothing to count


def test_write_stores_machine_load_and_figures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_results, "RESULTS", tmp_path / "bench" / "results")
    load = _results.LoadMeter().stop()
    path = _results.write("proxy", "python -m bench", 0.0, load, {"figures": {"a": [1]}})
    assert path.name == "proxy-19700101T000000Z.json"
    stored = json.loads(path.read_text())
    assert stored["command"] == "python -m bench" and stored["figures"] == {"a": [1]}
    assert stored["machine"]["cpus"] >= 1 and "load_average_start" in stored["load"]
    assert _results.relative(path) == "bench/results/proxy-19700101T000000Z.json"


def test_print_and_keep_prints_and_stores_the_same_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "new" / "run.json"
    _results.print_and_keep({"rows": [1, 2]}, out)
    printed = capsys.readouterr().out
    assert json.loads(printed) == {"rows": [1, 2]} == json.loads(out.read_text())
    _results.print_and_keep({"rows": []}, None)  # no file asked: printed only
    assert json.loads(capsys.readouterr().out) == {"rows": []}
