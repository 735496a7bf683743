"""``edgescope demo``'s orchestration: WAN, testbed, the seed's matrix under a cut, heal, hint.

1. the network: the emulated WAN (each site in its own namespace, Renater delays) when
   root and namespaces work, else loopback without delays (and :attr:`Network.note` says why);
2. the testbed: :class:`edgescope.testbed.Testbed` in the state folder, started or reused;
3. the matrix (``matrix.py``), each probe run by ``probes.py`` with the real CLI: the global
   row, then the partial row with Paris–Corte cut; the link is healed whatever happens.
Neighbours: ``cli/demo.py`` shows progress and prints the table; ``tests/integration``
reuses :func:`open_network` and :func:`open_testbed`.

    >>> outcome = run_demo(DemoOptions(), Reporter())
    >>> verdict(outcome.results)
    (16, 16)
"""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from edgescope.demo.matrix import CUT, MATRIX, ProbeResult, Row, probes_for
from edgescope.demo.probes import Boots, ProbeError, Sites, run_probe
from edgescope.demo.report import Phase
from edgescope.errors import ConfigError, EdgescopeError
from edgescope.testbed import Testbed
from edgescope.testbed.layout import CatalogMode, TestbedUsageError
from edgescope.testbed.wan import DEFAULT_STATE_DIR, Wan, WanError, load_topology

DEFAULT_SITES = ("Paris", "Corte", "Marseille")
SETTLE_SECONDS = 0.5
"""After a cut: in-flight packets of the old link drain (the cut itself is immediate)."""
CLEAR_TIMEOUT = 60.0
"""Seconds one round of deleting the servers of earlier runs may take at one site."""


class DemoError(EdgescopeError):
    """The demo cannot run (a clear message, no traceback): exit code 1."""


class DemoUsageError(DemoError):
    """The request itself is wrong (sites, mode, folder): exit code 2."""


@dataclass(frozen=True)
class DemoOptions:
    sites: tuple[str, ...] = DEFAULT_SITES
    wan: bool | None = None
    """True: the WAN or an error; False: loopback; None: the WAN when it can run."""
    topology: Path | None = None
    down: bool = False
    state_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("EDGESCOPE_DEMO_STATE_DIR", "state-wan"))
    )
    """Apart from the tests' loopback testbed (``state``); the WAN fault tests reuse it."""
    catalog: CatalogMode | None = None
    """Where each site's catalog points (``haproxy``, ``proxy``: the plain mode); None: the
    testbed's own, or HAProxy for a new one."""


class Reporter:
    """Progress callbacks; the CLI overrides them with rich progress, the default is silent."""

    def step(self, message: str) -> None:
        """A stage of the demo starts (``bringing the sites up``)."""

    def site(self, site: str, message: str) -> None:
        """A site's own progress while the testbed comes up (``*`` = RabbitMQ)."""

    def probe_started(self, label: str) -> None:
        """A probe of the matrix starts."""

    def probe_done(self, result: ProbeResult) -> None:
        """A probe finished."""


@dataclass
class Network:
    wan: Wan | None
    note: str
    """One line: which WAN (topology, backend, delays) or why loopback."""
    started: bool = False
    """True when this run created the WAN (so ``--down`` removes it)."""


@dataclass
class DemoOutcome:
    network: Network
    results: list[ProbeResult]
    testbed_seconds: float
    testbed_kinds: dict[str, str]
    total_seconds: float
    hint: str
    torn_down: bool
    history: list[Any] = field(default_factory=list)
    phases: list[Phase] = field(default_factory=list)
    """Windows of the run worth drawing (the partial row's cut)."""


# --- 1. the network -------------------------------------------------------------------------


def _existing_testbed(state_dir: Path) -> Testbed | None:
    return Testbed.from_state(state_dir) if (state_dir / "testbed.json").exists() else None


def _wan_note(wan: Wan) -> str:
    status = wan.status()
    links = ", ".join(
        f"{a}–{b} {link['rtt_ms']:g} ms"
        for link in status.links
        for a, b in [link["sites"]]
        if all(any(s["name"] == n for s in status.sites) for n in (a, b))
    )
    return f"emulated WAN ({status.backend}): each site in its own namespace; RTT {links}"


def _loopback_reason(options: DemoOptions, existing: Testbed | None) -> str | None:
    """Why the WAN cannot or should not be used (None: use it)."""
    if options.wan is False:
        return "--no-wan was given"
    if existing is not None and existing.wan_state is None:
        return f"{options.state_dir} holds a loopback testbed (reused as it is)"
    if os.geteuid() != 0:
        return "not root: network namespaces and iptables rules need root"
    if not Path("/proc/self/ns/net").exists():
        return "this kernel has no network namespaces"
    return None


