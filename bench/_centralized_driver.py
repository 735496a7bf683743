"""Client side of bench/centralized.py, run inside a site's namespace (root's cannot reach it).

One JSON argument, one JSON line on stdout. Modes:
  boot         auth, resolve flavor and image, create a server, poll until ACTIVE/ERROR or the
               deadline; report seconds. The server is then deleted, and the time until it is
               gone reported apart (the next boot must not queue behind the deletion).
  wait-host    poll until nova-compute ``host`` is up and a hypervisor of that name exists.
  delete-host  delete the compute service record of ``host`` (its host mapping and provider go too).
  cleanup      delete every server whose name starts with ``prefix``.

    ip netns exec es-corte python bench/_centralized_driver.py '{"mode": "boot", ...}'

Uses openstacksdk directly so a boot is timed to the poll interval (0.25 s), not to the
2 s poll of ``openstack server create --wait``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import openstack


def connect(args: dict[str, Any], timeout: float) -> Any:
    return openstack.connect(cloud=args["cloud"], api_timeout=max(1.0, timeout))


def boot(args: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + float(args["timeout"])
    start = time.perf_counter()
    server_id = None
    try:
        conn = connect(args, deadline - time.monotonic())
        flavor = conn.compute.find_flavor(args["flavor"], ignore_missing=False)
        image = conn.image.find_image(args["image"], ignore_missing=False)
        server = conn.compute.create_server(
            name=args["name"],
            flavor_id=flavor.id,
            image_id=image.id,
            networks="none",
            availability_zone=args["az"],
        )
        server_id = server.id
        status = server.status
        while time.monotonic() < deadline:
            status = conn.compute.get_server(server_id).status
            if status in ("ACTIVE", "ERROR"):
                break
            time.sleep(0.25)
        seconds = time.perf_counter() - start
        if status != "ACTIVE":
            why = f"timed out (status {status})"
            if (
                status == "ERROR"
            ):  # nova's own reason, e.g. the testbed's SQLite "database is locked"
                fault = conn.compute.get_server(server_id).fault or {}
                why = f"ERROR: {str(fault.get('message', '?'))[:120]}"
            return {"ok": False, "seconds": seconds, "error": why, "server": server_id}
        host = conn.compute.get_server(server_id).compute_host
        return {"ok": True, "seconds": seconds, "host": host, "server": server_id,
                "delete_seconds": delete(conn, server_id, float(args["timeout"]))}  # fmt: skip
    except Exception as exc:  # the failure is the measurement
        seconds = time.perf_counter() - start
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        message = f"{type(exc).__name__}: {text}"
        return {"ok": False, "seconds": seconds, "error": message, "server": server_id}


def delete(conn: Any, server_id: str, limit: float) -> float | None:
    """Delete and wait until gone (so the next boot does not queue behind it); None: not gone."""
    start = time.perf_counter()
    conn.compute.delete_server(server_id)
    while time.perf_counter() - start < limit:
        if conn.compute.find_server(server_id) is None:
            return time.perf_counter() - start
        time.sleep(0.25)
    return None


def wait_host(args: dict[str, Any]) -> dict[str, Any]:
    deadline = time.monotonic() + float(args["timeout"])
    conn = connect(args, 30)
    state = "absent"
    while time.monotonic() < deadline:
        services = list(conn.compute.services(host=args["host"], binary="nova-compute"))
        hypervisors = [h.name for h in conn.compute.hypervisors() if h.name == args["host"]]
        state = services[0].state if services else "absent"
        if state == "up" and hypervisors:
            return {"ok": True, "state": state}
        time.sleep(1)
    return {"ok": False, "state": state}


def delete_host(args: dict[str, Any]) -> dict[str, Any]:
    """Delete ``prefix`` servers left on ``host``, then its service record; retried while
    nova refuses (409: the host still holds servers, until it is seen down and they go)."""
    deadline = time.monotonic() + float(args.get("timeout", 120))
    conn = connect(args, 30)
    error = ""
    while time.monotonic() < deadline:
        cleanup(args)
        try:
            services = list(conn.compute.services(host=args["host"], binary="nova-compute"))
            for service in services:
                conn.compute.delete_service(service.id)
            return {"ok": True, "deleted": len(services)}
        except openstack.exceptions.SDKException as exc:
            error = str(exc).strip().splitlines()[0][:200]
        time.sleep(5)
    return {"ok": False, "error": error}


def cleanup(args: dict[str, Any]) -> dict[str, Any]:
    """Delete every server named ``prefix...``; per-server errors are retried, not fatal."""
    conn = connect(args, 30)
    deadline = time.monotonic() + 30
    left: list[str] = []
    errors: list[str] = []
    while time.monotonic() < deadline:
        try:
            left = [s.id for s in conn.compute.servers() if s.name.startswith(args["prefix"])]
        except openstack.exceptions.SDKException as exc:
            errors.append(str(exc).strip().splitlines()[0][:120])
            time.sleep(1)
            continue
        if not left:
            return {"ok": True, "left": []}
        for server_id in left:
            try:
                conn.compute.delete_server(server_id)
            except openstack.exceptions.SDKException as exc:
                errors.append(str(exc).strip().splitlines()[0][:120])
        time.sleep(1)
    return {"ok": False, "left": left, "errors": errors[-3:]}


MODES = {"boot": boot, "wait-host": wait_host, "delete-host": delete_host, "cleanup": cleanup}

if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    print(json.dumps(MODES[arguments["mode"]](arguments)), flush=True)
