"""The harness's modules import one another without a circle through the embeddings package,
the loader, the synthetic generator or the run's layers (runner, plan, executors, scoring,
results, checkpoints) (imports inside functions count; those under
``if TYPE_CHECKING:`` do not, as they never run)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench"
WATCHED = (
    "bench.embeddings",
    "bench.data.loading",
    "bench.data.synthetic",
    # the run's own layers: none of them may reach itself through the others
    "bench.runner",
    "bench.plan",
    "bench.executors",
    "bench.scoring",
    "bench.results",
    "bench.checkpoints",
)
# Edges that close a circle today, left out until their owner removes them (then the ratchet
# test below fails: delete the entry).
KNOWN: set[tuple[str, str]] = set()


def _module(path: Path) -> str:
    parts = path.relative_to(BENCH.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(tree: ast.AST, here: str, known: set[str]) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in known:  # bench.embeddings.cache.cached_build -> its module
                n = n.rpartition(".")[0]
            if n and n != here:
                out.add(n)
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in BENCH.rglob("*.py")}
    known = set(files)
    graph = {m: _imports(ast.parse(p.read_text()), m, known) for m, p in files.items()}
    for m in known:  # importing a module runs its packages' __init__ first
        for dep in list(graph[m]):
            pkg = dep.rpartition(".")[0]
            while pkg and pkg != "bench":
                if pkg != m and not m.startswith(pkg + "."):
                    graph[m].add(pkg)
                pkg = pkg.rpartition(".")[0]
    return graph


def _reach(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph.get(m, ()))
    return seen


def test_no_import_circle_through_the_watched_layers():
    graph = _graph()
    for a, b in KNOWN:
        graph[a].discard(b)
    watched = [m for m in graph if m.startswith(WATCHED)]
    assert "bench.embeddings.prepare" in watched and "bench.data.loading" in watched
    circles = sorted(m for m in watched if m in _reach(graph, m))
    assert circles == [], f"modules that import themselves through others: {circles}"


def test_known_circle_edges_still_exist():
    graph = _graph()
    assert [e for e in sorted(KNOWN) if e[1] not in graph[e[0]]] == []


def test_the_checker_sees_a_circle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert "a" in _reach(graph, "a") and "d" not in _reach(graph, "d")
