"""Swift under Keystone: each Swift site's own Keystone, ``object-store`` in its catalog, and
its proxy-server's ``authtoken`` + ``keystoneauth`` filters (``SwiftTestbed.create(...,
keystone=True)``; off by default).

Per site: a Keystone run as the OpenStack testbed runs it (the environment's keystone under
uWSGI, SQLite, fernet tokens: :func:`configs.keystone_conf`, :func:`services.service_launch`
with a one-service :class:`SitePlan` whose Keystone port is the Swift site's), on the site's
own loopback (its namespace's on the WAN), bootstrapped with region = the site's name.
``_provision swift`` then registers ``object-store`` at the site proxy's ``object-store``
listener (``/v1/KEY_%(project_id)s``) and a service user ``swift``.

Swift's proxy-server (Debian's, unmodified) checks tokens with keystonemiddleware's
``authtoken`` (Debian's python3-keystonemiddleware, against its site's Keystone only: no
site validates another's tokens) and authorizes with Swift's ``keystoneauth`` for accounts
``KEY_*``. ``tempauth`` stays after them for the ``AUTH_test`` account: Swift's documented
way to run two auth systems, distinct reseller prefixes. So the tempauth tests and ``edgescope
demo --app swift`` run unchanged, and ``openstack object ...`` works through the catalog.

    site.keystone_url                  # http://127.0.0.1:16010/v3 (the site's namespace)
    keystone_account(site)             # KEY_<id of project admin>, after ``up``
"""

from __future__ import annotations

import getpass
import grp
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from edgescope.testbed.configs import Credentials, keystone_conf, render_ini
from edgescope.testbed.layout import SitePlan, TestbedError
from edgescope.testbed.services import Launch, manage, service_launch


class SwiftSite(Protocol):
    """What this module reads of a :class:`edgescope.testbed.swift.SwiftSite` (no import
    back: swift.py imports this module)."""

    @property
    def name(self) -> str: ...
    @property
    def root(self) -> Path: ...
    @property
    def exec_prefix(self) -> tuple[str, ...]: ...
    @property
    def keystone_url(self) -> str: ...
    def port(self, what: str) -> int: ...
    def url(self, what: str) -> str: ...


RESELLER = "KEY_"
"""keystoneauth's account prefix (tempauth keeps ``AUTH_``)."""
ADMIN_PROJECT = "admin"


def plan(site: SwiftSite) -> SitePlan:
    """A one-service plan: only its Keystone port, folders and namespace are used."""
    return SitePlan(
        site.name,
        1,
        site.root / "keystone",
        "127.0.0.1",
        site.port("keystone") - 100,
        site.exec_prefix,
        "direct",
    )


def credentials(site: SwiftSite) -> Credentials:
    return Credentials.load_or_create(plan(site).root / "credentials.json")


def write(site: SwiftSite) -> None:
    """keystone.conf and its folders (kept across restarts)."""
    p = plan(site)
    for sub in ("etc/keystone", "log", "run/lock", "run/stages"):
        (p.root / sub).mkdir(parents=True, exist_ok=True)
    for keys in ("fernet-keys", "credential-keys"):
        (p.data / keys).mkdir(mode=0o700, parents=True, exist_ok=True)
    (p.etc / "keystone" / "keystone.conf").write_text(render_ini(keystone_conf(p)))
    credentials(site)


def proxy_filters(site: SwiftSite) -> list[str]:
    """The proxy-server's ``authtoken`` and ``keystoneauth`` sections."""
    url = site.keystone_url
    return [
        "",
        "[filter:authtoken]",
        "paste.filter_factory = keystonemiddleware.auth_token:filter_factory",
        f"www_authenticate_uri = {url}",
        f"auth_url = {url}",
        "auth_type = password",
        "project_domain_name = Default",
        "user_domain_name = Default",
        "project_name = service",
        "username = swift",
        f"password = {credentials(site).service}",
        f"region_name = {site.name}",
        # a token it cannot validate (tempauth's) is left to the next filters
        "delay_auth_decision = true",
        "",
        "[filter:keystoneauth]",
        "use = egg:swift#keystoneauth",
        f"reseller_prefix = {RESELLER.rstrip('_')}",
        "operator_roles = admin, member",
    ]


def prepare_all(sites: Sequence[SwiftSite]) -> None:
    """:func:`prepare` every site, in parallel; ``db_sync`` (a minute or more of migrations
    on a loaded machine) runs once, and the other sites start from a copy of its empty
    schema: no row of it names a site (bootstrap, per site, makes the ids)."""
    if not sites:
        return
    first = plan(sites[0])
    _stage(sites[0], "db", [manage(first, "keystone-manage", "db_sync")])
    for site in sites[1:]:
        target = plan(site).data / "keystone.db"
        if not (plan(site).run / "stages" / "db").exists():
            shutil.copyfile(first.data / "keystone.db", target)
            (plan(site).run / "stages" / "db").touch()
    with ThreadPoolExecutor(max_workers=len(sites)) as pool:
        list(pool.map(prepare, sites))