def open_network(options: DemoOptions, say: Callable[[str], None] = lambda _m: None) -> Network:
    """The emulated WAN (attached if already up, else created) or loopback with a reason."""
    existing = _existing_testbed(options.state_dir)
    reason = _loopback_reason(options, existing)
    if reason is not None:
        if options.wan:
            raise DemoUsageError(f"--wan asked for, but {reason}")
        return Network(None, f"loopback, no delays and no partitions: {reason}")
    wan_state = existing.wan_state if existing is not None and existing.wan_state else None
    state = wan_state or DEFAULT_STATE_DIR
    try:
        if (state / "state.json").exists():
            say(f"attaching to the WAN in {state}")
            wan = Wan.attach(state)
            missing = [s for s in options.sites if s not in wan.topology.names]
            if missing:
                raise DemoError(
                    f"the running WAN in {state} has no site {', '.join(missing)}; "
                    "`edgescope testbed down` it first"
                )
            return Network(wan, _wan_note(wan))
        say("creating the WAN: namespaces, bridge, delays")
        wan = Wan.up(load_topology(options.topology, sites=list(options.sites)), state)
    except (WanError, ConfigError, OSError) as exc:
        if options.wan or isinstance(exc, ConfigError):
            raise DemoError(f"cannot bring the WAN up: {exc}") from exc
        return Network(None, f"loopback, no delays and no partitions: the WAN failed: {exc}")
    return Network(wan, _wan_note(wan), started=True)


# --- 2. the testbed -------------------------------------------------------------------------


def open_testbed(
    options: DemoOptions, network: Network, report: Callable[[str, str], None]
) -> tuple[Testbed, dict[str, dict[str, Any]]]:
    """Plan (or reuse) the testbed in the state folder for this network and bring it up."""
    existing = _existing_testbed(options.state_dir)
    if existing is not None:
        names = [plan.name for plan in existing.plans]
        if names != list(options.sites):
            raise DemoUsageError(
                f"{options.state_dir} holds a testbed of {','.join(names)}; use --sites "
                f"{','.join(names)}, another --state-dir, or `edgescope testbed down --purge`"
            )
        on_wan = existing.wan_state is not None
        if on_wan != (network.wan is not None):
            mode = "WAN" if on_wan else "loopback"
            raise DemoUsageError(
                f"{options.state_dir} holds a {mode} testbed; use "
                f"{'--wan' if on_wan else '--no-wan'}, another --state-dir, or "
                "`edgescope testbed down --purge` first"
            )
        mode = existing.plans[0].catalog
        if options.catalog not in (None, mode):
            raise DemoUsageError(
                f"{options.state_dir} holds a testbed with --catalog {mode}; use it, another "
                "--state-dir, or `edgescope testbed down --purge` first"
            )
        testbed = existing
    else:
        addresses = None
        if network.wan is not None:
            wan = network.wan
            addresses = {s: (wan.site_address(s), tuple(wan.exec_prefix(s))) for s in options.sites}
        testbed = Testbed.create(
            options.state_dir,
            list(options.sites),
            addresses=addresses,
            wan_state=network.wan.state_dir if network.wan is not None else None,
            catalog=options.catalog,
        )
    try:
        return testbed, testbed.up(report)
    except TestbedUsageError as exc:
        raise DemoUsageError(str(exc)) from exc


def sites_of(testbed: Testbed) -> Sites:
    """How to type ``openstack`` at each site of ``testbed`` (inside its namespace, if any)."""
    return Sites(
        testbed.clouds_yaml,
        {name: info.exec_prefix for name, info in testbed.sites.items()},
        registries=testbed.state_dir / "sites",
    )


# --- 3. the matrix ----------------------------------------------------------------------------


def _warm_up(sites: Sites, site: str, attempts: int = 6) -> None:
    """The first call at a site that has just started may find its proxy not yet serving."""
    for attempt in range(attempts):
        try:
            sites.image_id(site)
            return
        except ProbeError as exc:
            if attempt == attempts - 1:
                raise DemoError(f"{site} does not answer: {exc}") from exc
            time.sleep(5)


def clear_earlier_runs(sites: Sites, reporter: Reporter, rounds: int = 3) -> None:
    """Delete the servers earlier demo runs left (they count against the demo quota).

    A delete that nova failed (before the testbed's SQLite plugin: "database is locked")
    leaves the server in ERROR, or stuck in task ``deleting``; what is left is reset to ERROR
    (as an operator would, ``server set --state error``) and deleted again, a few rounds at
    most, each bounded in time.
    """
    for site in sites.exec_prefix:
        left = sites.demo_servers(site)
        for attempt in range(rounds):
            if not left:
                break
            reporter.site(site, f"deleting {len(left)} server(s) left by an earlier demo run")
            if attempt:
                for server in left:
                    sites.run(site, "server", "set", "--state", "error", server, cloud=site)
            sites.run(site, "server", "delete", *left, cloud=site)
            deadline = time.monotonic() + CLEAR_TIMEOUT
            while time.monotonic() < deadline:
                time.sleep(2)
                left = sites.demo_servers(site)
                if all(status == "ERROR" for status in left.values()):
                    break  # gone, or failed to delete: try those again
        if left:  # not fatal: the matrix says what a full quota breaks
            reporter.site(site, f"{len(left)} server(s) of an earlier run could not be deleted")


