"""Run one :class:`~edgescope.demo.matrix.Probe` with the real ``openstack`` CLI, check real state.

Every command runs inside the namespace of the site it is typed at (``ip netns exec es-paris
openstack ...`` under the WAN; plain ``openstack`` on loopback), so it sees the network that
site sees. Each probe then checks the sites themselves, each asked from its own namespace by
its own admin: the server is ACTIVE at the right site, its image id is the right site's.
Neighbours: ``matrix.py`` (what to run), ``run.py`` (when), ``openstack/cli_runner.py``.

    >>> sites = Sites(clouds_yaml, {"Paris": ("ip", "netns", "exec", "es-paris"), ...})
    >>> result = run_probe(sites, probe("global", "xdc"))
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import sqlite3
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgescope.demo.matrix import Probe, ProbeResult
from edgescope.errors import EdgescopeError
from edgescope.openstack.cli_runner import OPENSTACK, CliResult
from edgescope.openstack.session import REPORT_PREFIX
from edgescope.replicas.model import PendingOp
from edgescope.replicas.registry import Registry

BOOT_ARGS = ("--flavor", "m1.tiny", "--nic", "none", "--wait")
BOOT_TIMEOUT = 150.0
LIST_TIMEOUT = 90.0
DRAIN_TIMEOUT = 150.0
QUERY_TIMEOUT = 60.0
_SITE_OUTCOME = re.compile(r"([A-Z][A-Za-z0-9_]*): (unreachable|\d{3} ok|\d{3} failed)")


SERVER_PREFIX = "es-demo-"
"""Every server the demo boots is named so; the next run deletes them first."""


@dataclass
class Sites:
    """How to type ``openstack`` at each site: the clouds.yaml and each site's exec prefix."""

    clouds_yaml: Path
    exec_prefix: Mapping[str, Sequence[str]]
    """Site -> command prefix (``ip netns exec es-paris``), empty on loopback."""
    registries: Path | None = None
    """``<testbed state>/sites``: each site's replica registry, read (read-only) by checks."""
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    history: list[CliResult] = field(default_factory=list)
    _images: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        at: str,
        *args: str,
        cloud: str,
        scope: str | None = None,
        mode: str = "strict",
        timeout: float = QUERY_TIMEOUT,
    ) -> CliResult:
        """``openstack --os-cloud CLOUD [--os-scope SCOPE] ARGS`` typed at site ``at``."""
        argv = [OPENSTACK, "--os-cloud", cloud]
        if scope is not None:
            argv += ["--os-scope", scope]
        if mode != "strict":
            argv += ["--os-scope-mode", mode]
        argv += list(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env["OS_CLIENT_CONFIG_FILE"] = str(self.clouds_yaml)
        prefix = list(self.exec_prefix.get(at, ()))
        command = shlex.join([*prefix, "openstack", *argv[1:]])
        try:
            proc = subprocess.run(
                [*prefix, *argv], env=env, capture_output=True, text=True, timeout=timeout
            )
            result = CliResult(command, proc.returncode, proc.stdout, proc.stderr)
        except subprocess.TimeoutExpired:
            result = CliResult(command, -1, "", f"timed out after {timeout:.0f} s")
        self.history.append(result)
        return result

    def json(self, at: str, *args: str, cloud: str, **kwargs: Any) -> Any:
        """Run with ``-f json``; raise :class:`ProbeError` unless it succeeded."""
        result = self.run(at, *args, "-f", "json", cloud=cloud, **kwargs)
        if not result.ok:
            raise ProbeError(f"`{result.command}` failed: {last_line(result.stderr)}")
        return json.loads(result.stdout)

    def image_id(self, site: str) -> str:
        """The id of the ``debian`` image *at* ``site``, asked there (each site has its own)."""
        if site not in self._images:
            shown = self.json(site, "image", "show", "debian", "-c", "id", cloud=site)
            self._images[site] = str(shown["id"])
        return self._images[site]

    def demo_servers(self, site: str) -> dict[str, str]:
        """Id -> status of the servers earlier demo runs left at ``site`` (any project)."""
        rows = self.json(site, "server", "list", "--all-projects", "-c", "ID", "-c", "Name",
                         "-c", "Status", cloud=site)  # fmt: skip
        return {
            str(r["ID"]): str(r["Status"]) for r in rows if str(r["Name"]).startswith(SERVER_PREFIX)
        }

    def server_ids(self, site: str) -> set[str]:
        return set(self.servers(site))

    def servers(self, site: str) -> dict[str, str]:
        """Id -> status of every server at ``site`` (any project), asked there."""
        rows = self.json(site, "server", "list", "--all-projects", "-c", "ID", "-c", "Status",
                         cloud=site)  # fmt: skip
        return {str(row["ID"]): str(row["Status"]) for row in rows}

    def members(self, handle: str, at: str = "Paris") -> dict[str, str | None]:
        """Site -> member id of the replica set ``handle``, as ``at``'s registry records it."""
        replica_set = self._registry(at).lookup(handle)
        return {m.site: m.id for m in replica_set.members} if replica_set else {}

    def pending(self, at: str, handle: str) -> list[PendingOp]:
        """The writes ``at`` has queued for the set ``handle`` (eventual mode)."""
        return [op for op in self._registry(at).pending() if op.handle == handle]

    def _registry(self, site: str) -> Registry:
        if self.registries is None:
            raise ProbeError("this run has no replica registries to read")
        try:
            return Registry(self.registries / site, read_only=True)
        except sqlite3.Error as exc:
            raise ProbeError(f"cannot read {site}'s replica registry: {exc}") from exc

    def server_image(self, site: str, server_id: str) -> str:
        shown = self.json(site, "server", "show", server_id, cloud=site)
        image = shown.get("image")
        if isinstance(image, dict):
            return str(image.get("id", ""))
        return str(image or "").rsplit("(", 1)[-1].rstrip(")").strip()


class ProbeError(EdgescopeError):
    """A check's own query failed (the site could not even be asked)."""


@dataclass
class Boots:
    """What each boot of the matrix made, per row: ``(row, key)`` -> server id, or why not.

    Rows share probe keys (``star-and-or`` is in both), so a later probe of a row reads only
    that row's boots: the partial row's drain never follows the global row's server.
    """

    made: dict[tuple[str, str], str] = field(default_factory=dict)
    failed: dict[tuple[str, str], str] = field(default_factory=dict)

    def record(self, probe: Probe, server_id: str | None, why: str = "") -> None:
        slot = (probe.row, probe.key)
        if server_id is None:
            self.made.pop(slot, None)
            self.failed[slot] = why
        else:
            self.failed.pop(slot, None)
            self.made[slot] = server_id

    def followed(self, probe: Probe) -> str:
        """The server of the boot ``probe`` follows, in ``probe``'s own row; else why not."""
        slot = (probe.row, probe.follows)
        if slot in self.made:
            return self.made[slot]
        if slot in self.failed:
            raise ProbeError(
                f"this row's eventual boot ({probe.follows}) failed, nothing to follow: "
                f"{self.failed[slot]}"
            )
        raise ProbeError(f"this row's eventual boot ({probe.follows}) did not run")


def last_line(text: str, width: int = 160) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "(no output)")[:width]


