"""The modules of ``acme_core`` import each other without a cycle.

Imports at module level count, including those under ``if TYPE_CHECKING:`` (a cycle there
still means two modules that cannot be read or moved one without the other); imports inside
functions are deliberate late imports and do not count.
"""

from __future__ import annotations

import ast
import os

import acme_core

PACKAGE = os.path.dirname(acme_core.__file__)


def module_name(path: str, root: str = PACKAGE, package: str = "acme_core") -> str:
    relative = os.path.relpath(path, root)[: -len(".py")].split(os.sep)
    if relative[-1] == "__init__":
        relative = relative[:-1]
    return ".".join([package, *relative])


def _module_level(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements at module level, also inside top-level ``if``/``try`` blocks."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, (ast.If, ast.Try)):
            todo += [*node.body, *node.orelse, *getattr(node, "finalbody", [])]
            todo += [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body]
    return found


def imported_modules(name: str, source: str, known: set[str], is_package: bool) -> set[str]:
    """The modules of ``known`` that module ``name`` imports at module level."""
    here = name if is_package else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _module_level(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets |= {alias.name for alias in node.names}
            continue
        base = here
        for _ in range(node.level - 1):
            base = base.rpartition(".")[0]
        base = f"{base}.{node.module}" if node.level and node.module else (
            base if node.level else node.module or "")
        targets.add(base)
        targets |= {f"{base}.{alias.name}" for alias in node.names}  # from . import plugins
    return {t for t in targets if t in known and t != name}


def import_graph(root: str = PACKAGE, package: str = "acme_core") -> dict[str, set[str]]:
    files = {}
    for folder, _, names in os.walk(root):
        for file in names:
            if file.endswith(".py"):
                path = os.path.join(folder, file)
                files[module_name(path, root, package)] = path
    graph = {}
    for name, path in files.items():
        with open(path, encoding="utf-8") as fh:
            graph[name] = imported_modules(name, fh.read(), set(files),
                                           path.endswith("__init__.py"))
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as ``[a, b, ..., a]``, or ``[]``. Importing a submodule imports its
    package first, but a package importing its own submodules is no cycle of the kind
    that matters here, so edges into a package's ``__init__`` are not followed."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if node.startswith(target + "."):
                continue  # a module importing its own package
            if state.get(target) == 1:
                return [*path[path.index(target):], target]
            if target not in state and (found := visit(target)):
                return found
        state[node] = 2
        path.pop()
        return []

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return []


def test_acme_core_has_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_a_cycle_through_a_type_checking_import_is_found(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hooks.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .loop import Info\n")
    (package / "loop.py").write_text("from . import registry\n")
    (package / "registry.py").write_text("from .hooks import spec\n")
    (package / "late.py").write_text("def f():\n    from . import hooks\n")
    graph = import_graph(str(package), "pkg")
    assert graph["pkg.late"] == set()  # an import inside a function is no edge
    assert find_cycle(graph) == ["pkg.hooks", "pkg.loop", "pkg.registry", "pkg.hooks"]


def test_the_plugin_contract_imports_only_its_records():
    """A plugin author reads hookspecs.py and records.py alone: the hooks import only the
    records, and the records (which every worker process imports) only the signal helper."""
    graph = import_graph()
    package = {"acme_core"}  # ``from . import x`` imports the package first, as any import does
    assert graph["acme_core.hookspecs"] - package == {"acme_core.records"}
    assert graph["acme_core.records"] - package <= {"acme_core.interrupts"}
