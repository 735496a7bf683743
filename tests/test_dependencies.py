"""Every third-party import of src/edgescope is a declared dependency, or optional for a reason.

Read from the source (ast), so it fails in the fast tier before .ci/check-install shows it on
a clean install. docs/design.md ("Dependencies") says why each one is there.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"

# top-level module: (where it may be imported, relative to src/edgescope/, and why it is not
# in `dependencies`). Anything else must be declared.
OPTIONAL = {
    "opentelemetry": (
        ("observe/tracing.py", "observe/_sampling.py"),
        "the [tracing] extra, imported when configured (_sampling only from tracing's setup)",
    ),
    "osc_lib": ("openstack/", "python-openstackclient's: the plugin is loaded by `openstack`"),
    "cliff": ("openstack/", "python-openstackclient's: the plugin is loaded by `openstack`"),
    "neutron": ("testbed/", "requirements/openstack.txt: run in the testbed's OpenStack"),
    "openstack": (
        ("testbed/", "console/targets.py"),
        "requirements/openstack.txt in the testbed; the [console] extra for `console --cloud`",
    ),
    "rados": ("testbed/", "Debian's python3-rados (make ceph-bindings)"),
    "rbd": ("testbed/", "Debian's python3-rbd (make ceph-bindings)"),
}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = (re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0] for spec in project["dependencies"])
    return {_normal(name) for name in names}


class _Imports(ast.NodeVisitor):
    """(top-level module, line, at import time) of each absolute import; imports inside
    functions are not at import time, ``if TYPE_CHECKING:`` ones never run."""

    def __init__(self) -> None:
        self.found: list[tuple[str, int, bool]] = []
        self.depth = 0

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_If(self, node: ast.If) -> None:
        if isinstance(node.test, ast.Name | ast.Attribute) and "TYPE_CHECKING" in ast.unparse(
            node.test
        ):
            for stmt in node.orelse:
                self.visit(stmt)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.found.append((alias.name.split(".")[0], node.lineno, self.depth == 0))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level == 0 and node.module:
            self.found.append((node.module.split(".")[0], node.lineno, self.depth == 0))


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """Third-party imports of one file (not the standard library's, not edgescope's)."""
    visitor = _Imports()
    visitor.visit(ast.parse(path.read_text()))
    own = sys.stdlib_module_names | {"edgescope", "__future__"}
    return [item for item in visitor.found if item[0] not in own]


@cache
def third_party() -> dict[str, list[tuple[str, int, bool]]]:
    """{top-level module: [(file relative to src/edgescope, line, module level)]}."""
    found: dict[str, list[tuple[str, int, bool]]] = {}
    for path in sorted((SRC / "edgescope").rglob("*.py")):
        where = path.relative_to(SRC / "edgescope").as_posix()
        for name, line, top in imports(path):
            found.setdefault(name, []).append((where, line, top))
    return found


def test_every_import_is_declared_or_optional_where_allowed() -> None:
    distributions = packages_distributions()
    wanted = declared()
    problems = []
    for name, places in third_party().items():
        if name in OPTIONAL:
            allowed = OPTIONAL[name][0]
            problems += [f"{name} in {w}:{n}" for w, n, _ in places if not w.startswith(allowed)]
            continue
        dists = {_normal(d) for d in distributions.get(name, [])}
        if not dists & wanted:
            first = f"{places[0][0]}:{places[0][1]}"
            dist = sorted(dists) or "no installed distribution"
            problems.append(f"{name} (from {dist}) at {first}")
    assert not problems, f"undeclared imports (pyproject.toml `dependencies`): {problems}"


def test_the_optional_ones_are_imported_lazily_outside_their_own_modules() -> None:
    """The CLI imports every command group: an optional module at module level there would
    stop `edgescope --help` (the plugin and the testbed's subprocess modules may)."""
    module_level_ok = (
        "openstack/",
        "testbed/_provision.py",
        "testbed/_neutron_schema.py",
        "observe/_sampling.py",  # imported only inside tracing.py's setup
    )
    eager = [
        f"{name} at {where}:{line}"
        for name, places in third_party().items()
        if name in OPTIONAL
        for where, line, top in places
        if top and not where.startswith(module_level_ok)
    ]
    assert not eager, eager


def test_the_audit_sees_imports() -> None:
    """The audit is not vacuous: it finds what we know the package imports."""
    found = third_party()
    assert {"aiohttp", "cryptography", "lark", "yarl", "opentelemetry"} <= found.keys()
    tracing = [top for where, _, top in found["opentelemetry"] if where == "observe/tracing.py"]
    assert tracing and not any(tracing)  # imported lazily
    assert "cryptography" in declared() and "aiohttp" in declared()
