"""Run the system tools the WAN is built with (ip, iptables, tc), with clean errors.

Every subprocess of the WAN package goes through ``run`` so that a failing tool becomes
one ``WanError`` naming the command and quoting its stderr, never a traceback.

    run(netns_cmd("es-wan", "iptables", "-w", "-S", "FORWARD"))
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence

from edgescope.errors import EdgescopeError


class WanError(EdgescopeError):
    """The emulated WAN could not be built, changed or torn down."""


def run(
    cmd: Sequence[str], *, input: str | None = None, check: bool = True, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd``; raise WanError (with its stderr) when it fails and ``check`` is set."""
    if shutil.which(cmd[0]) is None:
        raise WanError(
            f"{cmd[0]} is not installed (Debian package: {_PACKAGE.get(cmd[0], cmd[0])})"
        )
    try:
        done = subprocess.run(
            list(cmd), input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise WanError(f"{' '.join(cmd)} did not finish within {timeout:g} s") from exc
    if check and done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise WanError(f"{' '.join(cmd)} failed: {' / '.join(detail[-3:]) or done.returncode}")
    return done


def netns_cmd(namespace: str, *cmd: str) -> list[str]:
    """``cmd`` run inside ``namespace`` (the prefix sites use for their own processes)."""
    return ["ip", "netns", "exec", namespace, *cmd]


_PACKAGE = {
    "ip": "iproute2",
    "tc": "iproute2",
    "iptables": "iptables",
    "iptables-restore": "iptables",
    "sysctl": "procps",
}
