"""Parse a JSON document from anyone (a peer's answer, a client's body) without raising.

>>> json_or_none(b'{"a": 1}')
{'a': 1}
>>> json_or_none(b"[" * 100_000 + b"]" * 100_000) is None
True
"""

from __future__ import annotations

import json
from typing import Any


def json_or_none(data: bytes | str) -> Any:
    """The document, or None when ``data`` is not JSON: bad syntax, bad UTF-8, or nested too
    deep for the parser (RecursionError: a hostile ``[[[[...`` must not become a traceback)."""
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
