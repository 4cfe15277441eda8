"""Fit every built-in model at two commits and compare what they learned, byte for byte.

A refactoring that claims "nothing changes for users" is checked with this script: it runs the
same `bench run` commands from two source trees (a git commit checked out into a temporary
worktree, or a folder) and compares, model by model, the test predictions and fallback flags
of the predictions sidecar (as raw bytes), and each record's status, config, ``fit_info``
(validation RMSE, tuning grid, learning curve), fallback count and metrics.

    python tests/benchmarks/bitwise.py run --tree COMMIT_OR_DIR --out DIR [--quick]
    python tests/benchmarks/bitwise.py diff DIR_A DIR_B

``run`` uses this interpreter with the tree first on ``sys.path``; ``diff`` exits 1 on the
first difference it finds (and lists every difference).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

#: the runs compared: every built-in on real data, and on synthetic data with several test
#: targets, two seeds and a second embedding
RUNS: dict[str, list[str]] = {
    "small": ["--dataset", "ml-latest-small", "--models", "all"],
    "synthetic": [
        "--dataset", "synthetic", "--users", "150", "--models", "all",
        "--seeds", "0,1", "--test-targets", "2", "--embedding", "genre,random",
    ],
}
QUICK: dict[str, list[str]] = {
    "synthetic": RUNS["synthetic"],
}
#: per-model fields whose values must be equal (timings, memory and hosts may differ)
FIELDS = ("key", "status", "error", "config", "fit_info", "fallbacks", "metrics", "options")


def _tree(spec: str, keep: list[tempfile.TemporaryDirectory[str]]) -> Path:
    p = Path(spec)
    if p.is_dir():
        return p.resolve()
    tmp = tempfile.TemporaryDirectory(prefix="bitwise-")
    keep.append(tmp)
    subprocess.run(
        ["git", "worktree", "add", "--detach", tmp.name, spec],
        check=True, capture_output=True,
    )
    return Path(tmp.name)


def run(tree_spec: str, out: Path, quick: bool) -> None:
    keep: list[tempfile.TemporaryDirectory[str]] = []
    tree = _tree(tree_spec, keep)
    try:
        for name, args in (QUICK if quick else RUNS).items():
            dest = out / name
            dest.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, "PYTHONPATH": str(tree)}
            cmd = [sys.executable, "-m", "bench.cli", "run", *args, "--out", str(dest)]
            print("+", " ".join(cmd), f"(in {tree})", flush=True)
            subprocess.run(cmd, cwd=tree, env=env, check=True, stdout=subprocess.DEVNULL)
    finally:
        if keep:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], check=False)


def _untimed(v: Any) -> Any:
    """``v`` without wall-clock timings (keys ending in ``_s`` or ``seconds``), recursively:
    a model's ``fit_info`` records how long its tuning took beside what it chose."""
    if isinstance(v, dict):
        return {
            k: _untimed(x) for k, x in v.items() if not (k.endswith("_s") or "seconds" in k)
        }
    if isinstance(v, list):
        return [_untimed(x) for x in v]
    return v


def _load(folder: Path) -> tuple[dict[str, Any], pd.DataFrame]:
    (path,) = sorted(folder.glob("*.json"))
    doc = json.loads(path.read_text())
    frame = pd.read_parquet(folder / doc["predictions_file"])
    return doc, frame


def diff(a: Path, b: Path) -> int:
    problems: list[str] = []
    for name in sorted(p.name for p in a.iterdir() if p.is_dir()):
        da, fa = _load(a / name)
        db, fb = _load(b / name)
        if da["split"]["hash"] != db["split"]["hash"]:
            problems.append(f"{name}: split hash {da['split']['hash']} != {db['split']['hash']}")
        if list(fa.columns) != list(fb.columns):
            problems.append(f"{name}: sidecar columns differ: {list(fa.columns)} / {list(fb)}")
        for col in fa.columns:
            if col in fb.columns:
                x, y = np.asarray(fa[col]), np.asarray(fb[col])
                if x.dtype != y.dtype or x.tobytes() != y.tobytes():
                    problems.append(f"{name}: sidecar column {col} differs")
        ma = {m["key"]: m for m in da["models"]}
        mb = {m["key"]: m for m in db["models"]}
        if list(ma) != list(mb):
            problems.append(f"{name}: model keys differ: {list(ma)} / {list(mb)}")
        for key in ma.keys() & mb.keys():
            for f in FIELDS:
                if _untimed(ma[key].get(f)) != _untimed(mb[key].get(f)):
                    problems.append(f"{name}: {key}: {f} differs")
        n = len([c for c in fa.columns if c.startswith("pred:")])
        print(f"{name}: {len(ma)} model runs, {n} prediction columns, {len(fa)} queries compared")
    for p in problems:
        print("DIFF", p)
    print("identical" if not problems else f"{len(problems)} difference(s)")
    return 1 if problems else 0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--tree", required=True)
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--quick", action="store_true")
    d = sub.add_parser("diff")
    d.add_argument("a", type=Path)
    d.add_argument("b", type=Path)
    ns = ap.parse_args()
    if ns.cmd == "run":
        run(ns.tree, ns.out, ns.quick)
    else:
        sys.exit(diff(ns.a, ns.b))


if __name__ == "__main__":
    main()
