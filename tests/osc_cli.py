"""The real ``openstack`` CLI run from a test without blocking its event loop (the servers the
test started run on it), bounded by a hang guard."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from pathlib import Path

OPENSTACK = str(Path(sys.executable).with_name("openstack"))


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


async def run_openstack(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> CliResult:
    """Run the real ``openstack`` CLI without blocking the event loop (the recorder runs on it)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    proc = await asyncio.create_subprocess_exec(
        OPENSTACK,
        *args,
        env={**clean, **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    # A hang guard, not a time limit: at load 40 one CLI start-up alone took 88 s
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout=300)
    except TimeoutError:  # reaped here: its pipes left open failed a later test's teardown
        proc.kill()
        await proc.communicate()
        raise
    return CliResult(proc.returncode or 0, out.decode(), err.decode())
