"""The one writer of a proxy's TOML file: a config document (the shape ``parse_config`` reads)
in, TOML text out. Pure.

Neighbours: ``config.py`` reads what this writes; ``gen_config.py`` (``edgescope proxy
gen-config``), the testbeds (``testbed/configs.py``, ``testbed/swift.py``) and the benches
build a document and write it here, so quoting and layout live in one place.

A document is a mapping: scalars and lists of scalars are keys, a mapping is a ``[table]``
(a mapping of mappings inside a table, such as ``trust.sites``, gives ``[trust.sites."X"]``
tables), a list of mappings is an array of ``[[tables]]``. A key ``"#"`` holds a comment,
written where the key stands.

    >>> print(render_config({"#": "site Paris", "site": "Paris",
    ...                      "services": [{"type": "image", "prefix": "/image"}],
    ...                      "limits": {"max_hops": 4}}))
    # site Paris
    site = "Paris"
    <BLANKLINE>
    [[services]]
    type = "image"
    prefix = "/image"
    <BLANKLINE>
    [limits]
    max_hops = 4
    <BLANKLINE>
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

COMMENT = "#"
"""The key of a comment in a document."""
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def render_config(doc: Mapping[str, Any]) -> str:
    """The TOML text of ``doc``; raises ValueError on a value TOML cannot hold."""
    lines = _keys(doc)
    _tables(doc, (), lines)
    return "\n".join(lines) + "\n"


def toml_value(value: object) -> str:
    """One TOML value: a string, a boolean, a number or a list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value}")
        return repr(value)
    if isinstance(value, Sequence):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    raise ValueError(f"TOML cannot hold {type(value).__name__} {value!r}")


def _keys(table: Mapping[str, Any]) -> list[str]:
    lines = []
    for key, value in table.items():
        if key == COMMENT:
            lines += [f"# {line}".rstrip() for line in str(value).splitlines()]
        elif not _is_table(value) and not _is_tables(value):
            lines.append(f"{_key(key)} = {toml_value(value)}")
    return lines


def _tables(table: Mapping[str, Any], path: tuple[str, ...], lines: list[str]) -> None:
    for key, value in table.items():
        if key == COMMENT:
            continue
        name = ".".join(_key(part) for part in (*path, key))
        if _is_tables(value):
            for entry in value:
                lines += ["", f"[[{name}]]", *_keys(entry)]
        elif _is_table(value):
            own = _keys(value)
            comments = [line for line in own if line.startswith("#")]
            rest = [line for line in own if not line.startswith("#")]
            if rest or not any(_is_table(v) or _is_tables(v) for v in value.values()):
                lines += ["", *comments, f"[{name}]", *rest]
            else:
                lines += ["", *comments] if comments else []
            _tables(value, (*path, key), lines)


def _is_table(value: object) -> bool:
    return isinstance(value, Mapping)


def _is_tables(value: object) -> bool:
    return (
        isinstance(value, Sequence)
        and not isinstance(value, str)
        and bool(value)
        and all(isinstance(v, Mapping) for v in value)
    )


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else json.dumps(key)
