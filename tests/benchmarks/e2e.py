"""Whole `bench run` commands at the notebook's scale, timed from outside as a user types them.

Used by ``bench_e2e.py`` (pytest-benchmark cases) and runnable on its own::

    python tests/benchmarks/e2e.py data --users 200000 --out FOLDER    # the synthetic file
    python tests/benchmarks/e2e.py run FOLDER/ratings-200000.parquet --models all \
        --embedding FOLDER/embeddings-200000.parquet

``run`` launches ``bench run`` in a fresh Python process (``launch``), so the time includes
interpreter start, imports, loading, splitting, every model, the statistics and the writing
of the results, and it reports that process's own peak resident memory (``VmHWM`` read at
exit; ``ru_maxrss`` of a child is wrong after vfork, see ``scale_child.py``). It prints a
per-model table (fit, predict, validation RMSE) read from the results file the run wrote.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]

# Runs ``bench.cli.main`` with argv[1:] in this process and, at exit (click ends with
# sys.exit), prints the process's peak RSS as the last stderr line.
_LAUNCHER = """
import atexit, json, sys
def _peak():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    mb = int(line.split()[1]) / 1024.0
                    print("E2E_PEAK " + json.dumps({"peak_rss_mb": mb}), file=sys.stderr)
    except OSError:
        pass
atexit.register(_peak)
from bench.cli import main
sys.argv = ["bench", *sys.argv[1:]]
main()
"""


def write_data(n_users: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """The synthetic log at ``n_users`` (the generator of ``bench --dataset synthetic``) as a
    MovieLens-shaped parquet file ``ratings-N.parquet`` in ``folder``, and its 300-d movie
    embeddings in the notebook's format (``embeddings-N.parquet``: ``movieId``,
    ``embedding``), for the models that need them; reused when present."""
    sys.path.insert(0, str(HERE))
    import bench_scale

    from bench.data.synthetic import make_synthetic, write_embeddings_parquet

    path = Path(folder) / f"ratings-{n_users}.parquet"
    emb = Path(folder) / f"embeddings-{n_users}.parquet"
    if not path.exists():
        bench_scale._write_parquet(n_users, path)
    if not emb.exists():
        write_embeddings_parquet(make_synthetic(n_users=n_users, seed=bench_scale.SEED), emb)
    return path, emb


def launch(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 7200,
    tree: Path = REPO,
) -> dict:
    """Run ``bench ARGS`` in a fresh process, with the package of the source ``tree`` (default:
    this checkout); returns wall and CPU seconds, the peak RSS, the exit code and the results
    file it wrote (the last ``results: PATH`` line).

    The child keeps Python's bytecode cache on, as a user's install does (pip compiles the
    packages it installs; an editable install compiles on first import), even when this
    environment sets ``PYTHONDONTWRITEBYTECODE``: otherwise every command would also pay for
    compiling the project's modules again."""
    child_env = {**os.environ, **(env or {}), "PYTHONPATH": str(tree)}
    child_env.pop("PYTHONDONTWRITEBYTECODE", None)
    t0 = time.perf_counter()
    started = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-c", _LAUNCHER, *args],
        cwd=tree,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    seconds = time.perf_counter() - t0
    peak = None
    for line in err.splitlines():
        if line.startswith("E2E_PEAK "):
            peak = json.loads(line[len("E2E_PEAK ") :])["peak_rss_mb"]
    # the results file: the newest JSON in --out (the console wraps long paths)
    out_dir = Path(args[args.index("--out") + 1]) if "--out" in args else tree / "results"
    found = sorted(out_dir.glob("*.json"), key=lambda p: p.stat().st_mtime)
    results = str(found[-1]) if found and found[-1].stat().st_mtime >= started else None
    return {
        "args": args,
        "returncode": proc.returncode,
        "seconds": seconds,
        "peak_rss_mb": peak,
        "results": results,
        "stderr_tail": err[-3000:],
        "stdout_tail": out[-3000:],
    }


def model_table(results: str | Path) -> list[dict[str, Any]]:
    """One row per model of a results file: fit and predict seconds, validation RMSE, peak
    RSS while it ran, status. Test figures are left out on purpose: these rows are for
    timing, and the table of test RMSEs is the run's own output."""
    doc = json.loads(Path(results).read_text())
    rows = []
    for m in doc["models"]:
        t = m.get("timings") or {}
        rows.append(
            {
                "model": m["key"],
                "status": m["status"],
                "fit_s": t.get("fit_s"),
                "predict_s": t.get("predict_s"),
                "val_rmse": m.get("val_rmse"),
                "peak_rss_mb": (m.get("memory") or {}).get("peak_rss_mb"),
                "error": m.get("error"),
            }
        )
    return rows


def _fmt(v: Any, spec: str) -> str:
    return "–" if v is None else format(v, spec)


def print_run(r: dict[str, Any]) -> None:
    print(f"bench {' '.join(r['args'])}")
    print(
        f"  exit {r['returncode']}, {r['seconds']:.1f} s wall, peak "
        f"{_fmt(r['peak_rss_mb'], '.0f')} MB"
    )
    if r["results"] is None:
        print(r["stderr_tail"])
        return
    doc = json.loads(Path(r["results"]).read_text())
    print(f"  run timings: {json.dumps({k: round(v, 2) for k, v in doc['timings'].items()})}")
    print("| model | status | fit s | predict s | val RMSE | peak MB |")
    print("|---|---|---|---|---|---|")
    for row in model_table(r["results"]):
        print(
            f"| {row['model']} | {row['status']} | {_fmt(row['fit_s'], '.1f')} | "
            f"{_fmt(row['predict_s'], '.1f')} | {_fmt(row['val_rmse'], '.4f')} | "
            f"{_fmt(row['peak_rss_mb'], '.0f')} |"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("data", help="write the synthetic ratings file")
    d.add_argument("--users", type=int, default=200_000)
    d.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()))
    r = sub.add_parser("run", help="time `bench run --ratings FILE ...` end to end")
    r.add_argument("ratings", type=Path)
    r.add_argument("rest", nargs=argparse.REMAINDER, help="further `bench run` options")
    r.add_argument(
        "--json", type=Path, default=None, help="also write the measurement here (before FILE)"
    )
    args = ap.parse_args(argv)
    if args.cmd == "data":
        print(*write_data(args.users, args.out))
        return 0
    out_dir = Path(tempfile.mkdtemp(prefix="e2e-"))
    res = launch(["run", "--ratings", str(args.ratings), "--out", str(out_dir), *args.rest])
    print_run(res)
    if args.json is not None:
        res["models"] = model_table(res["results"]) if res["results"] else []
        args.json.write_text(json.dumps(res, indent=2))
    return 0 if res["returncode"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
