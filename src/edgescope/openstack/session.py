"""Attach a scope to every request of a keystoneauth session, and remember where items came from.

``osc_plugin.py`` calls :func:`attach_scope` once OSC has built its session; the proxy
(:mod:`edgescope.proxy.carriers`) reads what is written here. Every *authenticated* request
gets two carriers, so the scope survives whatever OpenStack does with the request:

- ``X-Scope: <canonical text>`` for the proxy the client talks to;
- the token piggyback ``X-Auth-Token: <token>~scope~<base64url(text)>``, because services
  forward the user's token (nova -> glance, nova -> neutron reads) and nothing else.

Requests without a token (the token request, version discovery) carry ``X-Scope`` only, with
an ``&`` in ``identity`` pinned to its first site: the user authenticates at one Keystone.

    >>> session = keystoneauth1.session.Session(auth=plugin)
    >>> attach_scope(session, scope)
    >>> session.get("http://paris:20190/compute/v2.1/servers")   # both carriers attached
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from edgescope.lang import And, Expr, Scope, SiteRef, iter_sites, unparse
from edgescope.lang.ast import Around
from edgescope.proxy.carriers import MODE_HEADER, SCOPE_HEADER, attach_piggyback
from edgescope.proxy.merge import ORIGIN_FIELD
from edgescope.proxy.partial import parse_partial
from edgescope.proxy.protocol import ERROR_HEADER, PARTIAL_HEADER, SITES_HEADER

TOKEN_HEADER = "X-Auth-Token"
DIVERGED_FIELD = "edgescope:diverged"
"""Set by the proxy's replicas on one resource whose members disagree (replicas/members.py)."""

ORIGIN_FIELDS = (ORIGIN_FIELD,)
"""Item fields that name the site a merged ``&`` item came from (the proxy's, in merge.py)."""

_MAX_RECORDED_BODY = 8 * 1024 * 1024


def scope_headers(headers: Mapping[str, str] | None, scope_text: str) -> dict[str, str] | None:
    """The auth headers of one request with both carriers added. None stays None (auth failed)."""
    if headers is None:
        return None
    scoped = dict(headers)
    token = scoped.get(TOKEN_HEADER)
    if token:
        scoped[TOKEN_HEADER] = attach_piggyback(token, scope_text)
    scoped[SCOPE_HEADER] = scope_text
    return scoped


def unauthenticated_scope(scope: Scope, own_site: str | None = None) -> Scope:
    """The scope for requests without a token: the token request and version discovery.

    The token request is routed by the ``identity`` entry. One token comes from one Keystone,
    and the user's password is that of their own site, so an ``&`` there is pinned to
    ``own_site`` (the cloud's region) when it is one of the ``&``'s sites, else to the first
    site: ``{keystone: Paris & Corte}`` authenticates a Corte admin at Corte and a Paris
    admin at Paris, then creates at both. ``|`` (and ``nearest``) stays a fallback chain. An
    ``around(X, r)`` (an ``&`` once the entry proxy resolves it) is pinned to its center X,
    the one site it always holds; other ``around``/``nearest`` go as written: the entry
    proxy resolves them.
    """
    expr = scope.expr_for("identity")
    if isinstance(expr, Around):
        return scope.with_site("identity", expr.center.name)
    if expr is None or not _has_and(expr):
        return scope
    sites = [ref.name for ref in iter_sites(expr)]
    return scope.with_site("identity", own_site if own_site in sites else sites[0])


def _has_and(expr: Expr) -> bool:
    return any(isinstance(node, And) for node in _walk(expr))


def _walk(expr: Expr) -> list[Expr]:
    nodes, stack = [], [expr]
    while stack:
        node = stack.pop()
        nodes.append(node)
        if not isinstance(node, SiteRef):
            stack.extend(node.operands)
    return nodes


@dataclass
class OriginRecorder:
    """Resource id -> site, learnt from merged ``&`` list responses (a requests response hook)."""

    sites_by_id: dict[str, str] = field(default_factory=dict)

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        content_type = response.headers.get("Content-Type", "")
        length = int(response.headers.get("Content-Length") or 0)
        if "json" not in content_type or length > _MAX_RECORDED_BODY:
            return response
        try:
            body = json.loads(response.content or b"null")
        except ValueError:
            return response
        self.record(body)
        return response

    def record(self, body: object) -> None:
        """Learn from one JSON body: every list under a top-level key, items with an origin."""
        if not isinstance(body, dict):
            return
        for value in body.values():
            if not isinstance(value, list):
                continue
            for item in value:
                if isinstance(item, dict) and item.get("id") is not None:
                    site = origin_of(item)
                    if site:
                        self.sites_by_id[str(item["id"])] = site


REPORT_PREFIX = "edgescope: "
"""How the CLI's own failure lines start (on stderr, before OSC's wording)."""


