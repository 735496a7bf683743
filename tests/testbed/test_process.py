"""Processes are started detached, found again by PID, and stopped by PID only."""

from __future__ import annotations

import http.server
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgescope.testbed.layout import TestbedError
from edgescope.testbed.process import (
    http_answers,
    rss_bytes,
    running_pid,
    start_process,
    stop_process,
    wait_http,
)


def test_start_find_and_stop(tmp_path: Path) -> None:
    pidfile, log = tmp_path / "run" / "s.pid", tmp_path / "log" / "s.log"
    pid = start_process([sys.executable, "-c", "import time; print('hi', flush=True); "
                         "time.sleep(60)"], log=log, pidfile=pidfile)  # fmt: skip
    assert running_pid(pidfile) == pid
    assert rss_bytes(pid) > 0
    assert stop_process(pidfile) is True
    assert running_pid(pidfile) is None and not pidfile.exists()
    assert stop_process(pidfile) is False


def test_daemons_inherit_no_descriptor_of_the_caller(tmp_path: Path) -> None:
    """A caller's inherited fd (e.g. ``flock``'s lock) must not be held by the daemon."""
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, True)
    pidfile, log = tmp_path / "s.pid", tmp_path / "s.log"
    try:
        start_process([sys.executable, "-c", "import os, time; print(sorted(os.listdir("
                       "'/proc/self/fd')), flush=True); time.sleep(60)"],
                      log=log, pidfile=pidfile)  # fmt: skip
        deadline = time.monotonic() + 10
        while "[" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        listed = log.read_text().rsplit("\n[", 1)[-1]
        assert f"'{write_end}'" not in listed, listed
    finally:
        stop_process(pidfile)
        os.close(read_end)
        os.close(write_end)


def test_a_reused_pid_is_not_ours(tmp_path: Path) -> None:
    pidfile = tmp_path / "s.pid"
    pid = start_process(["sleep", "30"], log=tmp_path / "s.log", pidfile=pidfile)
    pidfile.write_text(f"{pid} 1\n")  # same PID, different start time
    assert running_pid(pidfile) is None
    pidfile.write_text(f"{pid}\n")
    assert stop_process(pidfile)


def test_term_resistant_process_is_killed(tmp_path: Path) -> None:
    pidfile = tmp_path / "s.pid"
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
    start_process([sys.executable, "-c", code], log=tmp_path / "s.log", pidfile=pidfile)
    assert stop_process(pidfile, timeout=0.5)
    assert running_pid(pidfile) is None


def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TestbedError, match="cannot start /nonexistent/uwsgi"):
        start_process(["/nonexistent/uwsgi"], log=tmp_path / "l", pidfile=tmp_path / "p")


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_http_answers(server: str) -> None:
    assert http_answers(server)
    assert http_answers(server + "missing")  # a 404 is an answer
    assert not http_answers("http://127.0.0.1:9/")


def test_wait_http_fails_fast_when_the_process_died(tmp_path: Path) -> None:
    pidfile = tmp_path / "p"
    start_process([sys.executable, "-c", "pass"], log=tmp_path / "l", pidfile=pidfile)
    with pytest.raises(TestbedError, match="exited during start-up"):
        wait_http("http://127.0.0.1:9/", timeout=30, pidfile=pidfile, what="glance")
