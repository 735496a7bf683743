"""Where every benchmark stores what it measured, with the machine and the load it ran under.

Each run writes ``bench/results/<name>-<UTC time>.json``: the command, the machine
(:func:`machine`), the load (:class:`LoadMeter`) and the figures. A figure quoted in the docs
comes from one of these files.

The load is measured, not assumed: the CPU time the whole machine spent busy during the run
(``/proc/stat``, steal included), minus the CPU time of the benchmark's own processes (this
one, its waited-for children, and any detached helper it names), is the work of everything
else. Kernel work for the benchmark's own traffic done outside its processes counts as other
work, so the estimate errs towards "shared".
"""

from __future__ import annotations

import json
import os
import platform
import resource
import shutil
import subprocess
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.verdicts import cpus_shared

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    haproxy = ""
    if shutil.which("haproxy"):
        out = subprocess.run(["haproxy", "-v"], capture_output=True, text=True, check=False)
        haproxy = (out.stdout.splitlines() or [""])[0]
    return {
        "hostname": platform.node(),
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "haproxy": haproxy,
    }


def own_cpu_seconds() -> float:
    """CPU time of this process and of its children that have been waited for."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + children.ru_utime + children.ru_stime


def tree_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) so far of these processes and all their descendants: for
    detached processes the run starts or drives (testbed sites, the WAN delayer)."""
    total, seen = 0.0, set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for proc in tree:
            if proc.pid in seen:
                continue
            seen.add(proc.pid)
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            total += times.user + times.system
    return total


def _busy_cpu_seconds() -> float:
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    return (
        float(sum(times)) - idle - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
    )


@dataclass(frozen=True)
class Load:
    wall_seconds: float
    cpus: int
    load_average_start: tuple[float, float, float]
    load_average_end: tuple[float, float, float]
    busy_cpu_seconds: float
    """Every CPU's busy time during the run (steal included)."""
    own_cpu_seconds: float
    """The benchmark's own processes."""
    other_cpu_seconds: float
    other_cpus: float
    """Other work's average use, in CPUs."""
    shared: bool
    """Whether other work shared the CPUs (bench.verdicts.cpus_shared)."""

    def sentence(self) -> str:
        """``other work used 0.9 of the 2 CPUs on average during the run (...): shared``."""
        start, end = self.load_average_start[0], self.load_average_end[0]
        verdict = "other work shared the CPUs" if self.shared else "no other work to speak of"
        own = self.own_cpu_seconds / max(self.wall_seconds, 0.1)  # a run of < 0.1 s: no /0
        return (
            f"other work used {self.other_cpus:.2f} of the {self.cpus} CPUs on average during "
            f"the run, the benchmark itself {own:.2f} "
            f"(1-min load average {start:.1f} at the start, {end:.1f} at the end): {verdict}"
        )


class LoadMeter:
    """Start it before a run, :meth:`stop` it after; ``extra_own_seconds`` adds the CPU time
    of detached helpers the run started (e.g. the WAN delayer), which are not our children."""

    def __init__(self) -> None:
        self._load_start = os.getloadavg()
        self._wall = time.monotonic()
        self._busy = _busy_cpu_seconds()
        self._own = own_cpu_seconds()

    def stop(self, extra_own_seconds: float = 0.0) -> Load:
        wall = time.monotonic() - self._wall
        busy = _busy_cpu_seconds() - self._busy
        own = own_cpu_seconds() - self._own + extra_own_seconds
        other = max(0.0, busy - own)
        return Load(
            wall_seconds=round(wall, 1),
            cpus=os.cpu_count() or 1,
            load_average_start=self._load_start,
            load_average_end=os.getloadavg(),
            busy_cpu_seconds=round(busy, 2),
            own_cpu_seconds=round(own, 2),
            other_cpu_seconds=round(other, 2),
            other_cpus=round(other / wall, 2) if wall > 0 else 0.0,
            shared=cpus_shared(other, wall),
        )


def write(
    name: str,
    command: str,
    started: float,
    load: Load,
    figures: dict[str, Any],
    folder: Path | None = None,
) -> Path:
    """``<folder>/<name>-<UTC start time>.json`` (folder: bench/results); returns its path.
    A NaN or infinity in the figures raises ValueError: no such figure is ever stored."""
    folder = RESULTS if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(started))
    path = folder / f"{name}-{stamp}.json"
    document = {
        "benchmark": name,
        "command": command,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "machine": machine(),
        "load": asdict(load),
        **figures,
    }
    text = json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False)
    path.write_text(text + "\n")
    return path


def relative(path: Path) -> str:
    """``bench/results/...json``, as the docs name it (a path outside the repository as is)."""
    try:
        return str(path.resolve().relative_to(RESULTS.parent.parent))
    except ValueError:
        return str(path)


ARTIFACTS = RESULTS.parent.parent / "artifacts"
"""Git-ignored: where a smoke run or a failed run stores its JSON (never bench/results)."""


DOCS = RESULTS.parent.parent / "docs" / "benchmarks.md"


def write_docs_section(section: str, start: str, end: str) -> None:
    """Put ``section`` (which begins with ``start`` and ends with ``end``) in
    docs/benchmarks.md in place of the previous one; other sections are left alone."""
    text = DOCS.read_text() if DOCS.exists() else "# edgescope benchmarks\n\n"
    if start in text and end in text:
        text = text[: text.index(start)] + section.rstrip("\n") + text[text.index(end) + len(end) :]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    DOCS.write_text(text)


def print_and_keep(result: object, out: Path | None) -> None:
    """Print ``result`` as JSON and, given ``out``, store it there too (a bench's last step)."""
    text = json.dumps(result, indent=1)
    print(text)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
