"""``edgescope demo --app swift``: Swift's scenarios 1–3, global and with Paris–Corte cut.

Three sites of Swift from Debian's packages (:mod:`edgescope.testbed.swift`), on the
emulated WAN (each site in its own namespaces, prefix ``es-swift``, never the OpenStack
demo's ``es``) when root and namespaces allow it, else on loopback, where the "cut" is
Corte's proxy stopped. Every probe is the real ``swift`` CLI at Paris; a cell holds what
was expected, what happened, and how long it took.

    outcome = run_swift_demo(SwiftDemoOptions(), print)   # brings the sites up, probes
    run_matrix(bed, cut=..., heal=...)                     # the probes on sites already up
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from edgescope.testbed.process import stop_process
from edgescope.testbed.swift import KEY, USER, SwiftSite, SwiftTestbed, missing_binaries
from edgescope.testbed.wan import Wan, WanError, load_topology

SITES = ("Paris", "Corte", "Marseille")
PREFIX = "es-swift"
PORT_BASE = 16200
"""Away from the tests' 16000 and the benchmark's 16100 (used on loopback only)."""
COLUMNS = {
    1: "1. Paris's API, Corte's disks",
    2: "2. & : Paris & Corte",
    3: "3. | : Corte | Marseille",
}
ROWS = ("global", "partial")
_Step = Callable[[], tuple[bool, str]]


@dataclass(frozen=True)
class Cell:
    """One probe: a scenario in a row."""

    row: str
    column: int
    command: str
    expect_ok: bool
    ok: bool
    seconds: float
    detail: str

    @property
    def as_expected(self) -> bool:
        return self.ok == self.expect_ok


@dataclass(frozen=True)
class SwiftDemoOptions:
    wan: bool | None = None
    """True: the WAN or an error; False: loopback; None: the WAN when it can run."""
    down: bool = False
    state_dir: Path = field(default_factory=lambda: Path("state-wan") / "swift")


@dataclass
class SwiftOutcome:
    network: str
    up_seconds: float
    memory: dict[str, int]
    cells: list[Cell]
    hint: str
    total_seconds: float = 0.0


def swift(
    site: SwiftSite, *args: str, scope: str | None = None
) -> subprocess.CompletedProcess[str]:
    """The real ``swift`` CLI at ``site`` (in its namespace), the scope in ``X-Scope``."""
    env = {**os.environ, "ST_AUTH": site.auth_url, "ST_USER": USER, "ST_KEY": KEY}
    command, *rest = args
    scoped = ["-H", f"X-Scope: {scope}"] if scope else []
    argv = [*site.exec_prefix, "swift", "--retries", "0", command, *scoped, *rest]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)


def _served_by(bed: SwiftTestbed, path_end: str) -> dict[str, int]:
    """Per site: how many object GETs ending in ``path_end`` it served for a peer."""
    counts = {}
    for name, site in bed.sites.items():
        lines = site.log("edgescope").read_text(errors="replace").splitlines()
        calls = [json.loads(line) for line in lines if line.startswith("{") and path_end in line]
        counts[name] = sum(
            1
            for c in calls
            if c.get("service") == "swift-object"
            and c.get("method") == "GET"
            and c.get("from_peer")
            and str(c.get("path")).endswith(path_end)
            and c.get("status") == 200
        )
    return counts


class _Prober:
    """Runs the probes at Paris, with one payload and containers named for this run."""

    def __init__(self, bed: SwiftTestbed, work: Path) -> None:
        self.bed = bed
        self.paris = bed.sites["Paris"]
        self.run_id = uuid.uuid4().hex[:6]
        work.mkdir(parents=True, exist_ok=True)
        self.work = work
        self.payload = work / "payload.bin"
        self.payload.write_bytes(os.urandom(1 << 20))
        self.digest = hashlib.sha256(self.payload.read_bytes()).hexdigest()

    def container(self, name: str) -> str:
        return f"demo-{self.run_id}-{name}"

    def holders(self, container: str) -> list[str]:
        return [n for n, s in self.bed.sites.items() if s.data_files(container, "o")]

    def put(self, container: str, scope: str) -> tuple[bool, str]:
        done = swift(self.paris, "upload", container, str(self.payload), "--object-name", "o",
                     scope=scope)  # fmt: skip
        if done.returncode != 0:
            return False, _last_line(done.stderr)
        return True, f".data at {', '.join(self.holders(container)) or 'no site'}"

    def get(self, container: str, scope: str | None) -> tuple[bool, str]:
        to = self.work / f"{container}.back"
        to.unlink(missing_ok=True)
        before = _served_by(self.bed, f"/{container}/o")
        done = swift(self.paris, "download", container, "o", "-o", str(to), scope=scope)
        if done.returncode != 0:
            return False, _last_line(done.stderr)
        if hashlib.sha256(to.read_bytes()).hexdigest() != self.digest:
            return False, "the bytes read back differ"
        after = _served_by(self.bed, f"/{container}/o")
        served = [n for n in after if after[n] > before[n]] or ["Paris"]
        return True, f"same bytes, served by {', '.join(served)}"


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "failed"
    return last.split("  [first ")[0][:160]  # the CLI quotes the body's start after that


def run_matrix(
    bed: SwiftTestbed,
    *,
    cut: Callable[[], None],
    heal: Callable[[], None],
    work: Path,
    on_cell: Callable[[Cell], None] = lambda cell: None,
) -> list[Cell]:
    """Scenarios 1–3 through the ``swift`` CLI at Paris, global then with Paris–Corte cut
    (``cut``; ``heal`` is called whatever happens). Failing probes of the partial row run
    last: Swift's proxy-server counts each failed backend call against the node."""
    probe = _Prober(bed, work)
    cells: list[Cell] = []

    def cell(row: str, column: int, command: str, expect_ok: bool, step: _Step) -> None:
        began = time.monotonic()
        ok, detail = step()
        cells.append(Cell(row, column, command, expect_ok, ok, time.monotonic() - began, detail))
        on_cell(cells[-1])

    one, both, either = probe.container("one"), probe.container("pc"), probe.container("cm")
    corte, paris = "{swift-object: Corte}", "{swift-object: Paris}"
    pc, cm = "{swift-object: Paris & Corte}", "{swift-object: Corte & Marseille}"
    corte_or_marseille = "{swift-object: Corte | Marseille}"

    def put_get(container: str, put_scope: str, get_scope: str) -> tuple[bool, str]:
        ok, stored = probe.put(container, put_scope)
        if not ok:
            return ok, stored
        ok, read = probe.get(container, get_scope)
        return ok, f"{stored}; {read}"

    def get_either() -> tuple[bool, str]:
        return probe.get(either, corte_or_marseille)

    cell("global", 1, f"upload + download {corte}", True, lambda: put_get(one, corte, corte))
    cell("global", 2, f"upload {pc}, download {paris}", True, lambda: put_get(both, pc, paris))
    stored, why = probe.put(either, cm)  # the object of scenario 3, at Corte and Marseille
    cell("global", 3, f"download {corte_or_marseille}", True,
         get_either if stored else lambda: (False, f"its upload failed: {why}"))  # fmt: skip
    cut()
    try:
        cell("partial", 3, f"download {corte_or_marseille}", True, get_either)
        cell("partial", 2, f"download the {pc} object, no scope", True,
             lambda: probe.get(both, None))  # fmt: skip
        cell("partial", 1, f"upload {corte}", False,
             lambda: probe.put(probe.container("one-cut"), corte))  # fmt: skip
    finally:
        heal()
    return sorted(cells, key=lambda c: (ROWS.index(c.row), c.column))


