"""Traffic for the fault tests: a bounded loop of real OpenStack calls, typed at one site.

Run inside a site's namespace (``ip netns exec es-paris python faults_driver.py PLAN``);
``test_faults.py`` starts one per stream of traffic and reads its JSON lines afterwards.
It authenticates once with keystoneauth (the site's clouds.yaml entry) and then loops over
the plan's operations against the site's proxy until ``duration`` seconds or ``max_ops``:

    create  POST /v2/images (metadata only)    -> records the id when acknowledged (201)
    list    GET  /v2/images
    show    GET  /v2/images/<id>               (with ``"check": [ids]``: each id once, then stop)

each with an optional scope, piggybacked on the token as the OSC plugin does (the proxy
would add the piggyback to an ``X-Scope``-only call too).
One JSON line per call: wall-clock start, seconds, HTTP status (``null`` when the client
gave up), the created id, the error message.

    python faults_driver.py '{"clouds_yaml": "...", "cloud": "Paris", "duration": 30,
        "max_ops": 300, "ops": [{"kind": "create", "scope": "{image: Corte}"}]}'
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from typing import Any

from keystoneauth1 import exceptions, session
from keystoneauth1.identity import v3

from edgescope.lang import parse_scope, unparse
from edgescope.proxy.carriers import attach_piggyback

CLIENT_TIMEOUT = 90.0
"""Far above the proxies' own timeouts: a call that reaches it has hung."""


def _session(clouds_yaml: str, cloud: str) -> tuple[session.Session, str]:
    with open(clouds_yaml) as handle:
        entry = json.load(handle)["clouds"][cloud]
    auth = v3.Password(**entry["auth"])
    sess = session.Session(auth=auth, timeout=CLIENT_TIMEOUT)
    endpoint = sess.get_endpoint(
        service_type="image", interface="public", region_name=entry["region_name"]
    )
    return sess, str(endpoint).rstrip("/")


def _scope_headers(sess: session.Session, scope: str | None) -> dict[str, str]:
    """The scope as the OSC plugin sends it: piggybacked on the token, so that the services'
    own calls (keystonemiddleware validating the token at a remote site) carry it too."""
    if not scope:
        return {}
    token = attach_piggyback(str(sess.get_token()), unparse(parse_scope(scope)))
    return {"X-Auth-Token": token}


def _call(sess: session.Session, image: str, op: dict[str, Any]) -> dict[str, Any]:
    headers = _scope_headers(sess, op.get("scope"))
    plain = not headers  # with a piggybacked token, keystoneauth must not add its own
    record: dict[str, Any] = {
        "kind": op["kind"],
        "scope": op.get("scope"),
        "start": time.time(),
        "status": None,
        "id": None,
        "error": None,
        "sites": None,
    }
    started = time.monotonic()
    try:
        if op["kind"] == "create":
            body = {"name": f"es-fault-{uuid.uuid4().hex[:8]}", "visibility": "private"}
            reply = sess.post(
                f"{image}/v2/images",
                json=body,
                headers=headers,
                raise_exc=False,
                authenticated=plain,
            )
            if reply.status_code == 201:
                record["id"] = reply.json()["id"]
        elif op["kind"] == "show":
            reply = sess.get(
                f"{image}/v2/images/{op['id']}",
                headers=headers,
                raise_exc=False,
                authenticated=plain,
            )
            record["id"] = op["id"]
        else:
            reply = sess.get(
                f"{image}/v2/images?limit=5", headers=headers, raise_exc=False, authenticated=plain
            )
        record["status"] = reply.status_code
        record["sites"] = reply.headers.get("X-Edgescope-Sites")
        if reply.status_code >= 400:
            record["error"] = reply.text[:400]
    except exceptions.ClientException as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"[:400]
    record["seconds"] = round(time.monotonic() - started, 3)
    return record


def main(plan: dict[str, Any]) -> None:
    sess, image = _session(plan["clouds_yaml"], plan["cloud"])
    if "check" in plan:
        for image_id in plan["check"]:
            op = {"kind": "show", "id": image_id, "scope": plan.get("scope")}
            print(json.dumps(_call(sess, image, op)), flush=True)
        return
    deadline = time.monotonic() + float(plan["duration"])
    ops = plan["ops"]
    for n in range(int(plan["max_ops"])):
        if time.monotonic() >= deadline:
            break
        print(json.dumps(_call(sess, image, ops[n % len(ops)])), flush=True)
        time.sleep(float(plan.get("pause", 0.0)))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
