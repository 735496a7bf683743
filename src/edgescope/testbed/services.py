"""How each service of a site is launched: its command line and environment. Pure.

WSGI services run under uWSGI as OpenStack deploys them, with ``Connection: close`` (without
it, keep-alive resets silently lose calls) and one worker with four threads. nova-conductor,
nova-scheduler and nova-compute are plain oslo.service daemons. Every command is prefixed by
the plan's ``exec_prefix`` (e.g. ``ip netns exec es-paris``) and binds the plan's host.
Neighbours: ``layout.py`` (ports), ``site.py`` (starts what this returns).

    >>> launch = service_launch(plan, "glance")
    >>> launch.argv[:2], launch.health_url
    (['/work/main/.venv/bin/uwsgi', '--http-socket'], 'http://127.0.0.1:20101/')
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from edgescope.testbed import ceph, cinder, ovn
from edgescope.testbed.layout import CEPH_DAEMONS, DAEMONS, OVN_DAEMONS, SitePlan, TestbedError

VENV_BIN = Path(sys.executable).parent
"""The environment's bin folder: OpenStack is installed next to edgescope."""

_WSGI: dict[str, tuple[str, dict[str, str]]] = {
    # service: (WSGI module, environment pointing it at its config, relative to etc/)
    "keystone": ("keystone.wsgi.api", {"OS_KEYSTONE_CONFIG_DIR": "keystone"}),
    "glance": ("glance.wsgi.api", {"OS_GLANCE_CONFIG_DIR": "glance"}),
    "placement": ("placement.wsgi.api", {"OS_PLACEMENT_CONFIG_DIR": "placement"}),
    "neutron": ("neutron.wsgi.api", {"OS_NEUTRON_CONFIG_DIR": "neutron"}),
    "nova-api": ("nova.wsgi.osapi_compute", {"OS_NOVA_CONFIG_DIR": "nova"}),
}


@dataclass(frozen=True)
class Launch:
    """A ready-to-start process: command, extra environment, and how to tell it is up."""

    argv: list[str]
    env: dict[str, str]
    health_url: str | None
    """Polled until it answers; None for daemons without a listener."""


def uwsgi_argv(plan: SitePlan, service: str, module: str) -> list[str]:
    """uWSGI serving ``module`` on the service's port, as a foreground master process."""
    return [
        *plan.exec_prefix,
        str(VENV_BIN / "uwsgi"),
        "--http-socket",
        f"{plan.bind_host}:{plan.port(service)}",
        "--module",
        module,
        "--virtualenv",
        sys.prefix,
        "--master",
        "--processes",
        "1",
        "--threads",
        "4",
        "--enable-threads",
        "--lazy-apps",
        "--need-app",
        "--die-on-term",
        "--hook-master-start",
        "unix_signal:15 gracefully_kill_them_all",
        "--add-header",
        "Connection: close",
        "--buffer-size",
        "65535",
        "--procname-prefix",
        f"{plan.name}-",
    ]


def service_launch(plan: SitePlan, service: str) -> Launch:
    """The launch recipe of one service of the site."""
    if service in OVN_DAEMONS:
        return Launch(ovn.launch_argv(plan, service), ovn.environment(plan), None)
    if service in CEPH_DAEMONS:
        return Launch(ceph.launch_argv(plan, service), {}, None)
    if service == "cinder-api":
        uwsgi = uwsgi_argv(plan, service, "cinder.wsgi.api")
        return Launch(cinder.launch_argv(plan, service, uwsgi), {}, plan.direct_url(service) + "/")
    if service.startswith("cinder-"):
        return Launch(cinder.launch_argv(plan, service, []), {}, None)
    if service in _WSGI:
        module, env_dirs = _WSGI[service]
        env = {key: str(plan.etc / sub) for key, sub in env_dirs.items()}
        if service == "nova-api":
            # The paste file must come first, or nova looks for [osapi_compute] in nova.conf.
            env["OS_NOVA_CONFIG_FILES"] = "api-paste.ini;nova.conf;nova-db.conf"
        return Launch(uwsgi_argv(plan, service, module), env, plan.direct_url(service) + "/")
    if service in DAEMONS:
        argv = [
            *plan.exec_prefix,
            str(VENV_BIN / service),
            "--config-file",
            str(plan.etc / "nova" / "nova.conf"),
        ]
        if service != "nova-compute":  # nova-compute refuses to run with DB settings
            argv += ["--config-file", str(plan.etc / "nova" / "nova-db.conf")]
        return Launch(argv, {}, None)
    if service == "proxy":
        argv = [
            *plan.exec_prefix,
            str(VENV_BIN / "edgescope"),
            "proxy",
            "run",
            "--config",
            str(plan.etc / "proxy.toml"),
        ]
        return Launch(argv, {}, plan.proxy_url + "/edgescope/health")
    raise TestbedError(f"unknown service {service!r}")


def manage(plan: SitePlan, tool: str, *args: str) -> list[str]:
    """A ``*-manage`` command of the site (db syncs, bootstrap, cell mapping)."""
    configs = {
        "keystone-manage": ["--config-file", str(plan.etc / "keystone" / "keystone.conf")],
        "glance-manage": ["--config-file", str(plan.etc / "glance" / "glance-api.conf")],
        "placement-manage": ["--config-file", str(plan.etc / "placement" / "placement.conf")],
        "nova-manage": [
            "--config-file",
            str(plan.etc / "nova" / "nova.conf"),
            "--config-file",
            str(plan.etc / "nova" / "nova-db.conf"),
        ],
        "neutron-db-manage": [
            "--config-file",
            str(plan.etc / "neutron" / "neutron.conf"),
            "--config-file",
            str(plan.etc / "neutron" / "plugins" / "ml2" / "ml2_conf.ini"),
        ],
    }
    return [*plan.exec_prefix, str(VENV_BIN / tool), *configs[tool], *args]


def python_module(plan: SitePlan, module: str, *args: str) -> list[str]:
    """Run one of edgescope's helper modules with the environment's Python."""
    return [*plan.exec_prefix, sys.executable, "-m", module, *args]
