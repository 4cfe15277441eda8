"""``predictors/`` imports without a circle: no module imports itself through others,
counting imports inside functions (those under ``if TYPE_CHECKING:`` never run, and do not
count). The run context, the containers, the contract and the base class import one way."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "predictors"


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, here: str, known: set[str]) -> set[str]:
    """The modules of ``known`` that running ``here`` (the file ``path``) imports: each named
    module, and the packages above it that ``here`` is not inside (importing ``a.b.c`` runs
    ``a/__init__`` and ``a/b/__init__``; a module's own packages are already running)."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    out: set[str] = set()
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package
                for _ in range(node.level - 1):
                    up = up.rpartition(".")[0]
                base = f"{up}.{base}" if base else up
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            direct = name
            while direct and direct not in known:
                direct = direct.rpartition(".")[0]
            if direct and direct != here:
                out.add(direct)
            pkg = direct.rpartition(".")[0]
            while pkg:
                if pkg in known and pkg != here and not here.startswith(pkg + "."):
                    out.add(pkg)
                pkg = pkg.rpartition(".")[0]
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    known = set(files)
    return {m: _imports(p, m, known) for m, p in files.items()}


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def test_no_module_of_predictors_imports_itself_through_others():
    graph = _graph()
    assert {"predictors", "predictors.registry", "predictors.base"} <= set(graph)
    circles = sorted(m for m in graph if m in _reach(graph, m))
    assert circles == [], f"modules that import themselves through others: {circles}"


def test_context_types_contract_base_import_one_way():
    graph = _graph()
    layers = ["predictors.context", "predictors.types", "predictors.contract", "predictors.base"]
    for i, low in enumerate(layers):
        for high in layers[i + 1 :]:
            assert high not in _reach(graph, low), f"{low} imports {high}"
    assert "predictors.context" in graph["predictors.types"]
    assert "predictors.contract" in graph["predictors.base"]


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from predictors.base import BasePredictor\n")
    assert _imports(src, "predictors.contract", {"predictors.base"}) == {"predictors.base"}
