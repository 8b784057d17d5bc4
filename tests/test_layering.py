"""The layering, read from the source with ``ast``: no import circle among the project's modules, nothing outside
runners/ and tests/ imports a command, no command imports another, and no function over 60 lines (its body after
the signature and the docstring)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cli", "cones", "search_space", "studies", "objectives", "search_engine", "shipping", "deploy", "analysis",
            "runners", "benchmarks")
MAX_FUNCTION_LINES = 60


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def imports(path: Path, known: set[str]) -> set[str]:
    """The project modules ``path`` imports, at any depth (lazy imports too), but not under ``if TYPE_CHECKING``."""
    found = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)  # ``from package import module``
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return {name for name in found if name in known}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, set(found)) - {name} for name, path in found.items()}


def test_no_import_circle():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the path, 2: done
    circles = []

    def walk(name: str, path: list[str]) -> None:
        state[name] = 1
        for other in sorted(edges[name]):
            if state.get(other) == 1:
                circles.append(" -> ".join(path[path.index(other):] + [other]))
            elif other not in state:
                walk(other, path + [other])
        state[name] = 2

    for name in sorted(edges):
        if name not in state:
            walk(name, [name])
    assert not circles, "\n".join(circles)


def test_only_tests_import_a_command_and_no_command_imports_another():
    edges = graph()
    wrong = [f"{name} imports {other}" for name, targets in edges.items() for other in targets
             if other.startswith("runners.") and other != "runners"]
    assert not wrong, "\n".join(wrong)


def test_the_layering_check_sees_a_circle_and_a_lazy_import(tmp_path):
    (tmp_path / "a.py").write_text("def f():\n    import b\n")
    (tmp_path / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import a\n")
    assert imports(tmp_path / "a.py", {"a", "b"}) == {"b"}
    assert imports(tmp_path / "b.py", {"a", "b"}) == set()  # an annotation-only import is no edge


@pytest.mark.parametrize("package", PACKAGES)
def test_no_function_over_60_lines(package):
    long = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body[1:] if ast.get_docstring(node) is not None and len(node.body) > 1 else node.body
                lines = node.end_lineno - body[0].lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}: {lines} lines")
    assert not long, "\n".join(long)
