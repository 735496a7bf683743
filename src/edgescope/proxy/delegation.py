"""Delegated identity: a peer's user acting on this site's Keystone (``{keystone: Paris & Corte}``).

Keystone checks its own tokens internally, so Corte's Keystone rejects a Paris token (401)
however the call got there. When an identity-service call (not ``/v3/auth/tokens``) comes
from a *verified peer* with a token issued by another identity site I (the hop header
``X-Edgescope-Token-Site``, set by the sending proxy: the scope's ``identity`` entry cannot
say it here, since for this call it *is* the routing), this site's proxy validates the token
at I through I's proxy (a validation call, like keystonemiddleware's), and if the user holds
one of the roles this site's trust policy grants I's users (``[trust.sites.I]
delegate_roles``, :mod:`trust`; default empty = never) it forwards the
call with its own service token and logs who acted for whom; otherwise 403 (401 for a token
I does not accept, 503 when I cannot be asked). The decision itself, :func:`judge`, is pure.
See docs/security.md, "Delegated identity".

:class:`Delegation` is the one component of cross-site identity: the rest of the proxy asks
it at named points and never tests the service type itself. In a call's order:

- :meth:`~Delegation.admit` (``dispatch.py``, on arrival): a peer's user acting on this
  Keystone: refuse, or act with this site's service token;
- :meth:`~Delegation.to_peer` and :meth:`~Delegation.own_call_to_peer` (``sender.py``, a
  hop to a peer): name the token's issuer (``X-Edgescope-Token-Site``);
- :meth:`~Delegation.strips_tokens` (``sender.py``): Keystone gets no piggybacked token;
- :meth:`~Delegation.to_backend` (``sender.py``, to this site's Keystone): the
  ``X-Auth-Token`` it gets, its own for a peer's validation or the acting one;
- :meth:`~Delegation.localises_catalog` (``dispatch.py`` for ``replies.py``, the answer): a
  remote validation answer gets this site's catalog.

The ingress default (a scope without an ``identity`` entry validates at this site) is
``route.py``'s, a pure routing rule; :func:`~identity.is_identity` names the service.

    verdict = await delegation.admit(call, plan, sender)
    if verdict.refusal: return verdict.refusal
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict

from edgescope.errors import SiteUnreachable
from edgescope.lang.unparse import quote_site
from edgescope.proxy.call import Call
from edgescope.proxy.carriers import REQUEST_ID_HEADER, SCOPE_HEADER, split_piggyback_lenient
from edgescope.proxy.config import ProxyConfig
from edgescope.proxy.forward import read_body
from edgescope.proxy.identity import (
    ServiceToken,
    is_identity,
    is_token_path,
    is_validation_call,
    token_document,
    token_roles,
    token_user,
)
from edgescope.proxy.peerbook import PeerBook
from edgescope.proxy.protocol import PEER_PATH, TOKEN_SITE_HEADER
from edgescope.proxy.responses import error_body, json_error
from edgescope.proxy.route import Plan
from edgescope.proxy.siteclient import SiteAnswer
from edgescope.proxy.trust import delegable_roles

log = logging.getLogger("edgescope.proxy.delegation")
VALIDATION_PATH = f"{PEER_PATH}identity/v3/auth/tokens"
VALIDATION_BODY_LIMIT = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with the call: forward as is, forward acting as the site, or refuse."""

    acting_token: str | None = None
    """This site's service token to send instead of the user's (delegation granted)."""
    refusal: web.Response | None = None


@dataclass(frozen=True, slots=True)
class Judgement:
    allowed: bool
    status: int
    reason: str


def needs_delegation(
    path: str, headers: Mapping[str, str], from_peer: str | None, token_site: str, site: str
) -> bool:
    """A peer-forwarded identity call with a foreign token, other than token calls. Pure."""
    return (
        from_peer is not None
        and token_site != site
        and "X-Auth-Token" in headers
        and not is_token_path(path)
    )


def judge(
    status: int, body: bytes, delegate_roles: tuple[str, ...], token_site: str, site: str
) -> Judgement:
    """Decide on the identity site's answer to validating the token. Pure."""
    if status in (401, 403, 404):
        return Judgement(False, 401, f"{token_site} does not accept the token ({status})")
    token = token_document(body) if status == 200 else None
    if token is None:
        return Judgement(False, 502, f"{token_site} answered the validation with {status}")
    roles = token_roles(token)
    granted = sorted(roles & set(delegate_roles))
    if not granted:
        return Judgement(
            False,
            403,
            f"{token_user(token)} of {token_site} holds {', '.join(sorted(roles)) or 'no role'}; "
            f"{site} delegates its Keystone only to {token_site} users with role "
            f"{' or '.join(delegate_roles)}",
        )
    return Judgement(True, 200, f"{token_user(token)} of {token_site} (role {granted[0]})")


class PeerLink(Protocol):
    """How :meth:`Delegation.admit` reaches a token's identity site (the sender)."""

    @property
    def peers(self) -> PeerBook: ...

    async def open_peer(
        self,
        site: str,
        method: str,
        path: str,
        headers: CIMultiDict[str] | dict[str, str],
        body: bytes | None,
        hops: int = 0,
    ) -> SiteAnswer: ...


