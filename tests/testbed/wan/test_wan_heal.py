"""A read caught in a cut goes through after the heal without its connection's retransmission.

Two real proxies (Paris, Corte) on the emulated WAN, a plain HTTP server behind Corte's. A
``{image: Corte}`` read is sent while Paris–Corte is cut, on the pooled connection of an
earlier read. Before the heal, every connection Paris has to Corte then is blackholed for
good (an ``iptables`` rule on its port, in Paris's namespace): the kernel's retransmissions
on it can never deliver, so the read can only succeed if the proxy sends it again on a
fresh connection once it sees the heal (``BreakerWatch.resend_on_heal``, watch probes in
``probes.py``). Without that, it succeeds only once the kernel gives up on the blackholed
connection (``tcp_retries2``: ``TcpExtTCPAbortOnTimeout``) and aiohttp retries the read on a
new one, tens of seconds later. No timing is asserted: the read succeeds, the proxy counted a
resend, and no connection of Paris's had been given up by the kernel when it answered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from wan_support import in_site, unique_prefix

import sitekeys
from edgescope.testbed.wan import Wan, load_topology

pytestmark = pytest.mark.wan
PROXY_PORT, BACKEND_PORT = 7200, 7100
READ_TIMEOUT = 60.0
"""The peer's read timeout: far above how long the heal takes to be seen, even loaded."""
EDGESCOPE = Path(sys.executable).with_name("edgescope")


def _config(wan: Wan, site: str, other: str) -> str:
    return f"""site = "{site}"
listen = "0.0.0.0:{PROXY_PORT}"
private_key = "{sitekeys.private(site)}"
[[services]]
type = "image"
prefix = "/image"
backend = "http://127.0.0.1:{BACKEND_PORT}"
[[peers]]
name = "{other}"
url = "http://{wan.site_address(other)}:{PROXY_PORT}"
public_key = "{sitekeys.public(other)}"
connect_timeout = 2.0
read_timeout = {READ_TIMEOUT}
"""


def _wait(what: str, ready: object, within: float = 120.0) -> None:
    deadline = time.monotonic() + within
    while not ready():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within:g} s: {what}")
        time.sleep(0.2)


@pytest.fixture
def sites(netns_ok: None, tmp_path: Path) -> Iterator[Wan]:
    """Paris and Corte on a fresh WAN, each with a proxy and a static HTTP server."""
    wan = Wan.up(load_topology(sites=["Paris", "Corte"]), tmp_path / "wan", prefix=unique_prefix())
    procs: list[subprocess.Popen[bytes]] = []
    root = tmp_path / "www"
    (root / "v2").mkdir(parents=True)
    (root / "v2" / "images").write_text('{"images": []}')
    try:
        for site, other in (("Paris", "Corte"), ("Corte", "Paris")):
            (tmp_path / f"{site}.toml").write_text(_config(wan, site, other))
            server = [sys.executable, "-m", "http.server", "-b", "127.0.0.1", "-d", str(root)]
            proxy = [str(EDGESCOPE), "proxy", "run", "--config", str(tmp_path / f"{site}.toml")]
            for argv, log in ((server, "www"), (proxy, "proxy")):
                with (tmp_path / f"{site}-{log}.log").open("wb") as out:
                    procs.append(
                        subprocess.Popen(
                            [*wan.exec_prefix(site), *argv]
                            + ([str(BACKEND_PORT)] if log == "www" else []),
                            stdout=out,
                            stderr=subprocess.STDOUT,
                            env=os.environ,
                        )
                    )
        for site in ("Paris", "Corte"):
            _wait(
                f"{site}'s proxy and server listen",
                lambda site=site: all(
                    f":{port} " in in_site(wan, site, "ss", "-ltn").stdout
                    for port in (PROXY_PORT, BACKEND_PORT)
                ),
            )
        yield wan
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        wan.down()


def _read(wan: Wan) -> subprocess.Popen[str]:
    """A ``{image: Corte}`` read typed at Paris (curl: prints the HTTP status)."""
    curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", str(2 * READ_TIMEOUT)]
    url = f"http://127.0.0.1:{PROXY_PORT}/image/v2/images"
    return subprocess.Popen(
        [*wan.exec_prefix("Paris"), *curl, "-H", "X-Scope: {image: Corte}", url],
        stdout=subprocess.PIPE,
        text=True,
    )


def _metric(wan: Wan, name: str) -> float:
    """Sum of a counter's samples on Paris's proxy (0 when it has none yet)."""
    text = in_site(wan, "Paris", "curl", "-s", f"http://127.0.0.1:{PROXY_PORT}/metrics").stdout
    return sum(float(v) for v in re.findall(rf"^{name}(?:{{[^}}]*}})? (\S+)$", text, re.M))


def _kernel_gave_up(wan: Wan) -> int:
    """Connections Paris's kernel gave up on after retransmitting in vain (its netns MIB)."""
    out = in_site(wan, "Paris", "nstat", "-az", "TcpExtTCPAbortOnTimeout").stdout
    found = re.search(r"^TcpExtTCPAbortOnTimeout\s+(\d+)", out, re.M)
    return int(found.group(1)) if found else 0


def _ports_to(wan: Wan, site: str) -> set[str]:
    """Local ports of Paris's TCP connections to ``site``'s proxy, in any state."""
    dst = f"{wan.site_address(site)}:{PROXY_PORT}"
    lines = in_site(wan, "Paris", "ss", "-tnH", "dst", dst).stdout.splitlines()
    return {line.split()[3].rsplit(":", 1)[1] for line in lines if len(line.split()) >= 5}


def test_a_read_caught_in_a_cut_is_sent_again_fresh_on_the_heal(sites: Wan) -> None:
    wan = sites
    warm = _read(wan)  # leaves a pooled connection Paris -> Corte
    assert warm.communicate(timeout=3 * READ_TIMEOUT)[0] == "200"
    wan.partition("Paris", "Corte")
    caught = _read(wan)
    # Paris sees Corte fail (a probe round), so it watches it with fresh connections.
    _wait("Paris watches Corte", lambda: _metric(wan, "edgescope_watch_probes_total") >= 1)
    assert caught.poll() is None, "the read ended while the link was cut"
    stuck = _ports_to(wan, "Corte")
    assert stuck, "the caught read has no connection to Corte"
    for port in stuck:  # whatever these connections retransmit is lost, after the heal too
        for chain, match in (("OUTPUT", "--sport"), ("INPUT", "--dport")):
            rule = ["iptables", "-w", "-I", chain, "-p", "tcp", match, port, "-j", "DROP"]
            assert in_site(wan, "Paris", *rule).returncode == 0
    wan.heal("Paris", "Corte")
    status = caught.communicate(timeout=3 * READ_TIMEOUT)[0]
    assert status == "200", f"the caught read answered {status}"
    assert _kernel_gave_up(wan) == 0, "it waited for the kernel to give up on the connection"
    assert _metric(wan, "edgescope_resent_on_heal_total") >= 1