def site_outcomes(message: str) -> dict[str, str]:
    """Per-site outcomes in the proxy's multi-site error (``Paris: 200 ok; Corte: unreachable``).

    >>> site_outcomes("compute: 1 of 2 sites failed (Paris: 200 ok; Corte: unreachable (x))")
    {'Paris': '200 ok', 'Corte': 'unreachable'}
    """
    return dict(_SITE_OUTCOME.findall(message))


# --- the probes ---------------------------------------------------------------------------


def run_probe(sites: Sites, probe: Probe, boots: Boots | None = None) -> ProbeResult:
    """Run ``probe``, time it, check real state; never raises for a failed operation.

    A boot records in ``boots`` the server it made (or why it made none), under its row.
    """
    boots = boots if boots is not None else Boots()
    if probe.kind == "boot":
        boots.made.pop((probe.row, probe.key), None)
    actions = {"boot": _boot, "list": _list, "drain": _drain}
    started = time.monotonic()
    try:
        succeeded, detail, problems = actions[probe.kind](sites, probe, boots)
    except ProbeError as exc:
        succeeded, detail, problems = False, str(exc), [f"a check could not run: {exc}"]
    seconds = time.monotonic() - started
    if probe.kind == "boot" and (probe.row, probe.key) not in boots.made:
        boots.record(probe, None, detail)
    return ProbeResult(probe, succeeded, seconds, detail, tuple(problems))


