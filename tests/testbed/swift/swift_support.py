"""Helpers of the Swift tests: the real ``swift`` CLI at one site, checksums, access logs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgescope.proxy.carriers import attach_piggyback
from edgescope.testbed.swift import KEY, USER, SwiftSite


@dataclass(frozen=True)
class SwiftCli:
    """The real ``swift`` CLI (python3-swiftclient), authenticated at one site's proxy."""

    site: SwiftSite

    def run(
        self,
        command: str,
        *args: str,
        scope: str | None = None,
        in_token: bool = False,
        check: bool = True,
        retries: int = 2,
    ) -> subprocess.CompletedProcess[str]:
        """``swift <command> <args>``; ``scope`` goes in an ``X-Scope`` header (which the
        CLI adds to the object calls of ``upload``/``download`` and to ``list``), or with
        ``in_token`` piggybacked on the token, so that every call of the command has it.
        ``retries``: the CLI's own retries of a failed call (with back-off: 0 when a failure
        is expected)."""
        env = {**os.environ, "ST_AUTH": self.site.auth_url, "ST_USER": USER, "ST_KEY": KEY}
        for name in ("OS_AUTH_TOKEN", "OS_STORAGE_URL"):
            env.pop(name, None)
        options = ["--retries", str(retries)]
        if scope and in_token:
            token = self._call(["auth"], env, "auth", scope).stdout.split("OS_AUTH_TOKEN=")[1]
            piggybacked = attach_piggyback(token.split()[0], scope)
            options += ["--os-auth-token", piggybacked, "--os-storage-url", self.site.storage_url]
        elif scope:
            args = ("-H", f"X-Scope: {scope}", *args)
        return self._call([*options, command, *args], env, command, scope, check)

    def _call(
        self, argv: list[str], env: dict[str, str], what: str, scope: str | None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.site.exec_prefix, "swift", *argv],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(
                f"swift {what} at {self.site.name} (scope {scope}) failed: {done.stderr[-800:]}"
            )
        return done


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def proxy_calls(site: SwiftSite, service: str) -> list[dict[str, object]]:
    """The site proxy's access log lines for ``service``."""
    calls = []
    for line in site.log("edgescope").read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"service": "{service}"' in line:
            calls.append(json.loads(line))
    return calls


def proxy_metric(site: SwiftSite, sample: str) -> float:
    """One sample of the site proxy's ``/metrics`` (0 when absent), read inside the site's
    namespace on the WAN, e.g. ``edgescope_hedges_total{outcome="won"}``."""
    done = subprocess.run(
        [*site.exec_prefix, "curl", "-sf", "--max-time", "10", f"{site.url('edgescope')}/metrics"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    for line in done.stdout.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    return 0.0
