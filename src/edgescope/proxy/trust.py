"""The site's trust policy: what each peer may ask of this proxy. Pure: facts in, decision out.

Every peer-facing request passes :func:`decide` once its hop marker verified
(``Sender.verify``, the one place peers are authenticated): scoped calls (``route``), replica
set operations (``replicas``) and directory syncs (``directory``) each need the peer's
capability; acting for a peer's users on this site's Keystone needs the user to hold one of
the roles :func:`delegable_roles` lists for the site that issued their token. The operator
writes the policy in the site's own config (``[trust]``, docs/security.md); the defaults
trust a peer of ``[[peers]]`` to route, push replica records and sync the directory, a site
learned from the directory to route only, and nobody to act on this site's Keystone.

    >>> policy = TrustPolicy()
    >>> decide(policy, "Lyon", configured=False, path="/edgescope/replicas/sets").allowed
    False
    >>> decide(policy, "Corte", configured=True, path="/edgescope/svc/image/v2/images").allowed
    True
    >>> delegable_roles(policy, "Corte", configured=True)
    ()
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

from edgescope.proxy.protocol import (
    DIRECTORY_PATH,
    HLC_HEADER,
    IDEMPOTENCY_KEY_HEADER,
    REPLICA_HEADER,
    REPLICAS_PATH,
)

Capability = Literal["route", "replicas", "directory"]
CAPABILITIES: tuple[Capability, ...] = ("route", "replicas", "directory")
CONFIGURED_DEFAULT: frozenset[Capability] = frozenset(CAPABILITIES)
"""What a peer of ``[[peers]]`` may do unless ``[trust]`` says otherwise."""
LEARNED_DEFAULT: frozenset[Capability] = frozenset({"route"})
"""What a site learned from the directory may do unless ``[trust]`` says otherwise."""


@dataclass(frozen=True, slots=True)
class PeerTrust:
    """What one peer may do here."""

    may: frozenset[Capability] | None = None
    """None: the default of its kind (configured or learned)."""
    delegate_roles: tuple[str, ...] = ()
    """Roles a user of this peer's Keystone must hold for this site to act for them on its
    own Keystone, with its own service token; empty (the default): never."""


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    """``[trust]``: defaults for configured and learned peers, and per-site entries."""

    configured: frozenset[Capability] = CONFIGURED_DEFAULT
    learned: frozenset[Capability] = LEARNED_DEFAULT
    sites: Mapping[str, PeerTrust] = field(default_factory=dict)

    def of(self, peer: str, *, configured: bool) -> PeerTrust:
        """The trust granted to ``peer`` (its own entry, else the default of its kind)."""
        default = self.configured if configured else self.learned
        found = self.sites.get(peer)
        if found is None:
            return PeerTrust(default)
        return PeerTrust(default if found.may is None else found.may, found.delegate_roles)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    needs: Capability
    reason: str = ""


REPLICA_MARKERS = (REPLICA_HEADER, HLC_HEADER, IDEMPOTENCY_KEY_HEADER)
"""Hop headers of a replicated write: a scoped call that also writes the replica registry."""


def capability_of(path: str, *, replicated: bool = False) -> Capability:
    """The capability a peer request for ``path`` (with its query) needs; ``replicated``: it
    carries a replicated write's markers (:data:`REPLICA_MARKERS`)."""
    if replicated:
        return "replicas"
    for bare in _readings(path.split("?", 1)[0]):
        for prefix, needs in ((REPLICAS_PATH, "replicas"), (DIRECTORY_PATH, "directory")):
            if bare == prefix or bare.startswith(prefix + "/"):
                return needs  # type: ignore[return-value]
    return "route"


def _readings(raw: str) -> tuple[str, ...]:
    """Every way a router may read the raw ``path``: as sent, percent-decoded (aiohttp routes
    on the decoded path, so ``/edgescope/%72eplicas`` is ``/edgescope/replicas``), and with its
    dot segments and repeated slashes resolved. A reserved prefix in any reading wins."""
    decoded = raw
    for _ in range(3):  # decode a few times over: %2572 must not hide a reserved prefix either
        once = unquote(decoded)
        if once == decoded:
            break
        decoded = once
    normal = posixpath.normpath("/" + decoded.lstrip("/")) if decoded else decoded
    return (raw, decoded, normal)


def decide(
    policy: TrustPolicy, peer: str, *, configured: bool, path: str, replicated: bool = False
) -> Decision:
    """Whether the verified ``peer`` may make this request here, and if not, why."""
    needs = capability_of(path, replicated=replicated)
    trust = policy.of(peer, configured=configured)
    if trust.may is not None and needs in trust.may:
        return Decision(True, needs)
    kind = "a peer of [[peers]]" if configured else "a site learned from the directory"
    granted = ", ".join(sorted(trust.may or ())) or "nothing"
    return Decision(
        False,
        needs,
        f"{peer} ({kind}) may not use {needs!r} here: this site's [trust] grants it "
        f"{granted} (add {needs!r} to [trust.sites.{peer}] may to allow it)",
    )


def delegable_roles(policy: TrustPolicy, token_site: str, *, configured: bool) -> tuple[str, ...]:
    """Roles of ``token_site``'s users this site acts for on its Keystone (empty: none)."""
    return policy.of(token_site, configured=configured).delegate_roles