def _boot(sites: Sites, probe: Probe, boots: Boots) -> tuple[bool, str, list[str]]:
    """``server create --image debian --wait`` as the site's user; check where, which image."""
    at = probe.client_site
    name = f"{SERVER_PREFIX}{probe.row}-{probe.key}-{sites.run_id}"
    expected_image = sites.image_id(probe.image_from) if probe.image_from else None
    started = time.monotonic()
    result = sites.run(
        at,
        "server", "create", name, "--image", "debian", *BOOT_ARGS, "-f", "json",
        cloud=f"{at}-demo", scope=probe.scope, mode=probe.mode, timeout=BOOT_TIMEOUT,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if not result.ok:
        problems = _failure_problems(probe, result)
        left = _left_behind(sites, at, name) if len(probe.sites) > 1 else ""
        if left:
            problems.append(left)
        detail = _failure_detail(result, elapsed) + ("" if left else _undone(result.stderr))
        return False, detail, problems
    server = json.loads(result.stdout)
    boots.record(probe, str(server["id"]))  # before the checks: they may fail to run
    problems = []
    if server.get("status") != "ACTIVE":
        problems.append(f"server {name} is {server.get('status')}, not ACTIVE")
    members = {at: str(server["id"])}
    if len(probe.sites) > 1 or probe.queued:
        members = {s: i for s, i in sites.members(str(server["id"]), at).items() if i}
    placed = []
    for site in probe.sites:
        member = members.get(site)
        status = sites.servers(site).get(member or "")
        if member is None or status != "ACTIVE":
            problems.append(f"no ACTIVE member at {site} ({member or 'no id'}: {status})")
            continue
        image = sites.server_image(site, member)
        if expected_image is not None and image != expected_image:
            problems.append(f"{site}'s member runs image {image[:8]}, not {probe.image_from}'s")
        placed.append(f"{site} {member[:8]}")
    detail = f"ACTIVE at {', '.join(placed)}; image = {probe.image_from or at}'s debian"
    if probe.queued:
        queued = [op.target for op in sites.pending(at, str(server["id"]))]
        if sorted(set(queued)) != sorted(probe.queued):
            problems.append(f"queued for {queued or 'no site'}, not {list(probe.queued)}")
        detail += f"; queued at {at} for {', '.join(sorted(set(queued))) or 'no site'}"
    if not probe.expect_ok:
        problems.append("it succeeded, but the semantics say it cannot")
    return True, detail, problems


def _drain(sites: Sites, probe: Probe, boots: Boots) -> tuple[bool, str, list[str]]:
    """After the heal: this row's eventual boot's queued members are applied and ACTIVE."""
    try:
        handle = boots.followed(probe)
    except ProbeError as exc:
        return False, str(exc), ["nothing was queued to apply"]
    at = probe.client_site
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while sites.pending(at, handle) and time.monotonic() < deadline:
        time.sleep(2)
    if sites.pending(at, handle):
        return False, f"still queued after {DRAIN_TIMEOUT:.0f} s", ["the queue did not drain"]
    drained = time.monotonic()
    problems = []
    placed = []
    for site in probe.sites:
        member = sites.members(handle, at).get(site)
        status = ""
        while member and time.monotonic() < deadline:
            status = sites.servers(site).get(member, "")
            if status in ("ACTIVE", "ERROR"):
                break
            time.sleep(2)
        if member is None or status != "ACTIVE":
            problems.append(f"{site}'s member is {status or 'missing'} ({member or 'no id'})")
        else:
            placed.append(f"{site} {member[:8]}")
    detail = f"queue drained; ACTIVE at {', '.join(placed) or 'no site'}"
    return not problems, detail + f" ({time.monotonic() - drained:.0f} s to boot)", problems


def _left_behind(sites: Sites, at: str, name: str, wait: float = 60.0) -> str:
    """A failed strict ``&`` boot must leave nothing: '' or what is left at ``at``."""
    deadline = time.monotonic() + wait
    while True:
        rows = sites.json(at, "server", "list", "--all-projects", "--name", f"^{name}$",
                          cloud=at)  # fmt: skip
        if not rows:
            return ""
        if time.monotonic() > deadline:
            return f"server {name} is still at {at} ({rows[0].get('Status')}): not undone"
        time.sleep(2)


def _undone(stderr: str) -> str:
    """What the proxy said it undid (``all or nothing, undone: Paris: <id> deleted again``)."""
    found = re.search(r"undone: ([^\n]*)", stderr)
    return f"; undone: {found.group(1)[:160]}" if found else "; nothing was created"


def _list(sites: Sites, probe: Probe, boots: Boots) -> tuple[bool, str, list[str]]:
    """``server list --all-projects`` under an ``&``: the union, each row with its Site(s)."""
    at = probe.client_site
    result = sites.run(
        at, "server", "list", "--all-projects", "-f", "json",
        cloud=at, scope=probe.scope, mode=probe.mode, timeout=LIST_TIMEOUT,
    )  # fmt: skip
    if result.ok and probe.mode == "partial":
        return _partial_list(sites, probe, result)
    if result.ok and probe.sites:
        return _around_list(sites, probe, result)
    if not result.ok:
        outcomes = site_outcomes(result.stderr)
        said = (
            ", ".join(f"{site} {what}" for site, what in outcomes.items()) or "no per-site report"
        )
        detail = f"{said} — {_failure_detail(result, None)}"
        return False, detail, _failure_problems(probe, result)
    rows = json.loads(result.stdout)
    at_site = {site: sites.server_ids(site) for site in ("Paris", "Corte")}
    problems = []
    listed = {str(row["ID"]) for row in rows}
    replicated = 0
    for row in rows:
        where = str(row.get("Site")).split(" & ")
        if len(where) == 1:
            if where[0] in at_site and str(row["ID"]) not in at_site[where[0]]:
                problems.append(f"server {row['ID']} labelled {where[0]} is not there")
            continue
        replicated += 1
        members = sites.members(str(row["ID"]), at)
        for site in where:
            member = members.get(site)
            if member is None or member not in at_site.get(site, set()):
                problems.append(f"replicated server {row['ID']} has no member at {site}")
            elif member != row["ID"] and member in listed:
                problems.append(f"member {member} of {row['ID']} is listed twice")
    if not replicated:
        problems.append("no replicated server listed once with Site 'Paris & Corte'")
    counts = {site: sum(1 for r in rows if r.get("Site") == site) for site in ("Paris", "Corte")}
    detail = (
        f"{len(rows)} rows: {replicated} replicated (Paris & Corte), "
        f"{counts['Paris']} at Paris, {counts['Corte']} at Corte"
    )
    return True, detail, problems


def _partial_list(sites: Sites, probe: Probe, result: CliResult) -> tuple[bool, str, list[str]]:
    """A partial ``&`` list that exited 0: Paris's servers, no other's, and a stderr warning
    naming each site left out (``edgescope: partial answer: no answer from Corte (...)``)."""
    rows = json.loads(result.stdout)
    at = probe.client_site
    here = sites.server_ids(at)
    problems = []
    warning = next(
        (line for line in result.stderr.splitlines()
         if line.startswith(f"{REPORT_PREFIX}partial answer")),
        "",
    )  # fmt: skip
    if not warning:
        problems.append("no 'partial answer' warning on stderr")
    missing = [site for site in probe.must_name if site not in warning]
    if warning and missing:
        problems.append(f"the partial warning does not name {', '.join(missing)}")
    shown = set()
    for row in rows:
        row_id, site = str(row["ID"]), str(row.get("Site"))
        if site != at:
            problems.append(f"server {row_id} labelled {site!r}, not {at}")
        member = row_id if row_id in here else sites.members(row_id, at).get(at)
        if member not in here:
            problems.append(f"server {row_id} is not at {at}")
        shown.add(member)
    unlisted = sorted(here - shown)
    if unlisted:
        problems.append(f"{len(unlisted)} of {at}'s servers not listed ({unlisted[0]}...)")
    said = warning.removeprefix(REPORT_PREFIX)[:160] or "no warning"
    return True, f"exit 0: {len(rows)} rows; stderr: {said}", problems


def _around_list(sites: Sites, probe: Probe, result: CliResult) -> tuple[bool, str, list[str]]:
    """An ``around`` list: every row from one of ``probe.sites`` (a row without a Site came
    from the client's site: nothing was merged), none of the other sites' servers."""
    rows = json.loads(result.stdout)
    counts: dict[str, int] = {}
    problems = []
    for row in rows:
        for site in str(row.get("Site") or probe.client_site).split(" & "):
            counts[site] = counts.get(site, 0) + 1
            if site not in probe.sites:
                problems.append(f"server {row['ID']} from {site}, outside the around")
    listed = {str(row["ID"]) for row in rows}
    for site in ("Paris", "Corte", "Marseille"):
        if site not in probe.sites and site in sites.exec_prefix:
            shown = listed & sites.server_ids(site)
            if shown:
                problems.append(f"{len(shown)} of {site}'s servers listed ({min(shown)}...)")
    said = ", ".join(f"{n} from {site}" for site, n in sorted(counts.items())) or "none"
    return True, f"{len(rows)} rows: {said}", problems


def _failure_detail(result: CliResult, elapsed: float | None) -> str:
    """The CLI's last error line, after edgescope's own line when OSC hid it behind its
    wording (an unreachable image site becomes "does not have any supported versions")."""
    took = f" after {elapsed:.1f} s" if elapsed is not None else ""
    osc = last_line(result.stderr, 220)
    ours = [line for line in result.stderr.splitlines() if line.startswith(REPORT_PREFIX)]
    if ours and ours[0] != osc:
        return f"error{took}: {ours[0][:220]} — OSC: {osc}"
    return f"error{took}: {osc}"


def _failure_problems(probe: Probe, result: CliResult) -> list[str]:
    """An expected failure must still be a clean one: no traceback, names the sites."""
    if probe.expect_ok:
        return [f"`{result.command}` failed"]
    problems = []
    if "Traceback" in result.stderr:
        problems.append("the CLI printed a traceback")
    if result.code == -1:
        problems.append("the command hung until its timeout")
    missing = [site for site in probe.must_name if site not in result.stderr]
    if missing:
        problems.append(f"the error does not name {', '.join(missing)}")
    return problems


__all__ = ["Boots", "ProbeError", "Sites", "last_line", "run_probe", "site_outcomes"]