def wan_possible() -> str | None:
    """Why the WAN cannot run here (None: it can)."""
    if os.geteuid() != 0:
        return "not root: loopback, and the cut is Corte's proxy stopped"
    if not Path("/run/netns").exists() and subprocess.run(
        ["ip", "netns", "list"], capture_output=True, check=False
    ).returncode != 0:  # fmt: skip
        return "no network namespaces: loopback, and the cut is Corte's proxy stopped"
    return None


def run_swift_demo(
    options: SwiftDemoOptions, progress: Callable[[str], None] = lambda text: None
) -> SwiftOutcome:
    """Bring the sites up (afresh), run the matrix, and leave them up unless ``down``."""
    if missing := missing_binaries():
        raise WanError(f"not installed: {', '.join(missing)} (make system-deps as root)")
    began = time.monotonic()
    state = options.state_dir.resolve()
    why_not = wan_possible()
    if options.wan and why_not:
        raise WanError(f"--wan asked for, but {why_not.split(':')[0]}")
    use_wan = options.wan is not False and why_not is None
    _stop_previous(state)
    wan = None
    if use_wan:
        progress(f"the WAN: namespaces {PREFIX}-*, Renater delays")
        wan = Wan.up(load_topology(sites=list(SITES)), state / "wan", prefix=PREFIX)
        network = "emulated WAN (Renater delays; partial = Paris–Corte cut by iptables)"
    else:
        network = f"loopback ({why_not or 'as asked'}; partial = Corte's proxy stopped)"
    bed = SwiftTestbed.create(state / "sites", SITES, port_base=PORT_BASE, wan=wan)
    try:
        progress("Swift at Paris, Corte and Marseille, each behind its proxy")
        up = bed.up()
        memory = {name: sum(bed.memory(name).values()) for name in SITES}
        cut, heal = _cut_and_heal(bed, wan)
        progress("the probes: global row, then the partial row")
        cells = run_matrix(bed, cut=cut, heal=heal, work=state / "work",
                           on_cell=lambda c: progress(_cell_line(c)))  # fmt: skip
    finally:
        if options.down:
            bed.down()
            if wan is not None:
                wan.down()
    paris = bed.sites["Paris"]
    try_it = " ".join([*paris.exec_prefix, "swift", "-A", paris.auth_url, "-U", USER, "-K", KEY])
    hint = (
        "torn down (--down)"
        if options.down
        else f"{try_it} list; tear down: edgescope demo --app swift --down"
    )
    outcome = SwiftOutcome(network, max(up.values()), memory, cells, hint)
    outcome.total_seconds = time.monotonic() - began
    return outcome


def _cut_and_heal(
    bed: SwiftTestbed, wan: Wan | None
) -> tuple[Callable[[], None], Callable[[], None]]:
    """Paris–Corte cut on the WAN; on loopback, Corte's proxy stopped and started again."""
    if wan is not None:
        running = wan
        return (lambda: running.partition("Paris", "Corte")), running.heal

    def heal() -> None:
        bed.up(["Corte"])

    return (lambda: bed.stop("Corte", ["edgescope"])), heal


def _stop_previous(state: Path) -> None:
    """Stop the Swift processes and the WAN a previous run left in ``state``."""
    sites = state / "sites"
    for pidfile in sites.glob("*/run/*.pid"):
        stop_process(pidfile)
    if (state / "wan" / "state.json").exists():
        Wan.attach(state / "wan").down()


def _cell_line(cell: Cell) -> str:
    mark = "✓" if cell.as_expected else "✗"
    return f"  {mark} {cell.row} {COLUMNS[cell.column]}: {cell.detail} ({cell.seconds:.1f} s)"
