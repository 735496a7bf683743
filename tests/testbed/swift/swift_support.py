"""Helpers of the Swift tests: the real ``swift`` CLI at one site, checksums, access logs."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from edgescope.testbed.swift import KEY, USER, SwiftSite


@dataclass(frozen=True)
class SwiftCli:
    """The real ``swift`` CLI (python3-swiftclient), authenticated at one site's proxy."""

    site: SwiftSite

    def run(
        self, command: str, *args: str, scope: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "ST_AUTH": self.site.auth_url, "ST_USER": USER, "ST_KEY": KEY}
        headers = ["-H", f"X-Scope: {scope}"] if scope else []
        done = subprocess.run(
            ["swift", command, *headers, *args],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        if check and done.returncode != 0:
            pytest.fail(
                f"swift {command} {' '.join(args)} at {self.site.name} (scope {scope}) failed: "
                f"{done.stderr[-800:]}"
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
