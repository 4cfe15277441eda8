"""pytest-benchmark: fit and predict time of the classic models (bias, knn, mf, svdpp,
mf-temporal) at a chosen scale, with their validation RMSE.

Each model is built, fitted and asked to predict the way the runner does it
(``registry.create`` with the run's seed, BLAS limited to one thread, the run's shared
``TrainSet``), each in its own child process so that its peak RSS is its own. Only
validation figures are computed: prediction is timed on the test queries (in the runner's
chunks) but never scored, so tuning choices are never seen against test truth.

Run as a script (one process per model; prints a table and writes JSON lines)::

    python tests/benchmarks/bench_classic.py --users 20000          # one tenth scale
    python tests/benchmarks/bench_classic.py --users 200000 --models mf
    python tests/benchmarks/bench_classic.py --dataset ml-latest-small --protocol notebook

or under pytest (``RATINGBENCH_BENCH_USERS`` sets the synthetic scale, default 20000)::

    pytest -m benchmark tests/benchmarks/bench_classic.py -s

Columns: ``fit_s``/``predict_s`` wall seconds, ``fit_cpu_s``/``predict_cpu_s`` process CPU
seconds, ``val_rmse`` the model's own validation RMSE (the fit report's ``val_rmse``, measured
before any refit), ``peak_rss_mb`` the child's peak resident memory (``ru_maxrss``: data
loading included). Results go to ``results/bench_classic.json`` (atomically).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.benchmark  # deselected from the default suite

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "results" / "bench_classic.json"
MODELS = ("bias", "knn", "mf", "svdpp", "mf-temporal")


def measure(dataset: str, users: int, protocol: str, model: str, seed: int = 0) -> dict[str, Any]:
    """Load, split, fit ``model`` and predict every test query (unscored), in this process."""
    from rich.console import Console
    from threadpoolctl import threadpool_limits

    from bench.data.loading import DataSource
    from bench.data.split import PROTOCOLS
    from bench.runner import prepare
    from bench.spec import RunSpec
    from predictors.contract import RunContext
    from predictors.registry import create, parse_spec

    data_dir = os.environ.get("RATINGBENCH_DATA_DIR")
    source = DataSource(
        dataset=dataset, users=users, data_dir=Path(data_dir) if data_dir else None
    )
    spec = RunSpec(source=source, split=PROTOCOLS[protocol], models=(parse_spec(model),))
    prep = prepare(spec, Console(quiet=True))
    inter = prep.loaded.interactions
    emb = next(iter(prep.embeddings.values()), None)
    train = prep.split.train_set(inter, embeddings=emb, context=RunContext(seed=seed, device="cpu"))
    with threadpool_limits(limits=1, user_api="blas"):
        m = create(parse_spec(model))
        w0, c0 = time.perf_counter(), time.process_time()
        m.fit(train)
        fit_s, fit_cpu = time.perf_counter() - w0, time.process_time() - c0
        w0, c0 = time.perf_counter(), time.process_time()
        n_pred = 0
        for _, batch in prep.split.test_batches(inter, 50_000):
            n_pred += len(m.predict(batch))
        pred_s, pred_cpu = time.perf_counter() - w0, time.process_time() - c0
    info = dict(m.fit_report_.settings)
    val = info.get("val_rmse")
    brief = {k: v for k, v in info.items() if not isinstance(v, list | dict)}
    return {
        "model": model,
        "dataset": dataset if dataset != "synthetic" else f"synthetic-{users}",
        "protocol": protocol,
        "ratings": len(inter),
        "fit_events": int(train.events.n_events),
        "train_targets": int(train.train_pos.size),
        "val_queries": len(train.val.batch),
        "fit_s": round(fit_s, 2),
        "fit_cpu_s": round(fit_cpu, 2),
        "predict_s": round(pred_s, 2),
        "predict_cpu_s": round(pred_cpu, 2),
        "n_predicted": n_pred,
        "val_rmse": None if val is None else round(float(val), 4),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "fit_info": brief,
        "timings": info.get("timings"),
    }


def run_child(dataset: str, users: int, protocol: str, model: str) -> dict[str, Any]:
    """``measure`` in a fresh interpreter (its own peak RSS); returns its JSON line."""
    cmd = [sys.executable, __file__, "--child", "--dataset", dataset, "--users", str(users)]
    cmd += ["--protocol", protocol, "--models", model]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return {"model": model, "error": out.stderr.strip().splitlines()[-1:]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(rows: list[dict[str, Any]]) -> str:
    cols = ("model", "fit_s", "fit_cpu_s", "predict_s", "predict_cpu_s", "val_rmse", "peak_rss_mb")
    lines = [" | ".join(f"{c:>13}" for c in cols)]
    for r in rows:
        lines.append(" | ".join(f"{r.get(c, r.get('error', '')).__str__():>13}" for c in cols))
    return "\n".join(lines)


def _write(rows: list[dict[str, Any]]) -> None:
    from bench.fileio import atomic_write

    OUT.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(OUT, lambda tmp: tmp.write_text(json.dumps(rows, indent=1) + "\n"))


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return []


@pytest.mark.parametrize("model", MODELS)
def test_classic_fit_predict(benchmark: Any, rows: list[dict[str, Any]], model: str) -> None:
    users = int(os.environ.get("RATINGBENCH_BENCH_USERS", "20000"))
    row = benchmark.pedantic(
        run_child, args=("synthetic", users, "default", model), rounds=1, iterations=1
    )
    assert "error" not in row, row
    rows.append(row)
    benchmark.extra_info.update({k: row[k] for k in ("fit_s", "predict_s", "val_rmse")})
    if len(rows) == len(MODELS):
        _write(rows)
        print("\n" + table(rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--users", type=int, default=20_000, help="synthetic users (200000: full)")
    ap.add_argument("--protocol", default="default", choices=("default", "notebook"))
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--log", type=Path, help="also append each JSON line to this file")
    a = ap.parse_args()
    models = [m for m in a.models.split(",") if m]
    if a.child:
        print(json.dumps(measure(a.dataset, a.users, a.protocol, models[0])))
        return
    rows = []
    for m in models:
        row = run_child(a.dataset, a.users, a.protocol, m)
        rows.append(row)
        print(json.dumps(row), flush=True)
        if a.log is not None:
            with a.log.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(rows))
    _write(rows)


if __name__ == "__main__":
    main()
