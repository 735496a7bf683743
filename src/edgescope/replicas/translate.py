"""Rewrite replica ids in a request for one branch site. Pure.

Neighbours: :mod:`hooks` calls :func:`candidates` to find the strings of a request that may
be replica ids (path segments, query values, JSON string values), looks them up in the
:mod:`registry`, builds a :func:`translation_table` for each branch's site, and sends that
branch :func:`translate_request`'s output. Responses are never rewritten here.

Only exact matches are replaced: a path segment, a query value or a whole JSON string
equal to a known handle or member id. The JSON walk is iterative (no recursion limit on
hostile nesting) and keeps key order.

    >>> table = {"5f0a9e21": "c93e7b10"}
    >>> translate_path("/v3/users/5f0a9e21?domain_id=d&user_id=5f0a9e21", table)
    '/v3/users/c93e7b10?domain_id=d&user_id=c93e7b10'
    >>> translate_json({"user": {"id": "5f0a9e21", "tags": ["5f0a9e21", "x"]}}, table)
    {'user': {'id': 'c93e7b10', 'tags': ['c93e7b10', 'x']}}
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import unquote

from edgescope.jsondoc import json_or_none
from edgescope.replicas.model import ReplicaSet

MAX_CANDIDATES = 10_000
"""Most strings of one request looked up in the registry (a bound on hostile bodies)."""


def translation_table(sets: Iterable[ReplicaSet], site: str) -> dict[str, str]:
    """Every id of every set (handle and member ids) -> that set's live id at ``site``.

    Sets with no live member at ``site`` are left out: their ids go through unchanged, and
    that site answers as it would for any unknown id (usually 404).
    """
    table: dict[str, str] = {}
    for replica_set in sets:
        target = replica_set.member_id(site)
        if target is None:
            continue
        for id_ in replica_set.ids:
            table[id_] = target
    return table


def translate_path(path: str, table: Mapping[str, str]) -> str:
    """Replace whole path segments and whole query values found in ``table``."""
    if not table:
        return path
    base, sep, query = path.partition("?")
    segments = [table.get(unquote(s), s) for s in base.split("/")]
    out = "/".join(segments)
    if sep:
        pairs = []
        for pair in query.split("&"):
            name, eq, value = pair.partition("=")
            pairs.append(f"{name}{eq}{table.get(unquote(value), value)}" if eq else pair)
        out += "?" + "&".join(pairs)
    return out


def translate_json(doc: Any, table: Mapping[str, str]) -> Any:
    """A copy of ``doc`` with every string value found in ``table`` replaced (keys kept)."""
    if isinstance(doc, str):
        return table.get(doc, doc)
    if not isinstance(doc, dict | list):
        return doc
    root: Any = {} if isinstance(doc, dict) else []
    stack: list[tuple[Any, Any]] = [(doc, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, value in items:
            if isinstance(value, dict | list):
                child: Any = {} if isinstance(value, dict) else []
                stack.append((value, child))
            elif isinstance(value, str):
                child = table.get(value, value)
            else:
                child = value
            if isinstance(target, dict):
                target[key] = child
            else:
                target.append(child)
    return root


def translate_request(
    path: str, body: bytes | None, table: Mapping[str, str]
) -> tuple[str, bytes | None]:
    """The branch's (path, body); a body that is not JSON is passed through untouched."""
    new_path = translate_path(path, table)
    if not body or not table:
        return new_path, body
    doc = json_or_none(body)
    if doc is None:
        return new_path, body
    translated = translate_json(doc, table)
    if translated == doc:
        return new_path, body
    return new_path, json.dumps(translated).encode()


def path_candidates(path: str) -> set[str]:
    """The segments of the path (no query): ids of the resource the call addresses."""
    return {unquote(s) for s in path.partition("?")[0].split("/") if s}


def candidates(path: str, body: bytes | None) -> set[str]:
    """Strings of the request that might be replica ids (bounded by MAX_CANDIDATES)."""
    found = path_candidates(path)
    query = path.partition("?")[2]
    found.update(unquote(p.partition("=")[2]) for p in query.split("&") if "=" in p)
    if body:
        doc = json_or_none(body)
        if doc is not None:
            for value in _strings(doc):
                found.add(value)
                if len(found) >= MAX_CANDIDATES:
                    break
    return found


def _strings(doc: Any) -> Iterator[str]:
    stack = [doc]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
