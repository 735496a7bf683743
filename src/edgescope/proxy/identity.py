"""The site's own Keystone token, used to validate tokens on behalf of authenticated peers.

Neighbours: ``server.py`` asks :meth:`ServiceToken.get` when a token-validation call
(``GET``/``HEAD /v3/auth/tokens`` with ``X-Subject-Token``) arrives from a verified peer
proxy: the peer's service token means nothing here, so the proxy substitutes its own.
The token comes from a plain password ``POST /v3/auth/tokens`` to the local Keystone
(``[identity]`` in the site config) and is cached until one minute before it expires.

    tokens = ServiceToken(config.identity, upstream)
    headers["X-Auth-Token"] = await tokens.get()
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

from edgescope.errors import SiteUnreachable
from edgescope.proxy.config import IdentityCredentials
from edgescope.proxy.forward import Upstream

REFRESH_MARGIN = 60.0


def is_validation_call(method: str, path: str, headers_have_subject: bool) -> bool:
    """Whether a call to the identity service validates a token (keystonemiddleware's call)."""
    return (
        method in ("GET", "HEAD")
        and headers_have_subject
        and path.split("?", 1)[0].rstrip("/").endswith("/v3/auth/tokens")
    )


def password_auth_body(creds: IdentityCredentials) -> bytes:
    return json.dumps(
        {
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": creds.username,
                            "domain": {"name": creds.user_domain},
                            "password": creds.password,
                        }
                    },
                },
                "scope": {
                    "project": {"name": creds.project, "domain": {"name": creds.project_domain}}
                },
            }
        }
    ).encode()


class ServiceToken:
    """A cached service token for the local Keystone."""

    def __init__(self, creds: IdentityCredentials, upstream: Upstream, site: str) -> None:
        self._creds = creds
        self._upstream = upstream
        self._site = site
        self._token = ""
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if not self._token or time.time() > self._expires - REFRESH_MARGIN:
                self._token, self._expires = await self._issue()
            return self._token

    def forget(self) -> None:
        self._token = ""

    async def _issue(self) -> tuple[str, float]:
        url = self._creds.auth_url / "auth" / "tokens"
        status, headers, body = await self._upstream.post_json(
            self._site, url, password_auth_body(self._creds), timeout=10.0
        )
        token = headers.get("X-Subject-Token", "")
        if status != 201 or not token:
            raise SiteUnreachable(
                self._site, f"local Keystone refused the service credentials ({status})"
            )
        try:
            expires_at = json.loads(body)["token"]["expires_at"]
            expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            expires = time.time() + 600
        return token, expires
