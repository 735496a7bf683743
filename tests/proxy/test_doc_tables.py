"""Tables that name the proxy's codes and headers list every one the code uses."""

from __future__ import annotations

import re
from pathlib import Path

from edgescope.deploy import haproxy
from edgescope.proxy import protocol
from edgescope.proxy.responses import ErrorCode

DOC = Path(__file__).parents[2] / "docs" / "proxy.md"


def test_the_error_table_is_every_error_code() -> None:
    section = DOC.read_text(encoding="utf-8").split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d{3}) \| ([^|]+?) \|", section, flags=re.MULTILINE)
    listed = {(int(status), title) for status, title in rows}
    assert listed == {(code.http_status(), code.title) for code in ErrorCode}
    assert f"The {len(ErrorCode)} codes of `ErrorCode`" in section


def test_protocol_s_header_table_names_every_header() -> None:
    """Every ``X-Edgescope-*`` header the code sets (protocol.py, and HAProxy's own)."""
    names = [v for k, v in vars(protocol).items() if k.endswith("_HEADER") and isinstance(v, str)]
    headers = {n for n in names if n.lower().startswith(protocol.INTERNAL_PREFIX)}
    headers.add(haproxy.BYPASS_HEADER)
    assert protocol.PROOF_HEADER in headers and len(headers) > 10
    table = protocol.__doc__ or ""
    assert [h for h in sorted(headers) if f"    {h} " not in table] == []
