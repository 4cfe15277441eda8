"""The structure of the code: no module of ``bench/`` or ``predictors/`` imports itself
through others, and none is longer than 600 lines.

The import graph has an edge from a module to every module it imports, wherever the
import stands: at the top, inside a function, or as ``importlib.import_module("literal")``.
Imports under ``if TYPE_CHECKING:`` are left out: they never run. Importing ``a.b.c``
also runs ``a/__init__`` and ``a/b/__init__``, so it adds edges to those packages, except
to the packages of the importing module itself (they are always initialised first, so that
edge holds no information). ``from a.b import c`` is an edge to the module ``a.b.c`` when
there is one, else to ``a.b``. There is no list of tolerated circles.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TREES = ("bench", "predictors")
MAX_LINES = 600


def _module(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, here: str, is_package: bool) -> set[str]:
    """The dotted names that the module ``here`` imports (what they name, not yet resolved
    to modules)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            node.body = []  # the else branch (if any) runs
    package = here if is_package else here.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 packages
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            out.update(f"{base}.{a.name}\0{base}" for a in node.names if a.name != "*")
            if any(a.name == "*" for a in node.names):
                out.add(base)
        elif (
            isinstance(node, ast.Call)
            and (
                (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
                or (isinstance(node.func, ast.Name) and node.func.id == "import_module")
            )
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            out.add(node.args[0].value)
    return out


def _resolve(name: str, known: set[str]) -> set[str]:
    """The modules that an imported name reaches: ``x.y`` if it is a module, else its nearest
    enclosing module (``import x.y.f`` where ``f`` is not a module). ``from BASE import NAME``
    reaches BASE (the name is looked up there first, so BASE runs even when it is the
    importer's own package) and the module BASE.NAME if there is one."""
    out: set[str] = set()
    if "\0" in name:
        full, name = name.split("\0")
        if full in known:
            out.add(full)
    while name and name not in known:
        name = name.rpartition(".")[0]
    if name:
        out.add(name)
    return out


def import_graph(root: Path, trees: tuple[str, ...] = TREES) -> dict[str, set[str]]:
    """Module -> the modules (of ``trees`` under ``root``) that importing it runs directly."""
    files = {_module(p, root): p for t in trees for p in sorted((root / t).rglob("*.py"))}
    known = set(files)
    graph: dict[str, set[str]] = {}
    for m, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        deps: set[str] = set()
        for name in _imported(tree, m, path.name == "__init__.py"):
            for dep in _resolve(name, known):  # none: outside the trees (numpy...)
                deps.add(dep)
                pkg = dep.rpartition(".")[0]
                while pkg:  # importing a.b.c runs a/__init__ and a/b/__init__ first
                    if not (m == pkg or m.startswith(pkg + ".")):
                        deps.add(pkg)
                    pkg = pkg.rpartition(".")[0]
        deps.discard(m)
        graph[m] = deps
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm,
    iterative), each sorted, in sorted order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            v, children = work[-1]
            for w in children:
                if w not in graph:
                    continue
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    component = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        component.append(w)
                        if w == v:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return sorted(found)


def shortest_cycle(graph: dict[str, set[str]], start: str) -> list[str]:
    """One shortest path from ``start`` back to itself (breadth first), for the message."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt: list[str] = []
        for v in frontier:
            for w in sorted(graph.get(v, ())):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in parent:
                    parent[w] = v
                    nxt.append(w)
        frontier = nxt
    return []


def _describe(graph: dict[str, set[str]], found: list[list[str]]) -> str:
    lines = [f"{len(found)} import circle(s) (one line per strongly connected component):"]
    for component in found:
        example = " -> ".join(shortest_cycle(graph, component[0]))
        lines.append(f"  [{len(component)}] {', '.join(component)}   (e.g. {example})")
    return "\n".join(lines)


def test_no_import_circle_in_bench_or_predictors() -> None:
    graph = import_graph(ROOT)
    for expected in ("bench.data.loading", "bench.embeddings.prepare", "predictors.registry"):
        assert expected in graph  # the walk found both trees
    found = circles(graph)
    assert found == [], _describe(graph, found)


def test_no_module_is_longer_than_600_lines() -> None:
    long: dict[str, int] = {}
    for t in TREES:
        for p in sorted((ROOT / t).rglob("*.py")):
            n = len(p.read_text(encoding="utf-8").splitlines())
            if n > MAX_LINES:
                long[str(p.relative_to(ROOT))] = n
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


# --------------------------------------------------------------------------- the checker


def test_the_checker_sees_a_circle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e2"}, "e2": {"e"}}
    assert circles(graph) == [["a", "b", "c"], ["e", "e2"]]
    assert shortest_cycle(graph, "a") == ["a", "b", "c", "a"]
    assert circles({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []
    assert "[3] a, b, c   (e.g. a -> b -> c -> a)" in _describe(graph, circles(graph))


def _toy(root: Path, files: dict[str, str]) -> dict[str, set[str]]:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return import_graph(root, ("pkg",))


def test_the_checker_reads_imports_as_python_runs_them(tmp_path: Path) -> None:
    graph = _toy(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.sub import thing\n",
            "pkg/sub/__init__.py": "",
            "pkg/sub/thing.py": (
                "from typing import TYPE_CHECKING\n"
                "if TYPE_CHECKING:\n    from pkg import late\n"
                "def f():\n    from . import sibling\n    import pkg.other.deep\n"
            ),
            "pkg/sub/sibling.py": "import numpy\nfrom pkg.lazy import name_in_lazy\n",
            "pkg/other/__init__.py": "",
            "pkg/other/deep.py": "",
            "pkg/late.py": "import pkg\n",
            "pkg/lazy.py": "import importlib\nimportlib.import_module('pkg.late')\n",
        },
    )
    assert graph["pkg"] == {"pkg.sub", "pkg.sub.thing"}
    # in a function: counted; under TYPE_CHECKING: not; a.b.c implies a.b (not its own
    # package, which has run already)
    # ``from . import sibling`` looks ``sibling`` up in its own package first: counted
    assert graph["pkg.sub.thing"] == {"pkg.sub", "pkg.sub.sibling", "pkg.other.deep", "pkg.other"}
    assert graph["pkg.sub.sibling"] == {"pkg.lazy"}
    assert graph["pkg.lazy"] == {"pkg.late"}
    assert graph["pkg.late"] == {"pkg"}
    # the package __init__ imports its submodule, which leads back to the package
    assert circles(graph) == [["pkg", "pkg.late", "pkg.lazy", "pkg.sub.sibling", "pkg.sub.thing"]]


@pytest.mark.parametrize(
    "text",
    ["from pkg import helper\n", "from pkg import *\n", "import pkg.other\n"],
)
def test_a_submodule_importing_from_its_package_closes_a_circle(tmp_path: Path, text: str) -> None:
    graph = _toy(
        tmp_path,
        {
            "pkg/__init__.py": "from pkg.util import helper\nVALUE = 1\n",
            "pkg/util.py": "def helper():\n    import pkg.mod\n",
            "pkg/mod.py": text,
            "pkg/other.py": "",
        },
    )
    if "pkg.other" in text:  # its own package is implied, not counted
        assert circles(graph) == []
    else:
        assert circles(graph) == [["pkg", "pkg.mod", "pkg.util"]]
