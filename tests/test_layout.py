"""The layout's rules that the import contracts (pyproject.toml) do not check: no import cycle among emoscope's
modules, imports inside functions counted, and no function longer than a screenful or two."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
MAX_FUNCTION_LINES = 100


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its own name, for its `__init__.py`)."""
    modules = {}
    for path in sorted((SRC / "emoscope").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.AST, name: str, path: Path, modules: dict[str, Path]) -> list[str]:
    """The package's modules one import statement names: `from a import b` names module `a.b` when there is
    one, else `a`; a name that is no module resolves to its longest prefix that is."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:  # relative: from the module's package upwards
            package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            base = ".".join([*package[: len(package) - node.level + 1], *([base] if base else [])])
        targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
    else:
        return []
    found = []
    for target in targets:
        while target and target not in modules:
            target = target.rpartition(".")[0]
        if target and target != name:
            found.append(target)
    return found


def import_graph() -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its file (top level, functions, classes)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        graph[name] = {t for node in ast.walk(tree) for t in _imported(node, name, path, modules)}
    return graph


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "emoscope.recipes.crossfit" in graph["emoscope.cli.training"]  # inside `emoscope crossfit`'s handler
    assert "emoscope.inference.predictor" in graph["emoscope.inference.corpus"]


def test_no_import_cycles():
    try:
        graphlib.TopologicalSorter(import_graph()).prepare()
    except graphlib.CycleError as exc:
        # graphlib lists each module before the ones that import it; reversed, each imports the next
        raise AssertionError(f"import cycle: {' imports '.join(reversed(exc.args[1]))}") from None


def test_no_function_is_longer_than_100_lines():
    too_long = []
    for path in sorted((SRC / "emoscope").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    too_long.append(f"{path.relative_to(SRC)}:{node.lineno}: {node.name} has {lines} lines")
    assert not too_long, "\n".join(too_long)
