"""No import circles between appserver's modules (issue 13 item 17): layers flow one way.

Every run-time `import` counts, at module level or inside a function (a circle hidden behind a
lazy import is still a circle). Imports under `if TYPE_CHECKING:` are checked only for the
two circles issue 13 named (app.threads <-> app.turns, processor <-> registry).
"""

from __future__ import annotations

import ast
from pathlib import Path

import appserver

ROOT = Path(appserver.__file__).parent


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _nodes(tree: ast.AST, type_only: bool) -> list[ast.AST]:
    """Every node of `tree`, without the bodies of `if TYPE_CHECKING:` unless `type_only`."""
    out, stack = [], [tree]
    while stack:
        node = stack.pop()
        out.append(node)
        if _is_type_checking(node) and not type_only:
            continue
        stack.extend(ast.iter_child_nodes(node))
    return out


def imports_of(path: Path, modules: set[str], *, type_only: bool = False) -> set[str]:
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _nodes(ast.parse(path.read_text()), type_only):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            # `from appserver.app import threads` imports the module appserver.app.threads.
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(f"{target}."):
                found.add(target)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)) is not None:
            return cycle
    return None


def graph(*, type_only: bool = False) -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): imports_of(p, modules, type_only=type_only) for p in paths}


def test_there_are_no_import_circles() -> None:
    assert find_cycle(graph()) is None


def test_the_circles_issue_13_named_are_gone() -> None:
    edges = graph(type_only=True)
    assert "appserver.app.turns" not in edges["appserver.app.threads"]
    assert "appserver.processor" not in edges["appserver.registry"]


def test_the_cycle_finder_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
