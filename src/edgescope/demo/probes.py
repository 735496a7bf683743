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
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgescope.demo.matrix import Probe, ProbeResult
from edgescope.errors import EdgescopeError
from edgescope.openstack.cli_runner import OPENSTACK, CliResult
from edgescope.openstack.session import REPORT_PREFIX

BOOT_ARGS = ("--flavor", "m1.tiny", "--nic", "none", "--wait")
BOOT_TIMEOUT = 150.0
LIST_TIMEOUT = 90.0
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
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    history: list[CliResult] = field(default_factory=list)
    _images: dict[str, str] = field(default_factory=dict)

    def run(
        self,
        at: str,
        *args: str,
        cloud: str,
        scope: str | None = None,
        timeout: float = QUERY_TIMEOUT,
    ) -> CliResult:
        """``openstack --os-cloud CLOUD [--os-scope SCOPE] ARGS`` typed at site ``at``."""
        argv = [OPENSTACK, "--os-cloud", cloud]
        if scope is not None:
            argv += ["--os-scope", scope]
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
        rows = self.json(site, "server", "list", "--all-projects", "-c", "ID", cloud=site)
        return {str(row["ID"]) for row in rows}

    def server_image(self, site: str, server_id: str) -> str:
        shown = self.json(site, "server", "show", server_id, cloud=site)
        image = shown.get("image")
        if isinstance(image, dict):
            return str(image.get("id", ""))
        return str(image or "").rsplit("(", 1)[-1].rstrip(")").strip()


class ProbeError(EdgescopeError):
    """A check's own query failed (the site could not even be asked)."""


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


def run_probe(sites: Sites, probe: Probe, servers: dict[str, str] | None = None) -> ProbeResult:
    """Run ``probe``, time it, check real state; never raises for a failed operation."""
    servers = servers if servers is not None else {}
    action: Callable[[Sites, Probe, dict[str, str]], tuple[bool, str, list[str]]]
    action = _boot if probe.kind == "boot" else _list
    started = time.monotonic()
    try:
        succeeded, detail, problems = action(sites, probe, servers)
    except ProbeError as exc:
        succeeded, detail, problems = False, str(exc), [f"a check could not run: {exc}"]
    seconds = time.monotonic() - started
    return ProbeResult(probe, succeeded, seconds, detail, tuple(problems))


def _boot(sites: Sites, probe: Probe, servers: dict[str, str]) -> tuple[bool, str, list[str]]:
    """``server create --wait`` as the site's non-admin user; check where it is, which image."""
    at = probe.client_site
    name = f"{SERVER_PREFIX}{probe.row}-{probe.key}-{sites.run_id}"
    expected_image = sites.image_id(probe.image_from) if probe.image_from else None
    image_ref = expected_image if probe.image_by_id and expected_image else "debian"
    started = time.monotonic()
    result = sites.run(
        at,
        "server", "create", name, "--image", image_ref, *BOOT_ARGS, "-f", "json",
        cloud=f"{at}-demo", scope=probe.scope, timeout=BOOT_TIMEOUT,
    )  # fmt: skip
    elapsed = time.monotonic() - started
    if not result.ok:
        return False, _failure_detail(result, elapsed), _failure_problems(probe, result)
    server = json.loads(result.stdout)
    problems = []
    if server.get("status") != "ACTIVE":
        problems.append(f"server {name} is {server.get('status')}, not ACTIVE")
    if server["id"] not in sites.server_ids(at):
        problems.append(f"server {server['id']} is not listed at {at}")
    image = sites.server_image(at, server["id"])
    if expected_image is not None and image != expected_image:
        problems.append(f"image {image[:8]} is not {probe.image_from}'s debian")
    servers[probe.key] = server["id"]
    origin = probe.image_from or at
    detail = f"server {server['id'][:8]} ACTIVE at {at}, image {image[:8]} = {origin}'s debian"
    if not probe.expect_ok:
        problems.append("it succeeded, but the seed's claim is that it cannot")
    return True, detail, problems


def _list(sites: Sites, probe: Probe, servers: dict[str, str]) -> tuple[bool, str, list[str]]:
    """``server list --all-projects`` under an ``&`` scope: the union, with each row's Site."""
    at = probe.client_site
    result = sites.run(
        at, "server", "list", "--all-projects", "-f", "json",
        cloud=at, scope=probe.scope, timeout=LIST_TIMEOUT,
    )  # fmt: skip
    if not result.ok:
        outcomes = site_outcomes(result.stderr)
        said = (
            ", ".join(f"{site} {what}" for site, what in outcomes.items()) or "no per-site report"
        )
        detail = f"{said} — {_failure_detail(result, None)}"
        return False, detail, _failure_problems(probe, result)
    rows = json.loads(result.stdout)
    by_site: dict[str, set[str]] = {}
    for row in rows:
        by_site.setdefault(str(row.get("Site")), set()).add(str(row["ID"]))
    problems = []
    for site in ("Paris", "Corte"):
        labelled = by_site.get(site, set())
        actual = sites.server_ids(site)
        if not labelled <= actual:
            problems.append(f"servers labelled {site} are not all at {site}")
        if not labelled:
            problems.append(f"no server labelled {site}")
    counts = ", ".join(
        f"{n} at {site}" for site, n in sorted((s, len(v)) for s, v in by_site.items())
    )
    return True, f"{len(rows)} servers: {counts}", problems


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


__all__ = ["ProbeError", "Sites", "last_line", "run_probe", "site_outcomes"]
