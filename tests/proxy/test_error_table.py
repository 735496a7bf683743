"""docs/proxy.md's error table lists every code the proxy answers, with its status and title."""

from __future__ import annotations

import re
from pathlib import Path

from edgescope.proxy.responses import ErrorCode

DOC = Path(__file__).parents[2] / "docs" / "proxy.md"


def test_the_error_table_is_every_error_code() -> None:
    section = DOC.read_text(encoding="utf-8").split("## Errors", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d{3}) \| ([^|]+?) \|", section, flags=re.MULTILINE)
    listed = {(int(status), title) for status, title in rows}
    assert listed == {(code.http_status(), code.title) for code in ErrorCode}
    assert f"The {len(ErrorCode)} codes of `ErrorCode`" in section
