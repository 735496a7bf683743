"""The package's layers point one way and its modules import no cycle.

lang < catalog < proxy < replicas, directory, observe < openstack, testbed, deploy < demo,
console < cli: a module imports only from its own layer or lower ones (``errors``, ``aio``
and ``jsondoc`` are under every layer). Every import counts, those under
``if TYPE_CHECKING:`` and inside functions included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "edgescope"
LAYERS = {
    "errors": 0,
    "aio": 0,
    "jsondoc": 0,
    "lang": 1,
    "catalog": 2,
    "proxy": 3,
    "replicas": 4,
    "directory": 4,
    "observe": 4,
    "openstack": 5,
    "testbed": 5,
    "deploy": 5,
    "demo": 6,
    "console": 6,
    "cli": 7,
    "__init__": 8,
}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Every edgescope module ``name`` imports (``from a import b`` counts ``a.b`` if a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                ).strip(".")
            targets = [
                f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                for alias in node.names
            ]
        else:
            continue
        yield from (t for t in targets if t.split(".")[0] == "edgescope")


def layer(module: str) -> int:
    parts = module.split(".")
    return LAYERS["__init__" if len(parts) == 1 else parts[1]]


GRAPH = {name: set(imports(name, path, set(modules()))) for name, path in modules().items()}


def test_every_top_level_part_has_a_layer() -> None:
    assert {m.split(".")[1] for m in GRAPH if "." in m} <= set(LAYERS)


@pytest.mark.parametrize("module", sorted(GRAPH))
def test_no_import_from_a_higher_layer(module: str) -> None:
    upward = sorted(t for t in GRAPH[module] if layer(t) > layer(module))
    assert upward == [], f"{module} (layer {layer(module)}) imports a higher layer: {upward}"


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of ``graph`` closes."""
    cycles = []
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if target == node or target not in graph:
                continue
            if state.get(target) == 1:
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target)
        path.pop()
        state[node] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def test_no_import_cycle() -> None:
    cycles = find_cycles(GRAPH)
    assert cycles == [], "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_hidden_imports_and_cycles(tmp_path: Path) -> None:
    """Self-test: a TYPE_CHECKING import and a function-level import both count."""
    module = tmp_path / "hooks.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from edgescope.replicas.extension import Replicas\n"
        "def f():\n    from edgescope import cli\n"
    )
    known = {"edgescope.replicas.extension", "edgescope.cli"}
    found = set(imports("edgescope.replicas.hooks", module, known))
    assert found == {"edgescope.replicas.extension", "edgescope.cli"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(graph) == [["a", "b", "c", "a"]]
