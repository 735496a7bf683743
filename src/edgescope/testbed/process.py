"""Start, find and stop the testbed's processes by PID, and wait for them to answer.

Each process runs detached (its own session) with stdout and stderr appended to its log,
so it outlives the ``edgescope`` command that started it. Its PID and start time go into a
pidfile; a PID counts as ours only while ``/proc/<pid>/stat`` shows the same start time and
the process is not a zombie (this sandbox's PID 1 does not reap). Neighbours: ``site.py``
and ``rabbit.py`` use it; nothing here knows about OpenStack.

    >>> pid = start_process(["sleep", "60"], log=Path("/tmp/s.log"), pidfile=Path("/tmp/s.pid"))
    >>> running_pid(Path("/tmp/s.pid")) == pid
    True
    >>> stop_process(Path("/tmp/s.pid"))
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from edgescope.testbed.layout import TestbedError


def _proc_start_time(pid: int) -> str | None:
    """Start time (clock ticks since boot) of a live, non-zombie process, else None."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that exited
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def start_process(
    argv: Sequence[str],
    *,
    log: Path,
    pidfile: Path,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start ``argv`` detached, append its output to ``log``, record it in ``pidfile``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **(env or {})}
    _keep_inherited_fds_to_ourselves()
    with log.open("ab") as out:
        out.write(f"\n==== {time.strftime('%F %T')} start: {' '.join(argv)}\n".encode())
        out.flush()
        # posix_spawn rather than Popen: the process is meant to outlive this one, and a Popen
        # object that is never waited for warns when collected.
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 1),
            (os.POSIX_SPAWN_DUP2, out.fileno(), 2),
        ]
        try:
            pid = os.posix_spawnp(argv[0], list(argv), full_env, file_actions=actions, setsid=True)
        except OSError as exc:
            raise TestbedError(f"cannot start {argv[0]}: {exc.strerror or exc}") from exc
    pidfile.write_text(f"{pid} {_proc_start_time(pid) or ''}\n")
    return pid


def _keep_inherited_fds_to_ourselves() -> None:
    """Mark close-on-exec every descriptor this process inherited (beyond 0-2).

    Python opens its own files close-on-exec; inherited ones (a caller's ``flock`` lock, a
    CI runner's pipes) are not, and a daemon that keeps them holds the caller's lock or
    keeps its pipe open long after the caller is gone.
    """
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd > 2:
            with contextlib.suppress(OSError):  # e.g. listdir's own, closed by now
                if os.get_inheritable(fd):
                    os.set_inheritable(fd, False)


def running_pid(pidfile: Path) -> int | None:
    """The PID recorded in ``pidfile`` if that very process is still running."""
    try:
        pid_text, _, started = pidfile.read_text().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    now = _proc_start_time(pid)
    if now is None or (started and now != started):
        return None
    return pid


def _children(pid: int) -> list[int]:
    """Direct children of ``pid`` (from every thread, unlike /proc/<pid>/task/*/children)."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        if int(text[text.rfind(")") + 2 :].split()[1]) == pid:
            kids.append(int(stat.parent.name))
    return kids


def _wait_gone(pids: Sequence[int], starts: Mapping[int, str | None], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_proc_start_time(p) != starts[p] or starts[p] is None for p in pids):
            return True
        time.sleep(0.1)
    return False


def stop_process(pidfile: Path, *, timeout: float = 15.0) -> bool:
    """SIGTERM the recorded process (SIGKILL it and its children after ``timeout``).

    Returns True if a running process was stopped. The pidfile is removed either way.
    """
    pid = running_pid(pidfile)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    family = [pid, *_children(pid)]
    starts = {p: _proc_start_time(p) for p in family}
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(family, starts, timeout):
        for p in family:
            if _proc_start_time(p) == starts[p] and starts[p] is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p, signal.SIGKILL)
        _wait_gone(family, starts, 5.0)
    pidfile.unlink(missing_ok=True)
    return True


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants, in bytes (0 if gone)."""
    total = 0
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            for line in Path(f"/proc/{current}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
        todo.extend(_children(current))
    return total


def http_answers(url: str, timeout: float = 2.0, exec_prefix: Sequence[str] = ()) -> bool:
    """True if something at ``url`` answers HTTP (any status below 500).

    With ``exec_prefix`` (a netns), the check runs ``curl`` inside that namespace.
    """
    if exec_prefix:
        argv = [
            *exec_prefix,
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            str(timeout),
            "-w",
            "%{http_code}",
            url,
        ]
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        code = done.stdout.strip()
        return code.isdigit() and 0 < int(code) < 500
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status) < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500
    except (OSError, ValueError):
        return False


def wait_http(
    url: str,
    *,
    timeout: float,
    pidfile: Path | None = None,
    what: str = "",
    exec_prefix: Sequence[str] = (),
) -> None:
    """Wait until ``url`` answers; fail early if the process behind ``pidfile`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_answers(url, exec_prefix=exec_prefix):
            return
        if pidfile is not None and running_pid(pidfile) is None:
            raise TestbedError(f"{what or url} exited during start-up (see its log)")
        time.sleep(0.25)
    raise TestbedError(f"{what or url} did not answer within {timeout:.0f} s")


def port_in_use(host: str, port: int) -> bool:
    """True if something already accepts TCP connections on ``host:port``."""
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0
