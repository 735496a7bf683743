"""Register a site's services and users, and create its content, through the real APIs.

Runs as ``python -m edgescope.testbed._provision STEP`` with a JSON request on stdin, in the
site's network context (its netns under ``--wan``), using openstacksdk, the OpenStack SDK
that OSC itself is built on. Every step is find-or-create, so running it twice is harmless.
Steps:

- ``register``: project ``service``; users glance, placement, nova, neutron, cinder and edgescope
  (roles admin and service on it); services and endpoints (public, internal, admin);
  project ``demo`` with user ``demo`` (role member).
- ``swift``: user swift and the ``object-store`` endpoints of a site's Swift (its Keystone
  mode, ``swift_keystone.py``).
- ``content``: flavor ``m1.tiny``, the public image ``debian``, and room for 100 instances in
  project ``demo`` (servers left in ERROR still count against the default quota of 10).
- ``adopt``: once every site is up, ``m1.tiny`` and ``debian`` of every site are adopted as
  one replica set each (``/edgescope/replicas/adopt`` of this site's proxy), so a scope
  such as ``{nova: Paris & Corte}`` resolves them by name. A 503 (a peer just started, still
  slow to accept under the load of the sites' own start) is retried for up to
  ``ADOPT_PATIENCE`` seconds; adopting again what is adopted answers 200.

``site.py`` builds the request and runs this module.

    $ echo "$REQUEST_JSON" | python -m edgescope.testbed._provision register
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import openstack

SERVICE_USERS = ("glance", "placement", "nova", "neutron", "cinder", "edgescope")
INTERFACES = ("public", "internal", "admin")
DEMO_INSTANCES = 100
# service type -> service name registered in the catalog
SERVICE_NAMES = {
    "image": "glance",
    "placement": "placement",
    "compute": "nova",
    "network": "neutron",
    "block-storage": "cinder",
    "object-store": "swift",
}


def _connect(req: dict[str, Any]) -> Any:
    return openstack.connect(
        auth_url=req["auth_url"],
        username="admin",
        password=req["admin_password"],
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=req["region"],
        identity_api_version="3",
        interface="public",
    )


def _project(conn: Any, name: str) -> Any:
    found = conn.identity.find_project(name, domain_id="default")
    return found or conn.identity.create_project(name=name, domain_id="default")


def _user(conn: Any, name: str, password: str) -> Any:
    found = conn.identity.find_user(name, domain_id="default")
    if found is not None:
        return conn.identity.update_user(found, password=password)
    return conn.identity.create_user(name=name, password=password, domain_id="default")


def _grant(conn: Any, project: Any, user: Any, role_name: str) -> None:
    role = conn.identity.find_role(role_name) or conn.identity.create_role(name=role_name)
    conn.identity.assign_project_role_to_user(project, user, role)


def _service_endpoints(conn: Any, region: str, service_type: str, url: str) -> None:
    name = SERVICE_NAMES[service_type]
    service = conn.identity.find_service(name)
    if service is None:
        service = conn.identity.create_service(name=name, type=service_type, enabled=True)
    existing = {
        ep.interface: ep for ep in conn.identity.endpoints(service_id=service.id, region_id=region)
    }
    for interface in INTERFACES:
        if interface not in existing:
            conn.identity.create_endpoint(
                service_id=service.id, interface=interface, url=url, region_id=region
            )
        elif existing[interface].url != url:
            conn.identity.update_endpoint(existing[interface], url=url)


def register(req: dict[str, Any]) -> None:
    conn = _connect(req)
    service_project = _project(conn, "service")
    for name in SERVICE_USERS:
        user = _user(conn, name, req["service_password"])
        for role in ("admin", "service"):
            _grant(conn, service_project, user, role)
    for service_type, url in req["endpoints"].items():
        if service_type != "identity":  # keystone-manage bootstrap registered identity
            _service_endpoints(conn, req["region"], service_type, url)
    demo_project = _project(conn, "demo")
    _grant(conn, demo_project, _user(conn, "demo", req["demo_password"]), "member")


def swift(req: dict[str, Any]) -> None:
    """Swift under Keystone (``testbed/swift_keystone.py``): user ``swift`` (admin and service
    on project ``service``, for its proxy-server's authtoken) and ``object-store``'s endpoints."""
    conn = _connect(req)
    service_project = _project(conn, "service")
    user = _user(conn, "swift", req["service_password"])
    for role in ("admin", "service"):
        _grant(conn, service_project, user, role)
    _service_endpoints(conn, req["region"], "object-store", req["object_store_url"])


def content(req: dict[str, Any]) -> None:
    conn = _connect(req)
    if conn.compute.find_flavor("m1.tiny") is None:
        conn.compute.create_flavor(name="m1.tiny", vcpus=1, ram=512, disk=1, is_public=True)
    if conn.image.find_image("debian") is None:
        conn.image.create_image(
            "debian",
            filename=req["image_file"],
            disk_format="raw",
            container_format="bare",
            visibility="public",
            wait=True,
        )
    conn.set_compute_quotas("demo", instances=DEMO_INSTANCES, cores=DEMO_INSTANCES,
                            ram=DEMO_INSTANCES * 512)  # fmt: skip
    image = conn.image.find_image("debian", ignore_missing=False)
    if image.visibility != "public" or image.status != "active":
        raise SystemExit(f"image debian is {image.visibility}/{image.status}, not public/active")


SHARED = (("compute", "/v2.1/flavors", "m1.tiny"), ("image", "/v2/images", "debian"))
"""What every site has under the same name, adopted as one replica set across the sites."""


ADOPT_PATIENCE = 120.0
"""Seconds an adoption answered 503 is tried again for (a CI run once saw a peer that had just
come up time out a connect, at the load of three sites starting at once)."""


def adopt(req: dict[str, Any]) -> None:
    """Adopt each site's ``m1.tiny`` and ``debian`` as one resource (through this site's proxy)."""
    token = _connect(req).session.get_token()
    for service, collection, name in SHARED:
        body = {"service": service, "collection": collection, "name": name, "sites": req["sites"]}
        deadline, pause = time.monotonic() + ADOPT_PATIENCE, 1.0
        while True:
            request = urllib.request.Request(
                req["proxy_url"] + "/edgescope/replicas/adopt",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json", "X-Auth-Token": token},
                method="POST",
            )
            try:
                with urllib.request.urlopen(request, timeout=60) as answer:
                    answer.read()
                break
            except urllib.error.HTTPError as exc:
                text = f"adopting {name}: {exc.code} {exc.read()[:300]!r}"
                if exc.code != 503 or time.monotonic() + pause > deadline:
                    raise SystemExit(text) from None
                print(f"{text}; again in {pause:.0f} s", file=sys.stderr, flush=True)
                time.sleep(pause)
                pause = min(pause * 2, 16.0)


def main(argv: list[str]) -> int:
    steps = {"register": register, "swift": swift, "content": content, "adopt": adopt}
    if len(argv) != 1 or argv[0] not in steps:
        print(f"usage: python -m edgescope.testbed._provision {'|'.join(steps)}", file=sys.stderr)
        return 2
    steps[argv[0]](json.load(sys.stdin))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