@dataclass
class SiteFailureReporter:
    """Print what the proxy says about sites that OSC would not show (a response hook).

    OSC often hides the response body behind its own wording (a failed version discovery
    becomes "does not have any supported versions"); these lines say which sites failed and
    why, and what was undone. Reported, once each: 5xx answers naming sites
    (``X-Edgescope-Sites``) or made by the proxy (``X-Edgescope-Error``); other errors the
    proxy made itself (a failed ``&``, a bad scope), except a 404, an ordinary "not found"
    that OSC handles (name lookups); and a replicated resource whose members diverge
    (``edgescope:diverged``, e.g. one member in ERROR); a partial answer
    (``X-Edgescope-Partial``, ``--os-scope-mode partial``), naming the sites left out. A 401
    to a request that carried no
    token is not reported: keystoneauth's version discovery tries without one first, and
    cinder's ``/v3/`` answers 401 to that (keystoneauth then asks again with the token).
    """

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    seen: set[str] = field(default_factory=set)

    def __call__(self, response: Any, *args: Any, **kwargs: Any) -> Any:
        status = response.status_code
        named = SITES_HEADER in response.headers
        made = ERROR_HEADER in response.headers
        if status == 401 and not _had_token(response):
            return response
        if (status >= 500 and (named or made)) or (made and status >= 400 and status != 404):
            self._say(_error_message(response))
        elif status < 300 and named:
            self._say(_partial(response))
            self._say(_diverged(response))
        return response

    def _say(self, message: str | None) -> None:
        if message and message not in self.seen:
            self.seen.add(message)
            print(f"{REPORT_PREFIX}{message}", file=self.stream)


def _partial(response: Any) -> str | None:
    """``partial answer: no answer from Corte (connect timeout); shown: the other sites``."""
    value = response.headers.get(PARTIAL_HEADER)
    if not value:
        return None
    missing = "; ".join(f"{site} ({reason})" for site, reason in parse_partial(value))
    return f"partial answer: no answer from {missing}; shown: the other sites only"


def _had_token(response: Any) -> bool:
    request = getattr(response, "request", None)
    headers = getattr(request, "headers", None) or {}
    return "X-Auth-Token" in headers


def _error_message(response: Any) -> str | None:
    try:
        message = json.loads(response.content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return None
    return message if isinstance(message, str) else None


def _diverged(response: Any) -> str | None:
    """``<id>: status: Paris=ACTIVE, Corte=ERROR`` of one replicated resource, if any."""
    if "json" not in response.headers.get("Content-Type", ""):
        return None
    try:
        doc = json.loads(response.content)
    except ValueError:
        return None
    if isinstance(doc, dict) and len(doc) == 1 and isinstance(next(iter(doc.values())), dict):
        doc = next(iter(doc.values()))
    if not isinstance(doc, dict) or not isinstance(doc.get(DIVERGED_FIELD), str):
        return None
    return f"{doc.get('name') or doc.get('id')}: {doc[DIVERGED_FIELD]}"


def origin_of(item: Mapping[str, Any]) -> str | None:
    """The site a merged item came from, whatever field the proxy used."""
    for name in ORIGIN_FIELDS:
        value = item.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def attach_scope(session: Any, scope: Scope, own_site: str | None = None) -> OriginRecorder:
    """Make every request of a keystoneauth ``session`` carry ``scope``; returns the recorder.

    ``own_site`` (the cloud's region) is where the token request goes when ``identity`` is an
    ``&`` that includes it (:func:`unauthenticated_scope`).

    Uses documented keystoneauth surfaces: the auth plugin's ``get_headers`` (wrapped on this
    one plugin instance) and ``Session.additional_headers``; origins are read through a
    ``requests`` response hook on the underlying ``requests.Session``.
    """
    text = unparse(scope)
    auth = session.auth
    if auth is not None and not getattr(auth, "_edgescope_scope", None):
        original: Callable[..., Mapping[str, str] | None] = auth.get_headers

        def get_headers(sess: Any, **kwargs: Any) -> dict[str, str] | None:
            return scope_headers(original(sess, **kwargs), text)

        auth.get_headers = get_headers
        auth._edgescope_scope = text
    # setdefault semantics: authenticated requests keep the X-Scope of get_headers above.
    session.additional_headers[SCOPE_HEADER] = unparse(unauthenticated_scope(scope, own_site))
    recorder = OriginRecorder()
    session.session.hooks.setdefault("response", []).extend([recorder, SiteFailureReporter()])
    return recorder


def attach_mode(session: Any, mode: str) -> None:
    """Send ``X-Scope-Mode: <mode>`` on every request of a keystoneauth ``session``."""
    session.additional_headers[MODE_HEADER] = mode
