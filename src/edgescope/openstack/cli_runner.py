"""Drive the real ``openstack`` command as a subprocess, the way a user types it.

``scenarios.py`` runs every scenario through :class:`Cli`. Output is parsed from ``-f json`` /
``-f value``, never scraped from tables. :class:`LogTail` reads what a log file gained during
one step (the proxy's JSON access log), which is how scenarios prove where a call went.

    >>> cli = Cli(clouds_yaml=Path("~/.config/openstack/clouds.yaml"))
    >>> cli.json("server", "list", cloud="Paris", scope="{nova: Paris & Corte}")
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgescope.errors import EdgescopeError

DEFAULT_TIMEOUT = 300.0
OPENSTACK = str(Path(sys.executable).with_name("openstack"))
"""The ``openstack`` script of the environment edgescope runs in (the plugin is installed there)."""


class CliFailed(EdgescopeError):
    """An ``openstack`` command that had to succeed did not."""

    def __init__(self, result: CliResult) -> None:
        super().__init__(f"`{result.command}` exited {result.code}: {result.stderr.strip()[-800:]}")
        self.result = result


@dataclass(frozen=True)
class CliResult:
    command: str
    code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.code == 0


@dataclass
class Cli:
    """Runs ``openstack`` with one ``clouds.yaml``; ``history`` keeps every command run."""

    clouds_yaml: Path
    executable: str = field(
        default_factory=lambda: str(Path(sys.executable).with_name("openstack"))
    )
    extra_env: Mapping[str, str] = field(default_factory=dict)
    history: list[CliResult] = field(default_factory=list)

    def run(
        self,
        *args: str,
        cloud: str | None = None,
        scope: str | None = None,
        check: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> CliResult:
        argv = [self.executable]
        if cloud is not None:
            argv += ["--os-cloud", cloud]
        if scope is not None:
            argv += ["--os-scope", scope]
        argv += list(args)
        env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        env.update({"OS_CLIENT_CONFIG_FILE": str(self.clouds_yaml), **self.extra_env})
        command = shlex.join(["openstack", *argv[1:]])
        try:
            proc = subprocess.run(
                argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
            result = CliResult(command, proc.returncode, proc.stdout, proc.stderr)
        except subprocess.TimeoutExpired:
            result = CliResult(command, -1, "", f"timed out after {timeout:.0f} s")
        self.history.append(result)
        if check and not result.ok:
            raise CliFailed(result)
        return result

    def json(self, *args: str, **kwargs: Any) -> Any:
        """Run with ``-f json`` and decode stdout."""
        return json.loads(self.run(*args, "-f", "json", **kwargs).stdout)

    def value(self, *args: str, **kwargs: Any) -> str:
        """Run with ``-f value`` and return stripped stdout."""
        return self.run(*args, "-f", "value", **kwargs).stdout.strip()


@dataclass
class LogTail:
    """The lines a log file gains from now on: ``tail = LogTail(path); ...; tail.lines()``."""

    path: Path
    offset: int = -1

    def __post_init__(self) -> None:
        if self.offset < 0:
            self.offset = self.path.stat().st_size if self.path.exists() else 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            return handle.read().decode("utf-8", "replace").splitlines()

    def json_records(self) -> Iterator[dict[str, Any]]:
        """Every JSON object in the new lines (a log prefix before the ``{`` is skipped)."""
        return json_records(self.lines())


def json_records(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Every JSON object of a log's lines (a prefix before the ``{`` is skipped)."""
    for line in lines:
        start = line.find("{")
        if start < 0:
            continue
        try:
            record = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(record, dict):
            yield record
