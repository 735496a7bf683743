"""A site's block storage service: cinder 29 (API under uWSGI, scheduler, volume) on Ceph RBD.

Pure: ``cinder.conf`` from a plan and the site's credentials, and the command lines.
cinder-api serves ``/volume/v3`` of the site's proxy (service type ``block-storage``);
cinder-volume keeps its volumes in the site's Ceph pool (``ceph.py``) and reads images
through the catalog with the user's token, so ``{cinder: Paris, glance: Corte}`` makes
Paris's cinder download Corte's image, the way nova's image calls travel. Three settings a
testbed needs that a packaged cinder has (each found by a failure; docs/testbed.md):
privsep's helper started directly (cinder runs as root, and ``sudo cinder-rootwrap`` is not
on sudo's PATH), the API's query filters file from the environment's ``etc/cinder``, and
nova sending a service token (cinder refuses a detach that nova makes without one).

    >>> render_ini(cinder_conf(plan, creds, transport_url))   # etc/cinder/cinder.conf
"""

from __future__ import annotations

import sys
from pathlib import Path

from edgescope.testbed import ceph
from edgescope.testbed.configs import Credentials, Ini, auth_settings, authtoken, common
from edgescope.testbed.layout import SitePlan, TestbedError

SHIPPED = Path(sys.prefix) / "etc" / "cinder"
"""The package's own ``api-paste.ini``, ``resource_filters.json`` and rootwrap files."""
BACKEND = "ceph"
"""cinder's one backend section (``enabled_backends``); its volume type is __DEFAULT__."""


def conf_path(plan: SitePlan) -> Path:
    return plan.etc / "cinder" / "cinder.conf"


def cinder_conf(plan: SitePlan, creds: Credentials, transport_url: str) -> Ini:
    helper = f"{Path(sys.prefix) / 'bin' / 'privsep-helper'} --config-file {conf_path(plan)}"
    conf: Ini = {
        "DEFAULT": {
            "use_stderr": "true",
            "transport_url": transport_url,
            "auth_strategy": "keystone",
            "host": plan.volume_host,
            "my_ip": plan.bind_host,
            "state_path": str(plan.data / "cinder"),
            "api_paste_config": str(plan.etc / "cinder" / "api-paste.ini"),
            "osapi_volume_listen": plan.bind_host,
            "osapi_volume_listen_port": str(plan.port("cinder-api")),
            "enabled_backends": BACKEND,
            "default_volume_type": "__DEFAULT__",
            "image_conversion_dir": str(plan.data / "cinder" / "conversion"),
            # cinder-volume finds glance in the user's catalog: through the site's proxy
            "glance_catalog_info": "image:glance:publicURL",
            "use_rootwrap_daemon": "false",
            "rootwrap_config": str(SHIPPED / "rootwrap.conf"),
            # default /etc/cinder/...: without it, `volume delete NAME` is a 400
            "resource_query_filters_file": str(SHIPPED / "resource_filters.json"),
        },
        "database": {"connection": plan.sqlite_url("cinder")},
        "coordination": {"backend_url": f"file://{plan.run / 'lock'}"},
        "keystone_authtoken": authtoken(plan, "cinder", creds),
        "nova": {"interface": "public", **auth_settings(plan, "cinder", creds.service)},
        "service_user": {"send_service_user_token": "false"},
        "cinder_sys_admin": {"helper_command": helper},
        "privsep_osbrick": {"helper_command": helper},
        BACKEND: {
            "volume_driver": "cinder.volume.drivers.rbd.RBDDriver",
            "volume_backend_name": BACKEND,
            "rbd_pool": ceph.POOL,
            "rbd_ceph_conf": str(ceph.conf_path(plan)),
            "rbd_user": ceph.CLIENT,
            "rbd_secret_uuid": "00000000-0000-0000-0000-000000000000",  # libvirt only
            "rbd_flatten_volume_from_snapshot": "false",
            "report_discard_supported": "true",
        },
        **common(plan),
    }
    if plan.catalog != "direct":
        conf["DEFAULT"]["public_endpoint"] = plan.public_base("cinder-api")
    return conf


def launch_argv(plan: SitePlan, service: str, uwsgi: list[str]) -> list[str]:
    """cinder-api: ``uwsgi`` (the testbed's uWSGI command for it) reading cinder.conf from
    its arguments (cinder's WSGI module parses ``sys.argv``); the daemons: plain."""
    if service == "cinder-api":
        return [*uwsgi, "--pyargv", f"--config-file {conf_path(plan)}"]
    if service in ("cinder-scheduler", "cinder-volume"):
        binary = Path(sys.prefix) / "bin" / service
        return [*plan.exec_prefix, str(binary), "--config-file", str(conf_path(plan))]
    raise TestbedError(f"not a cinder service: {service!r}")


def db_sync(plan: SitePlan) -> list[str]:
    return [*plan.exec_prefix, str(Path(sys.prefix) / "bin" / "cinder-manage"),
            "--config-file", str(conf_path(plan)), "db", "sync"]  # fmt: skip


__all__ = ["BACKEND", "SHIPPED", "cinder_conf", "conf_path", "db_sync", "launch_argv"]
