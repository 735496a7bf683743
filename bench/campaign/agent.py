"""A campaign client's HTTP agent: one long-lived process inside a site's namespace.

Spawning ``openstack`` costs seconds of CPU per command on this machine, too slow for
thousands of operations; the agent authenticates once (keystoneauth, the site's clouds.yaml
entry, re-authenticating when the token is refused or expires) and then answers one request
per JSON line on stdin with one JSON line on stdout, sending the scope as the OSC plugin does
(``X-Scope``, the token piggyback, ``X-Scope-Mode``)::

    {"method": "POST", "service": "image", "path": "/v2/images", "body": {...},
     "scope": "{image: Paris & Corte}", "mode": "eventual", "headers": {...}}
    -> {"status": 201, "body": {...}, "error": ""}      (status null: the call was lost)

    ip netns exec h24-paris python -m bench.campaign.agent CLOUDS_YAML Paris
"""

from __future__ import annotations

import json
import sys
from typing import Any

from keystoneauth1 import exceptions, session
from keystoneauth1.identity import v3

from edgescope.lang import parse_scope, unparse
from edgescope.proxy.carriers import MODE_HEADER, SCOPE_HEADER, attach_piggyback

CALL_TIMEOUT = 90.0
"""Far above the proxies' own timeouts: a call that reaches it has hung (recorded as lost)."""
SERVICE_TYPES = {"identity", "image", "compute", "volumev3", "network"}


class Agent:
    """One site's authenticated session and its endpoints."""

    def __init__(self, clouds_yaml: str, cloud: str) -> None:
        with open(clouds_yaml) as handle:
            entry = json.load(handle)["clouds"][cloud]
        self.region = entry.get("region_name")
        verify = entry.get("cacert", entry.get("verify", True))
        self.session = session.Session(
            auth=v3.Password(**entry["auth"]), timeout=CALL_TIMEOUT, verify=verify
        )
        self.endpoints: dict[str, str] = {}

    def endpoint(self, service: str) -> str:
        if service not in self.endpoints:
            found = self.session.get_endpoint(
                service_type=service, interface="public", region_name=self.region
            )
            base = str(found).rstrip("/")  # keystone's catalog names .../v3; paths name it
            self.endpoints[service] = base.removesuffix("/v3") if service == "identity" else base
        return self.endpoints[service]

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        service = str(request["service"])
        if service not in SERVICE_TYPES:
            return {"status": None, "body": None, "error": f"unknown service {service!r}"}
        try:
            reply = self._send(request, service)
            if reply.status_code == 401:  # the token expired or its keystone restarted
                self.session.invalidate()
                reply = self._send(request, service)
        except exceptions.ClientException as exc:
            return {"status": None, "body": None, "error": f"{type(exc).__name__}: {exc}"[:400]}
        try:
            body = reply.json() if reply.content else None
        except ValueError:
            body = None
        error = "" if reply.status_code < 400 else reply.text[:400]
        return {"status": reply.status_code, "body": body, "error": error}

    def _send(self, request: dict[str, Any], service: str) -> Any:
        token = str(self.session.get_token())
        extra = {str(k): str(v) for k, v in (request.get("headers") or {}).items()}
        headers = {**extra, "X-Auth-Token": token}
        if request.get("scope"):
            text = unparse(parse_scope(str(request["scope"])))
            headers.update({"X-Auth-Token": attach_piggyback(token, text), SCOPE_HEADER: text})
            if request.get("mode", "strict") != "strict":
                headers[MODE_HEADER] = str(request["mode"])
        return self.session.request(
            self.endpoint(service) + str(request["path"]),
            str(request["method"]),
            json=request.get("body"),
            headers=headers,
            raise_exc=False,
            authenticated=False,
        )


def main(clouds_yaml: str, cloud: str) -> None:
    agent = Agent(clouds_yaml, cloud)
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(agent.call(json.loads(line))), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