class Delegation:
    """Cross-site identity: validates foreign tokens at their identity site, grants this
    site's service token, and says what a call of the identity service carries where."""

    def __init__(self, config: ProxyConfig, tokens: ServiceToken | None) -> None:
        self.config = config
        self.tokens = tokens

    # -- arrival (dispatch.py) ---------------------------------------------------------------

    async def admit(self, call: Call, plan: Plan, link: PeerLink) -> Verdict:
        """A peer's identity call for this site's Keystone: forward it as it is, acting as
        this site (``call.acting_token`` is set), or refuse it."""
        if not (is_identity(call.service) and plan.is_local and call.from_peer is not None):
            return Verdict()
        verdict = await self._admit(
            call.request.headers,
            call.method,
            call.path,
            link,
            from_peer=call.from_peer,
            hops=call.hops,
            request_id=call.request_id,
        )
        call.acting_token = verdict.acting_token
        return verdict

    # -- on the way out (sender.py) ----------------------------------------------------------

    def to_peer(self, call: Call, headers: CIMultiDict[str]) -> None:
        """A client's identity call to a peer names who issued its token: the issuer a peer
        named, else the peer it came from, else this site."""
        if is_identity(call.service):
            issuer = call.request.headers.get(TOKEN_SITE_HEADER) if call.from_peer else None
            headers[TOKEN_SITE_HEADER] = issuer or call.from_peer or self.config.site

    def own_call_to_peer(self, service: str, headers: CIMultiDict[str]) -> None:
        """The proxy's own identity call to a peer carries a token this site issued."""
        if is_identity(service):
            headers[TOKEN_SITE_HEADER] = self.config.site

    def strips_tokens(self, service: str) -> bool:
        """Keystone checks tokens itself: it never gets a piggybacked one."""
        return is_identity(service)

    async def to_backend(self, call: Call, path: str, headers: CIMultiDict[str]) -> None:
        """The ``X-Auth-Token`` this site's Keystone gets: this site's own service token to
        validate a peer's token (the peer's service token means nothing here), or the acting
        token of a delegated call (:meth:`admit`)."""
        if not is_identity(call.service):
            return
        if (
            call.from_peer
            and self.tokens is not None
            and is_validation_call(call.method, path, "X-Subject-Token" in headers)
        ):
            headers["X-Auth-Token"] = await self.tokens.get()
        elif call.acting_token is not None:
            headers["X-Auth-Token"] = call.acting_token

    # -- the answer (replies.py) -------------------------------------------------------------

    def localises_catalog(self, call: Call, site: str) -> bool:
        """A token validated by a remote identity site is answered with this site's catalog,
        so the calling service keeps using this site's endpoints."""
        return (
            call.is_validation
            and call.method == "GET"
            and site != self.config.site
            and self.tokens is not None
        )

    async def _admit(
        self,
        headers: Mapping[str, str],
        method: str,
        path: str,
        link: PeerLink,
        *,
        from_peer: str | None,
        hops: int,
        request_id: str,
    ) -> Verdict:
        site = self.config.site
        token_site = headers.get(TOKEN_SITE_HEADER) or from_peer or site
        if not needs_delegation(path, headers, from_peer, token_site, site):
            return Verdict()
        what = f"{method} {path.split('?', 1)[0][:100]}"

        def refuse(status: int, reason: str) -> Verdict:
            message = f"site {site} refuses {what} with a token of {token_site}: {reason}"
            log.warning("%s (request %s, via %s)", message, request_id, from_peer)
            title = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Delegation Failed")
            body = error_body(status, title, message)
            return Verdict(refusal=json_error(body, status, request_id))

        if token_site not in link.peers:
            return refuse(403, f"{token_site} is not a peer of {site}")
        configured = link.peers.is_configured(token_site)
        roles = delegable_roles(self.config.trust, token_site, configured=configured)
        if self.tokens is None or not roles:
            return refuse(
                403,
                f"it delegates no role to {token_site}'s users "
                f"([trust.sites.{token_site}] delegate_roles)",
            )
        user_token, _ = split_piggyback_lenient(headers["X-Auth-Token"])
        try:
            status, body = await self._validate(link, token_site, user_token, hops, request_id)
        except SiteUnreachable as exc:
            return refuse(503, f"cannot validate the token there: {exc.reason}")
        judgement = judge(status, body, roles, token_site, site)
        if not judgement.allowed:
            return refuse(judgement.status, judgement.reason)
        log.info(
            "site %s acts for %s: %s (request %s, via %s)",
            site,
            judgement.reason,
            what,
            request_id,
            from_peer,
        )
        return Verdict(acting_token=await self.tokens.get())

    async def _validate(
        self, link: PeerLink, token_site: str, user_token: str, hops: int, request_id: str
    ) -> tuple[int, bytes]:
        """``GET /v3/auth/tokens?nocatalog`` at the identity site, through its proxy.

        No ``X-Auth-Token`` goes with it: this site's service token never leaves the site;
        the identity site's proxy validates with its own.
        """
        headers = {
            "X-Subject-Token": user_token,
            REQUEST_ID_HEADER: request_id,
            SCOPE_HEADER: f"{{identity: {quote_site(token_site)}}}",  # beats the memory
        }
        response = await link.open_peer(
            token_site, "GET", VALIDATION_PATH + "?nocatalog", headers, None, hops
        )
        return response.status, await read_body(response, token_site, VALIDATION_BODY_LIMIT)
