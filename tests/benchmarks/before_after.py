"""The same whole `bench run` command from two source trees, timed back to back.

A change that claims "no slower" is measured with this script: it runs the command from each
tree in turn (a git commit checked out into a temporary worktree, or a folder), first a tiny
run in each to compile the modules, then ``--repeat`` times alternately, each run in a fresh
process (``e2e.launch``: bytecode cache on, peak memory read at exit), and prints the median
wall time of each and their ratio (after / before).

    python tests/benchmarks/before_after.py --before d7ff0c7 --after HEAD --repeat 3 -- \\
        --dataset synthetic --users 20000 --models bias,knn,mf,svdpp,mf-temporal
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import e2e  # noqa: E402

#: a tiny run that imports what a run imports (torch included), to compile each tree first
WARM_UP = [
    "run", "--dataset", "synthetic", "--users", "50", "--models", "user-mean,attention:epochs=1",
]


def _tree(spec: str, keep: list[Path]) -> Path:
    p = Path(spec)
    if p.is_dir():
        return p.resolve()
    folder = Path(tempfile.mkdtemp(prefix="before-after-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(folder), spec], check=True, capture_output=True
    )
    keep.append(folder)
    return folder


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", required=True)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("args", nargs=argparse.REMAINDER)
    ns = ap.parse_args()
    args = [a for a in ns.args if a != "--"]
    keep: list[Path] = []
    try:
        trees = {"before": _tree(ns.before, keep), "after": _tree(ns.after, keep)}
        times: dict[str, list[float]] = {"before": [], "after": []}
        peaks: dict[str, list[float]] = {"before": [], "after": []}
        for tree in trees.values():  # compiles the modules (as a user's install has them)
            with tempfile.TemporaryDirectory() as out:
                e2e.launch([*WARM_UP, "--out", out], tree=tree)
        for i in range(1, ns.repeat + 1):
            for name, tree in trees.items():
                with tempfile.TemporaryDirectory() as out:
                    r = e2e.launch(["run", *args, "--out", out], tree=tree)
                if r["returncode"] != 0:
                    print(r["stderr_tail"], file=sys.stderr)
                    return 1
                times[name].append(r["seconds"])
                peaks[name].append(r["peak_rss_mb"] or 0.0)
                peak = r["peak_rss_mb"]
                print(f"{name} run {i}: {r['seconds']:.1f} s, peak {peak} MB", flush=True)
        med = {k: statistics.median(v) for k, v in times.items()}
        for k in ("before", "after"):
            print(f"{k}: median {med[k]:.1f} s of {times[k]}, peak {max(peaks[k]):.0f} MB")
        print(f"after / before: {med['after'] / med['before']:.3f}")
    finally:
        for folder in keep:
            subprocess.run(["git", "worktree", "remove", "--force", str(folder)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
