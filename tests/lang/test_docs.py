"""docs/scope-lang.md lists every error message with an example, generated from the tables.

Regenerate with ``EDGESCOPE_UPDATE_DOCS=1 .venv/bin/pytest tests/lang/test_docs.py``.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

import edgescope.cli.scope as scope_cli
import edgescope.lang.check as check_module
from edgescope.catalog import Catalog
from edgescope.errors import ScopeError
from edgescope.lang import (
    CHECK_MESSAGES,
    DEFAULT_LIMITS,
    OTHER_MESSAGES,
    SYNTAX_MESSAGES,
    Limits,
    check_scope,
    parse_scope,
)
from edgescope.lang.check import EXAMPLE_CATALOG_TOML

DOC = Path(__file__).parents[2] / "docs" / "scope-lang.md"
BEGIN, END = "<!-- errors:begin -->", "<!-- errors:end -->"
CATALOG = Catalog.from_toml_text(EXAMPLE_CATALOG_TOML)


def rendered(text: str, limits: Limits | None, catalog: bool) -> str:
    try:
        scope = parse_scope(text, limits=limits or DEFAULT_LIMITS)
        if catalog:
            check_scope(scope, CATALOG)
    except ScopeError as err:
        return err.render()
    raise AssertionError(f"{text!r} is accepted")


def shown(text: str) -> str:
    printable = text.isprintable() and "`" not in text
    return f"`{text}`" if printable and text else f"`{text!r}` (Python notation)"


def readable(template: str) -> str:
    """``unknown service {name!r}`` -> ``unknown service {name}``; ``{{`` -> ``{``."""
    return re.sub(r"!r\}", "}", template).replace("{{", "{").replace("}}", "}")


def section(
    title: str, rows: list[tuple[str, tuple[str, ...], Limits | None]], catalog: bool
) -> list[str]:
    lines = [f"### {title}", ""]
    for message, inputs, limits in rows:
        example = next((i for i in inputs if i), inputs[0])
        lines.append(f"- `{readable(message)}`")
        lines.append("")
        where = f" with `{limits!r}`" if limits else ""
        others = [shown(i) for i in inputs if i != example]
        also = f" (also: {', '.join(others)})" if others else ""
        lines.append(f"  Input {shown(example)}{where}{also}:")
        lines.append("")
        lines.append("  ```")
        lines.extend(f"  {line}" for line in rendered(example, limits, catalog).splitlines())
        lines.append("  ```")
        lines.append("")
    return lines


CODE_ONLY = (
    check_module.MSG_UNKNOWN_SERVICE,
    check_module.MSG_SERVICE_TWICE,
    check_module.MSG_SITE_TWICE,
)


def generated() -> str:
    lines = [
        *section("Syntax", [(r.message, r.inputs, r.limits) for r in SYNTAX_MESSAGES], False),
        *section(
            "Limits, services, names and the JSON form",
            [(r.message, r.inputs, r.limits) for r in OTHER_MESSAGES],
            False,
        ),
        *section(
            "Checks against a catalog", [(r.message, r.inputs, None) for r in CHECK_MESSAGES], True
        ),
        "Only for scopes built in code, or parsed with another registry than the catalog's "
        "(the parser reports the text cases above):",
        "",
        *(f"- `{readable(m)}`" for m in CODE_ONLY),
    ]
    return "\n".join(lines).rstrip("\n")


def test_error_section_is_up_to_date() -> None:
    doc = DOC.read_text(encoding="utf-8")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    fresh = f"{head}{BEGIN}\n{generated()}\n{END}{tail}"
    if os.environ.get("EDGESCOPE_UPDATE_DOCS"):
        DOC.write_text(fresh, encoding="utf-8")
    assert doc == fresh, "docs/scope-lang.md is stale: EDGESCOPE_UPDATE_DOCS=1 pytest " + __file__


def test_cli_examples_of_the_doc() -> None:
    """The ``$ edgescope scope ...`` examples print what the doc says (stdout, or stderr)."""
    doc = DOC.read_text(encoding="utf-8")
    examples = re.findall(r"```\n\$ edgescope scope (.*)\n((?:.*\n)*?)```", doc)
    assert len(examples) >= 4
    for line, expected in examples:
        result = CliRunner().invoke(scope_cli.app, shlex.split(line))
        assert (result.stdout or result.stderr) == expected, line