def run_matrix(
    sites: Sites, network: Network, reporter: Reporter, timeline: list[Phase] | None = None
) -> list[ProbeResult]:
    """The global row, then (with the WAN) the partial row with Paris–Corte cut, then heal;
    ``timeline`` gets the cut's window (wall-clock times, for the report)."""
    results: list[ProbeResult] = []
    boots = Boots()  # per row: the heal's drain follows the partial row's own boot

    def run_row(row: Row, *, after_heal: bool = False) -> None:
        for probe in probes_for(row):
            if (probe.kind == "drain") != after_heal:
                continue
            reporter.probe_started(f"{row}: {probe.column} {probe.label}")
            began = time.time()
            result = replace(run_probe(sites, probe, boots), started=began)
            reporter.probe_done(result)
            results.append(result)

    reporter.step("asking each site for its debian image id")
    for site in sites.exec_prefix:
        _warm_up(sites, site)
    clear_earlier_runs(sites, reporter)
    reporter.step("global connectivity")
    run_row("global")
    if network.wan is None:
        results.extend(
            ProbeResult(p, False, 0.0, "needs the emulated WAN to cut Paris–Corte", skipped=True)
            for p in probes_for("partial")
        )
        return results
    reporter.step(f"partial connectivity: cutting {CUT[0]}–{CUT[1]}")
    network.wan.partition(*CUT)
    cut_at = time.time()
    try:
        time.sleep(SETTLE_SECONDS)
        run_row("partial")
    finally:
        reporter.step(f"healing {CUT[0]}–{CUT[1]}")
        network.wan.heal(*CUT)
        if timeline is not None:
            timeline.append(Phase(f"{CUT[0]}–{CUT[1]} cut", cut_at, time.time()))
    reporter.step("after the heal: what was queued during the cut")
    run_row("partial", after_heal=True)
    order = {(p.row, p.key): i for i, p in enumerate(MATRIX)}
    return sorted(results, key=lambda r: order[(r.probe.row, r.probe.key)])


def hint(testbed: Testbed, network: Network) -> str:
    """One line: how to use the sites now (inside Paris's namespace under the WAN)."""
    paris = next(iter(testbed.sites.values()))
    command = [
        *paris.exec_prefix,
        "openstack",
        "--os-cloud",
        paris.cloud,
        "--os-scope",
        "{nova: Paris, glance: Corte | Marseille}",
        "image",
        "list",
    ]
    return f"OS_CLIENT_CONFIG_FILE={testbed.clouds_yaml} {shlex.join(command)}"


def run_demo(options: DemoOptions, reporter: Reporter) -> DemoOutcome:
    """Everything ``edgescope demo`` does, in order; the link is healed even on errors."""
    started = time.monotonic()
    missing = [s for s in DEFAULT_SITES if s not in options.sites]
    if missing:
        raise DemoUsageError(
            f"the seed's matrix needs the sites {', '.join(DEFAULT_SITES)}; "
            f"--sites lacks {', '.join(missing)}"
        )
    reporter.step("network")
    network = open_network(options, reporter.step)
    reporter.step("bringing the sites up (cold ~4-5 min, warm much less)")
    up_started = time.monotonic()
    testbed, kinds = open_testbed(options, network, reporter.site)
    up_seconds = time.monotonic() - up_started
    sites = sites_of(testbed)
    phases: list[Phase] = []
    results = run_matrix(sites, network, reporter, phases)
    torn_down = False
    if options.down:
        reporter.step("tearing the testbed down")
        testbed.down()
        if network.wan is not None:
            network.wan.down()
        torn_down = True
    return DemoOutcome(
        network,
        results,
        up_seconds,
        {name: str(r.get("kind")) for name, r in kinds.items()},
        time.monotonic() - started,
        hint(testbed, network),
        torn_down,
        list(sites.history),
        phases,
    )


__all__ = [
    "DEFAULT_SITES",
    "DemoError",
    "DemoOptions",
    "DemoOutcome",
    "DemoUsageError",
    "Network",
    "Reporter",
    "hint",
    "open_network",
    "open_testbed",
    "run_demo",
    "run_matrix",
    "sites_of",
]