def prepare(site: SwiftSite) -> None:
    """Database, keys and bootstrap, each once (a marker per step): before Keystone starts."""
    p = plan(site)
    owner = ["--keystone-user", getpass.getuser(), "--keystone-group", grp.getgrgid(os.getgid())[0]]
    steps = {
        "db": [manage(p, "keystone-manage", "db_sync")],
        "keys": [
            manage(p, "keystone-manage", "fernet_setup", *owner),
            manage(p, "keystone-manage", "credential_setup", *owner),
        ],
        "bootstrap": [manage(p, "keystone-manage", "bootstrap", *_bootstrap_options(site))],
    }
    for name, commands in steps.items():
        _stage(site, name, commands)


def _stage(site: SwiftSite, name: str, commands: list[list[str]]) -> None:
    marker = plan(site).run / "stages" / name
    if not marker.exists():
        for argv in commands:
            _run(site, argv, f"keystone {name}")
        marker.touch()


def _bootstrap_options(site: SwiftSite) -> list[str]:
    url = site.keystone_url
    options = [
        "--bootstrap-password", credentials(site).admin,
        "--bootstrap-username", "admin",
        "--bootstrap-project-name", ADMIN_PROJECT,
        "--bootstrap-role-name", "admin",
        "--bootstrap-service-name", "keystone",
        "--bootstrap-region-id", site.name,
        "--bootstrap-public-url", url,
        "--bootstrap-internal-url", url,
    ]  # fmt: skip
    return options


def launch(site: SwiftSite) -> Launch:
    return service_launch(plan(site), "keystone")


def register(site: SwiftSite) -> None:
    """``object-store`` in the site's catalog and the ``swift`` user (find-or-create); keeps
    the admin project's account name for :func:`keystone_account`."""
    p, creds = plan(site), credentials(site)
    request = {
        "auth_url": site.keystone_url,
        "admin_password": creds.admin,
        "service_password": creds.service,
        "region": site.name,
        "object_store_url": f"{site.url('object-store')}/v1/{RESELLER}%(project_id)s",
    }
    argv = [*site.exec_prefix, sys.executable, "-m", "edgescope.testbed._provision", "swift"]
    _run(site, argv, "registering object-store", stdin=json.dumps(request))
    (p.root / "account").write_text(_admin_account(site))


def keystone_account(site: SwiftSite) -> str:
    """The Swift account of the site's project ``admin`` (``KEY_<project id>``)."""
    try:
        return (plan(site).root / "account").read_text().strip()
    except OSError as exc:
        raise TestbedError(f"{site.name}'s Keystone is not registered yet ({exc})") from exc


def clouds(sites: list[SwiftSite]) -> dict[str, object]:
    """clouds.yaml's content: one admin entry per site (its region: the site's name)."""
    return {
        "clouds": {
            site.name: {
                "region_name": site.name,
                "identity_api_version": 3,
                "interface": "public",
                "auth": {
                    "auth_url": site.keystone_url,
                    "username": "admin",
                    "password": credentials(site).admin,
                    "project_name": ADMIN_PROJECT,
                    "user_domain_name": "Default",
                    "project_domain_name": "Default",
                },
            }
            for site in sites
        }
    }


def _admin_account(site: SwiftSite) -> str:
    probe = (
        "import json, sys, openstack; r = json.load(sys.stdin); "
        "c = openstack.connect(auth_url=r['u'], username='admin', password=r['p'], "
        "project_name='admin', user_domain_name='Default', project_domain_name='Default', "
        "region_name=r['s'], identity_api_version='3'); print(c.current_project_id)"
    )
    request = {"u": site.keystone_url, "p": credentials(site).admin, "s": site.name}
    argv = [*site.exec_prefix, sys.executable, "-c", probe]
    out = _run(site, argv, "reading the admin project", stdin=json.dumps(request))
    return RESELLER + out.strip().splitlines()[-1]


def _run(site: SwiftSite, argv: list[str], what: str, *, stdin: str | None = None) -> str:
    log = plan(site).root / "log" / "init.log"
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, timeout=600, check=False
    )
    with log.open("a") as out:
        out.write(f"\n==== {what}: rc={done.returncode}\n{done.stdout}{done.stderr}")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-8:])
        raise TestbedError(f"{site.name}: {what} failed (see {log}):\n{tail}")
    return done.stdout
