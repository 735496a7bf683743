"""The site's HAProxy, run as Kolla-Ansible runs one (``--catalog haproxy``, the default).

Debian's HAProxy serves every API of the site at the port the catalog names (the service's
port + 10, :data:`~edgescope.testbed.layout.HAPROXY_SHIFT`); a call carrying a scope goes to
the site's proxy, at its listener for that service, every other call straight to the
service. Its configuration is what :func:`edgescope.deploy.haproxy.site_config` makes of the
site's own ``etc/proxy.toml`` (the ``[haproxy]`` table ``configs.haproxy_table`` writes), so
the testbed runs exactly the fast path ``edgescope deploy haproxy`` prints. Under ``--wan``
it runs inside the site's namespace, like every other process of the site. Neighbours:
``site.py`` starts and stops it, ``layout.py`` has its ports.

    >>> write_config(plan)           # etc/haproxy.cfg, from etc/proxy.toml
    >>> launch(plan).argv[-3:]
    ['-db', '-f', '/.../sites/Paris/etc/haproxy.cfg']
    >>> proxy_seen_up(plan)          # HAProxy's health check sees the proxy: True
"""

from __future__ import annotations

import csv
import shutil
import socket
import time
from pathlib import Path

from edgescope.deploy.haproxy import settings_of, site_config
from edgescope.errors import EdgescopeError
from edgescope.proxy.config import load_config
from edgescope.testbed.layout import SitePlan, TestbedError
from edgescope.testbed.services import Launch


def config_path(plan: SitePlan) -> Path:
    return plan.etc / "haproxy.cfg"


def stats_socket(plan: SitePlan) -> Path:
    """HAProxy's admin socket (a file: reachable from outside the site's namespace)."""
    return plan.run / "haproxy.sock"


def render_config(plan: SitePlan) -> str:
    """The site's whole HAProxy configuration, from its proxy config (written first)."""
    try:
        proxy = load_config(plan.etc / "proxy.toml")
        return site_config(
            proxy,
            settings_of(proxy),
            bind_host=plan.bind_host,
            stats_socket=str(stats_socket(plan)),
            access_log=True,
        )
    except EdgescopeError as exc:
        raise TestbedError(f"{plan.name}: cannot make the HAProxy config: {exc}") from exc


def write_config(plan: SitePlan) -> Path:
    path = config_path(plan)
    path.write_text(render_config(plan))
    return path


def executable() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/sbin")
    if found is None:
        raise TestbedError(
            "haproxy is not installed (Debian package; make system-deps as root), or run the "
            "sites without it: --catalog proxy"
        )
    return found


def launch(plan: SitePlan) -> Launch:
    """HAProxy in the foreground (``-db``), its access log on stdout; up once the keystone
    frontend answers."""
    argv = [*plan.exec_prefix, executable(), "-db", "-f", str(config_path(plan))]
    return Launch(argv, {}, plan.direct_url("haproxy") + "/")


def backend_states(plan: SitePlan, timeout: float = 2.0) -> dict[str, str] | None:
    """Each ``edgescope_*`` backend server's state as HAProxy's health check sees it
    (``UP``, ``DOWN``, ...), from ``show stat`` on the admin socket; None if HAProxy does
    not answer."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(stats_socket(plan)))
            sock.sendall(b"show stat\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    except OSError:
        return None
    return parse_stat("".join(c.decode() for c in chunks))


def parse_stat(text: str) -> dict[str, str]:
    """``{"edgescope_image/edgescope": "UP", ...}`` from HAProxy's ``show stat`` CSV."""
    rows = csv.DictReader(text.lstrip("# ").splitlines())
    return {
        f"{row['pxname']}/{row['svname']}": row["status"]
        for row in rows
        if row.get("pxname", "").startswith("edgescope_")
        and row.get("svname") not in ("FRONTEND", "BACKEND")
    }


def proxy_seen_up(plan: SitePlan) -> bool:
    states = backend_states(plan)
    return bool(states) and all(state.startswith("UP") for state in (states or {}).values())


def wait_proxy_seen(plan: SitePlan, timeout: float = 30.0) -> None:
    """Until HAProxy's health check sees the site's proxy up (its scoped calls then reach
    it, instead of the 503 HAProxy answers while no proxy is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proxy_seen_up(plan):
            return
        time.sleep(0.2)
    raise TestbedError(
        f"{plan.name}: HAProxy does not see the proxy up after {timeout:.0f} s: "
        f"{backend_states(plan)} (see {plan.log_path('haproxy')} and {plan.log_path('proxy')})"
    )
