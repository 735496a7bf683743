"""The site's own Keystone token and catalog, and pure helpers over Keystone token answers.

Neighbours: ``server.py`` asks :meth:`ServiceToken.get` when a token-validation call
(``GET``/``HEAD /v3/auth/tokens`` with ``X-Subject-Token``) arrives from a verified peer
proxy: the peer's service token means nothing here, so the proxy substitutes its own.
The token comes from a plain password ``POST /v3/auth/tokens`` to the local Keystone
(``[identity]`` in the site config) and is cached until one minute before it expires.
The same answer carries this site's service catalog, kept for :func:`with_catalog`: a
validation answered by a *remote* identity site carries that site's catalog, which the
calling site's proxy swaps for its own so the caller's next calls stay at its own site.
``delegation.py`` uses :func:`token_roles` and :func:`token_user` on validation answers.

    tokens = ServiceToken(config.identity, client, "Corte")  # client: a SiteClient
    headers["X-Auth-Token"] = await tokens.get()
    body = with_catalog(remote_answer, await tokens.catalog()) or remote_answer
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edgescope.errors import AnswerTooLarge, SiteUnreachable
from edgescope.lang.registry import IDENTITY
from edgescope.proxy.config import IdentityCredentials
from edgescope.proxy.forward import read_body
from edgescope.proxy.siteclient import SiteAnswer, SiteClient

REFRESH_MARGIN = 60.0
VALIDATION_BODY_LIMIT = 1024 * 1024
LOGIN_TIMEOUT = 10.0
LOGIN_BODY_LIMIT = 16 * 1024 * 1024
"""Largest answer to the service token's login read (a token and this site's catalog)."""


def is_identity(service: str) -> bool:
    """A call of the identity service (Keystone), the one service whose calls carry
    cross-site identity: the proxy tests it here only, and acts on it in ``delegation.py``."""
    return service == IDENTITY


def is_validation_call(method: str, path: str, headers_have_subject: bool) -> bool:
    """Whether a call to the identity service validates a token (keystonemiddleware's call)."""
    return (
        method in ("GET", "HEAD")
        and headers_have_subject
        and path.split("?", 1)[0].rstrip("/").endswith("/v3/auth/tokens")
    )


def is_token_path(path: str) -> bool:
    """``/v3/auth/tokens`` (issue, validate, revoke): tokens themselves, never delegated."""
    return path.split("?", 1)[0].rstrip("/").endswith("/v3/auth/tokens")


def token_document(body: bytes) -> dict[str, Any] | None:
    """The ``token`` object of a Keystone v3 token answer, or None when the body has none."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    token = doc.get("token") if isinstance(doc, dict) else None
    return token if isinstance(token, dict) else None


def with_catalog(body: bytes, catalog: list[Any]) -> bytes | None:
    """``body`` (a ``GET /v3/auth/tokens`` answer) with ``token.catalog`` replaced by
    ``catalog``, everything else as returned; None when there is no catalog to replace
    (``?nocatalog``, unscoped token, not a token answer)."""
    doc = json.loads(body) if token_document(body) is not None else None
    if doc is None or "catalog" not in doc["token"]:
        return None
    doc["token"]["catalog"] = catalog
    return json.dumps(doc).encode()


def token_roles(token: dict[str, Any]) -> set[str]:
    """Role names of a validated token (Keystone includes implied roles)."""
    roles = token.get("roles")
    if not isinstance(roles, list):
        return set()
    return {str(r["name"]) for r in roles if isinstance(r, dict) and "name" in r}


def token_user(token: dict[str, Any]) -> str:
    """``name (id) of project P`` for logs and error messages."""
    user, project = token.get("user"), token.get("project")
    user = user if isinstance(user, dict) else {}
    project = project if isinstance(project, dict) else {}
    who = f"{user.get('name', '?')} ({user.get('id', '?')})"
    return who + (f" of project {project.get('name')}" if project.get("name") else "")


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
    """A cached service token for the local Keystone, and the catalog that came with it.

    The login goes through ``client``, the proxy's one :class:`~siteclient.SiteClient`."""

    def __init__(
        self,
        creds: IdentityCredentials,
        client: SiteClient,
        site: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._creds = creds
        self._client = client
        self._site = site
        self._clock = clock
        self._token = ""
        self._expires = 0.0
        self._catalog: list[Any] = []
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        async with self._lock:
            if not self._token or self._clock() > self._expires - REFRESH_MARGIN:
                self._token, self._expires = await self._issue()
            return self._token

    async def catalog(self) -> list[Any]:
        """This site's service catalog, as its Keystone gave it with the service token."""
        await self.get()
        return self._catalog

    async def _issue(self) -> tuple[str, float]:
        url = self._creds.auth_url / "auth" / "tokens"
        response = await self._client.open(
            self._site,
            "POST",
            url,
            headers={"Content-Type": "application/json"},
            body=password_auth_body(self._creds),
            connect_timeout=LOGIN_TIMEOUT,
            read_timeout=LOGIN_TIMEOUT,
        )
        status, token = response.status, response.headers.get("X-Subject-Token", "")
        try:
            body = await read_body(response, self._site, LOGIN_BODY_LIMIT)
        except AnswerTooLarge as exc:  # the local Keystone's failure, as any other
            raise SiteUnreachable(self._site, str(exc)) from None
        if status != 201 or not token:
            raise SiteUnreachable(
                self._site, f"local Keystone refused the service credentials ({status})"
            )
        catalog = (token_document(body) or {}).get("catalog")
        self._catalog = catalog if isinstance(catalog, list) else []
        try:
            expires_at = json.loads(body)["token"]["expires_at"]
            expires = datetime.fromisoformat(expires_at.replace("Z", "+00:00")).timestamp()
        except (ValueError, KeyError, TypeError):
            expires = self._clock() + 600
        return token, expires


async def localise_catalog(response: SiteAnswer, site: str, tokens: ServiceToken) -> bytes:
    """The body of a validation answered by remote ``site``, with this site's own catalog
    when it has one (a 200, uncompressed, with ``token.catalog``); else as returned.
    Raises SiteUnreachable when the answer or the local catalog cannot be had."""
    body = await read_body(response, site, VALIDATION_BODY_LIMIT)
    if response.status != 200 or response.headers.get("Content-Encoding", "identity") != "identity":
        return body
    catalog = await tokens.catalog()  # an empty local catalog would help nobody
    return (with_catalog(body, catalog) if catalog else None) or body
