"""`edgescope proxy run` from a clean install, with real calls through it (.ci/check-install).

    python check_install_proxy.py VENV_BIN KEY_FILE WORK_DIR [--openstack]

Starts Python's own http.server on loopback as the site's one backend (it serves a file made
here), a one-site proxy in front of it, and checks through the proxy: an unscoped call, a call
scoped to the site (X-Scope), the metrics page; a [tracing] or MySQL [replicas] table is refused
with the name of the extra to install. With --openstack, the `openstack` client of
that venv must refuse a bad --os-scope with the plugin's message and carry a good one (the
proxy's access log shows it). Standard library only; exit
status 1 with the reason on any failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import IO

TIMEOUT = 30.0


def fail(message: str) -> None:
    print(f"check-install FAILED: {message}", file=sys.stderr)
    raise SystemExit(1)


def first_line(process: subprocess.Popen[str], what: str, pattern: str) -> re.Match[str]:
    """The first line of the process's stdout matching pattern (it must print it promptly)."""
    stream: IO[str] | None = process.stdout
    assert stream is not None
    seen: list[str] = []
    for line in stream:  # ends when the process exits; each start-up prints its line at once
        seen.append(line.rstrip())
        if found := re.search(pattern, line):
            return found
        if len(seen) > 50:
            break
    process.kill()
    rest = process.stderr.read() if process.stderr else ""
    fail(f"{what} did not start (exit {process.wait()}):\n" + "\n".join(seen) + rest)
    raise AssertionError  # unreachable


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:
        return int(answer.status), bytes(answer.read())


def check_calls(proxy_url: str, name: str, content: bytes) -> None:
    for headers in ({}, {"X-Scope": "{glance: Paris}"}):
        status, body = get(f"{proxy_url}/image/{name}", headers)
        if status != 200 or body != content:
            fail(f"GET /image/{name} {headers} through the proxy: {status} {body[:200]!r}")
        print(f"proxy: GET /image/{name} {headers or '(unscoped)'} -> {status}, the file's bytes")
    status, body = get(f"{proxy_url}/metrics")
    if status != 200 or b"# TYPE" not in body:
        fail(f"GET /metrics: {status} {body[:200]!r}")
    print("proxy: GET /metrics -> 200, Prometheus text")


OPTIONAL = {  # a table whose extra a clean install lacks: a clear error naming the extra
    "tracing": ('[tracing]\notlp_endpoint = "http://127.0.0.1:4318/v1"', "edgescope[tracing]"),
    "mysql": ('[replicas]\ndatabase = "mysql+pymysql://u:p@127.0.0.1:1/x"', "edgescope[mysql]"),
}


def check_optional(bin_dir: Path, config: Path) -> None:
    """A config that needs an extra is refused at start-up with the extra's name."""
    for extra, (table, message) in OPTIONAL.items():
        path = config.with_name(f"proxy-{extra}.toml")
        path.write_text(config.read_text() + "\n" + table)
        done = subprocess.run(
            [str(bin_dir / "edgescope"), "proxy", "run", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = done.stdout + done.stderr
        if done.returncode != 2 or message not in output or "Traceback" in output:
            fail(f"proxy run with a {extra} table (exit {done.returncode}):\n{output}")
        print(f"proxy run with a {extra} table -> exit 2: {output.strip()}")


def openstack(bin_dir: Path, proxy_url: str, scope: str) -> subprocess.CompletedProcess[str]:
    """`openstack image list` with the image endpoint set to the proxy, and no Keystone."""
    return subprocess.run(
        [
            str(bin_dir / "openstack"),
            *("--os-auth-type", "none", "--os-endpoint", f"{proxy_url}/image"),
            *("--os-scope", scope, "--os-scope-sites", "Paris", "image", "list"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OS_CLOUD": ""},
    )


def check_openstack(bin_dir: Path, proxy_url: str) -> None:
    """The plugin refuses a bad scope with its caret message; it puts a good one on the call
    (the proxy's access log shows it; there is no glance behind, so the command then fails)."""
    done = openstack(bin_dir, proxy_url, "{glance: Paris")
    output = done.stdout + done.stderr
    if done.returncode == 0 or "Traceback" in output or "^" not in output:
        fail(f"openstack --os-scope '{{glance: Paris' (exit {done.returncode}):\n{output}")
    print(f"openstack --os-scope '{{glance: Paris' -> exit {done.returncode}: {output.strip()}")
    done = openstack(bin_dir, proxy_url, "{glance: Paris}")
    if "Traceback" in done.stdout + done.stderr:
        fail(f"openstack --os-scope '{{glance: Paris}}':\n{done.stdout}{done.stderr}")


def access_log(proxy: subprocess.Popen[str]) -> list[dict[str, object]]:
    """The proxy's access-log lines (stdout after the started line), once it has stopped."""
    assert proxy.stdout is not None
    return [json.loads(line) for line in proxy.stdout.read().splitlines() if line.startswith("{")]


def main() -> None:
    bin_dir, key, work = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    www = work / "www"
    www.mkdir(parents=True)
    name, content = "install-check.txt", secrets.token_hex(16).encode()
    (www / name).write_bytes(content)
    python = str(bin_dir / "python")
    backend = subprocess.Popen(
        [python, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory", str(www)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    proxy: subprocess.Popen[str] | None = None
    try:
        port = first_line(backend, "http.server", r"port (\d+)").group(1)
        config = work / "proxy.toml"
        config.write_text(
            f'site = "Paris"\nlisten = "127.0.0.1:0"\nprivate_key_file = "{key}"\n\n'
            f'[[services]]\ntype = "image"\nprefix = "/image"\n'
            f'backend = "http://127.0.0.1:{port}"\n'
        )
        proxy = subprocess.Popen(
            [
                str(bin_dir / "edgescope"),
                "proxy",
                "run",
                "--config",
                str(config),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = first_line(proxy, "edgescope proxy run", r'^\{"event": "started"').string
        started = json.loads(line)
        main_listener = re.search(r"main=([\d.]+:\d+)", started["listen"])
        if main_listener is None:
            fail(f"edgescope proxy run: no main listener in {started}")
            return
        proxy_url = f"http://{main_listener.group(1)}"
        print(f"proxy: started {started}")
        if "--openstack" in sys.argv:
            check_openstack(bin_dir, proxy_url)
        else:
            check_calls(proxy_url, name, content)
            check_optional(bin_dir, config)
        proxy.send_signal(signal.SIGTERM)
        if (status := proxy.wait(timeout=TIMEOUT)) != 0:
            fail(f"edgescope proxy run exited {status} on SIGTERM: {proxy.stderr.read()}")  # type: ignore[union-attr]
        print("proxy: stopped cleanly on SIGTERM")
        carriers = sorted({str(e["carrier"]) for e in access_log(proxy) if "carrier" in e})
        wanted = ["x-scope"] if "--openstack" in sys.argv else ["none", "x-scope"]
        if carriers != wanted:
            fail(f"the proxy's access log: scope carriers {carriers}, expected {wanted}")
        print(f"proxy: its access log shows the calls, scope carriers {carriers}")
    finally:
        for process in (proxy, backend):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


if __name__ == "__main__":
    main()
