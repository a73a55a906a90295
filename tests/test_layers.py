"""The package's layers talk through public names, and import each other without cycles.

Read from the code's own imports (every ``import``, at module level or inside a function):
a module of one layer (``model``, ``module``, ``train``, ``tl``, ``pl``, ``metrics``, ``io``,
``pp``, ``nn``, ``datasets``) imports another layer only through its public names
(``scgensynth.metrics``, never ``scgensynth.metrics._utils``); the internal helpers any layer
may use live in ``scgensynth._utils``. The layers form a hierarchy: no two import each other,
directly or round a longer loop.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

import scgensynth

ROOT = Path(scgensynth.__file__).parent
LAYERS = {"model", "module", "train", "tl", "pl", "metrics", "io", "pp", "nn", "datasets"}
#: the order the layers build on each other, lowest first (a layer imports only lower ones)
ORDER = ["_utils", "datasets", "io", "nn", "pp", "metrics", "module", "train", "model", "tl"]
ORDER += ["pl"]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, *, top_level: bool = False) -> list[str]:
    """Every ``scgensynth...`` name the file imports (relative imports resolved).

    ``top_level``: only the imports run when the module is imported (not in functions).
    """
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level else ast.walk(tree)
    out = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[: len(base) - node.level + 1] if node.level else []
            target = ".".join([*base, node.module] if node.module else base)
            out.append(target)
            out += [f"{target}.{a.name}" for a in node.names]
    return [t for t in out if t.startswith("scgensynth.")]


def _layer(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and (parts[1] in LAYERS or parts[1] == "_utils") else None


@pytest.fixture(scope="module")
def edges() -> list[tuple[str, str]]:
    """``(importing module, imported name)`` for every import between two layers."""
    out = []
    for path in ROOT.rglob("*.py"):
        name = _module_name(path)
        here = _layer(name)
        for target in _imports(path):
            there = _layer(target)
            if there is not None and there != here:
                out.append((name, target))
    return out


def test_the_walk_sees_the_imports(edges):
    """The walk finds what a layer imports (if it did not, the tests below could not fail)."""
    assert ("scgensynth.tl._train", "scgensynth.model") in edges
    assert any(t.startswith("scgensynth._utils.") for _, t in edges)


def test_layers_import_each_other_through_public_names_only(edges):
    private = [
        f"{source} imports {target}"
        for source, target in edges
        if _layer(target) in LAYERS and any(part.startswith("_") for part in target.split(".")[2:])
    ]
    assert not private, "\n".join(private)


def test_layers_build_on_lower_layers_only(edges):
    rank = {layer: i for i, layer in enumerate(ORDER)}
    upward = sorted(
        {
            f"{_layer(source)} -> {_layer(target)} ({source} imports {target})"
            for source, target in edges
            if _layer(source) is not None and rank[_layer(target)] > rank[_layer(source)]
        }
    )
    assert not upward, "\n".join(upward)


def _module_graph() -> dict[str, set[str]]:
    """Module -> the modules it imports when it is imported (the package's own only)."""
    names = {_module_name(p) for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        source = _module_name(path)
        for target in _imports(path, top_level=True):
            while target not in names and "." in target:
                target = target.rsplit(".", 1)[0]  # a name in a module: the module
            if target in names and target != source and not source.startswith(target + "."):
                graph[source].add(target)
    return graph


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A loop of imports in ``graph`` (depth-first search), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_module_import_cycle():
    """No two modules import each other when imported, directly or round a longer loop."""
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    cycle = _find_cycle(_module_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """Lines of a function without its docstring."""
    body = node.body
    has_doc = (
        isinstance(body[0], ast.Expr)
        and isinstance(body[0].value, ast.Constant)
        and isinstance(body[0].value.value, str)
    )
    start = (body[1].lineno if len(body) > 1 else node.end_lineno) if has_doc else body[0].lineno
    return node.end_lineno - start + 1


def test_functions_are_short():
    """No function of the package is longer than 80 lines, docstring excluded."""
    long = [
        f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({_body_lines(node)} lines)"
        for path in ROOT.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > 80
    ]
    assert not long, "\n".join(long)
