"""pytest-benchmark: ratingbench against the research notebook's pipeline at the notebook's scale.

Run with::

    pytest tests/benchmarks/bench_scale.py -m benchmark -p no:cacheprovider

Data: the synthetic generator at the notebook's shape (200k users, ~13.6M ratings, 54k
movies) at 1/10, 1/4 and full size, written once per size (per session) to a parquet file
with the ratings columns ``userId, movieId, rating (float64), timestamp``, rows ordered by
``(userId, movieId)`` as MovieLens' files are (so both pipelines must sort by time).

Cases:

- ``test_load_split[size]``: load from parquet + leave-last-out split. ratingbench
  (``load_source`` = ``read_ratings`` + ``build_interactions``, then ``make_split``,
  ``train_set`` and every test batch) against the notebook (``pd.read_parquet`` +
  groupby/apply sequences + split loop), each measured in its own process by
  ``scale_child.py`` (wall and CPU seconds, peak RSS). ratingbench runs ``ROUNDS`` times
  (the median is used), the notebook once (it takes about a minute and > 3 GB at full size).
  Both must produce the same train/val/test counts and target-rating sums.
- ``test_cache_vs_parse``: at full size, ``load_interactions`` from a warm ``bench.data.cache``
  entry against parsing, and the whole load+split with the cache.
- ``test_predict_throughput[model]``: each baseline fitted once, then timed predicting
  every full-scale test query (200k users), in-process; queries/s and CPU seconds.
- ``test_report`` (last): prints the ratios and writes them to ``results/bench_scale.json``
  (atomically). Targets (reported, not asserted: the machine may be shared): load+split
  >= 20x faster than the notebook and peak RSS <= 1/3 of it at full size, near-linear
  growth (full / tenth <= 11), each baseline predicting 200k queries in < 1 s of CPU.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.fileio import atomic_write

pytestmark = pytest.mark.benchmark  # deselected from the default suite

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
CHILD = HERE / "scale_child.py"
RESULTS = REPO / "results" / "bench_scale.json"

# the notebook's data: 200,948 users, 13.7M ratings, 54.5k movies. RATINGBENCH_BENCH_USERS
# overrides the full size for a quick trial of the harness (the targets are for 200k).
FULL_USERS = int(os.environ.get("RATINGBENCH_BENCH_USERS", "200000"))
SIZES: dict[str, int] = {"tenth": FULL_USERS // 10, "quarter": FULL_USERS // 4, "full": FULL_USERS}
ROUNDS = 3  # ratingbench child runs per size (cheap); the notebook runs once
SEED = 0
BASELINES = ("global-mean", "user-mean", "recent-k", "bias")

TARGETS = {
    "speedup_min": 20.0,  # notebook time / ratingbench time at full size
    "rss_ratio_max": 1 / 3,  # ratingbench peak / notebook peak at full size
    "growth_max": 11.0,  # time(full) / time(tenth)
    "predict_cpu_max_s": 1.0,  # CPU seconds for all full-scale test queries
}

REPORT: dict[str, Any] = {"load_split": {}, "cache": {}, "predict": {}, "data": {}}


# --------------------------------------------------------------------------- data


def _write_parquet(n_users: int, path: Path) -> dict[str, Any]:
    """Generate the synthetic log for ``n_users`` and write it atomically to ``path``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench.data.synthetic import make_synthetic

    raw = make_synthetic(n_users=n_users, seed=SEED).raw
    order = np.lexsort((raw.item_id, raw.user_id))  # MovieLens' file order
    table = pa.table(
        {
            "userId": raw.user_id[order],
            "movieId": raw.item_id[order],
            "rating": raw.rating[order].astype(np.float64),
            "timestamp": raw.timestamp[order],
        }
    )
    info = {
        "n_users": int(np.unique(raw.user_id).size),
        "n_ratings": len(raw),
        "n_items": int(np.unique(raw.item_id).size),
        "parquet_mb": 0.0,
    }
    del raw, order
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    info["parquet_mb"] = path.stat().st_size / 2**20
    return info


@pytest.fixture(scope="session")
def parquet_for(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """``parquet_for(size) -> Path``: the synthetic parquet of a size, generated once."""
    folder = tmp_path_factory.mktemp("scale")
    made: dict[str, Path] = {}

    def get(size: str) -> Path:
        if size not in made:
            path = folder / f"synthetic-{size}.parquet"
            REPORT["data"][size] = _write_parquet(SIZES[size], path)
            made[size] = path
        return made[size]

    return get


def run_child(pipeline: str, path: Path, *extra: str) -> dict[str, Any]:
    """One measurement in a fresh process (see ``scale_child.py``)."""
    proc = subprocess.run(
        [sys.executable, str(CHILD), pipeline, str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=1800,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"scale_child {pipeline} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "seconds": statistics.median(r["seconds"] for r in runs),
        "cpu_seconds": statistics.median(r["cpu_seconds"] for r in runs),
        "peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
        "base_rss_mb": runs[0]["base_rss_mb"],
        "rounds": [{k: r[k] for k in ("seconds", "cpu_seconds", "peak_rss_mb")} for r in runs],
    }


# --------------------------------------------------------------------------- load + split


@pytest.mark.parametrize("size", list(SIZES))
def test_load_split(benchmark: Any, parquet_for: Any, size: str) -> None:
    path = parquet_for(size)
    runs: list[dict[str, Any]] = []

    def one() -> None:
        runs.append(run_child("ratingbench", path))

    benchmark.pedantic(one, rounds=ROUNDS, iterations=1)
    nb = run_child("notebook", path)
    rb = _summary(runs)
    # the same split: same number of targets and the same target ratings
    assert runs[0]["counts"] == nb["counts"], (runs[0]["counts"], nb["counts"])
    assert runs[0]["sums"] == pytest.approx(nb["sums"], rel=1e-12), (runs[0]["sums"], nb["sums"])
    REPORT["load_split"][size] = {
        "ratingbench": rb,
        "notebook": _summary([nb]),
        "counts": nb["counts"],
        "time_ratio": rb["seconds"] / nb["seconds"],
        "cpu_ratio": rb["cpu_seconds"] / nb["cpu_seconds"],
        "rss_ratio": rb["peak_rss_mb"] / nb["peak_rss_mb"],
    }
    benchmark.extra_info.update(
        size=size,
        **REPORT["data"][size],
        **{
            f"notebook_{k}": v
            for k, v in nb.items()
            if k in ("seconds", "cpu_seconds", "peak_rss_mb")
        },
        ratingbench_peak_rss_mb=rb["peak_rss_mb"],
    )


# --------------------------------------------------------------------------- cache


def test_cache_vs_parse(benchmark: Any, parquet_for: Any, tmp_path: Path) -> None:
    path = parquet_for("full")
    cache_dir = ["--cache-dir", str(tmp_path / "cache")]
    saved = run_child("cache-save", path, *cache_dir)
    parse = [run_child("parse", path) for _ in range(2)]
    loads: list[dict[str, Any]] = []

    def one() -> None:
        loads.append(run_child("cache-load", path, *cache_dir))

    benchmark.pedantic(one, rounds=ROUNDS, iterations=1)
    cached_split = run_child("ratingbench-cached", path, *cache_dir)
    assert {r["hash"] for r in [saved, *parse, *loads]} == {saved["hash"]}
    entry = next((tmp_path / "cache").glob("*.npz"))
    p, c = _summary(parse), _summary(loads)
    REPORT["cache"] = {
        "entry_mb": entry.stat().st_size / 2**20,
        "save_seconds": saved["seconds"],
        "parse": p,
        "cache_load": c,
        "load_speedup": p["seconds"] / c["seconds"],
        "load_cpu_speedup": p["cpu_seconds"] / c["cpu_seconds"],
        "load_split_cached": _summary([cached_split]),
    }
    benchmark.extra_info.update(
        entry_mb=REPORT["cache"]["entry_mb"],
        parse_seconds=p["seconds"],
        load_speedup=REPORT["cache"]["load_speedup"],
    )


# --------------------------------------------------------------------------- predict


@pytest.fixture(scope="module")
def full_queries(parquet_for: Any) -> Any:
    """(TrainSet, [HistoryBatch]) of the full-scale split, built once."""
    from bench.data.loading import DataSource, load_source
    from bench.data.split import make_split

    inter = load_source(DataSource(dataset=None, ratings=parquet_for("full"))).interactions
    split = make_split(inter)
    train = split.train_set(inter)
    batches = [b for _, b in split.test_batches(inter)]
    return train, batches


@pytest.mark.parametrize("model", BASELINES)
def test_predict_throughput(benchmark: Any, full_queries: Any, model: str) -> None:
    from predictors.registry import create

    train, batches = full_queries
    n = sum(len(b) for b in batches)
    t0 = time.perf_counter()
    predictor = create(model, context={"seed": 0}).fit(train)
    fit_s = time.perf_counter() - t0
    cpu: list[float] = []
    wall: list[float] = []

    def predict_all() -> None:
        w0, c0 = time.perf_counter(), time.process_time()
        out = [predictor.predict(b) for b in batches]
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
        assert sum(o.shape[0] for o in out) == n
        assert all(np.isfinite(o).all() for o in out)

    benchmark.pedantic(predict_all, rounds=5, iterations=1, warmup_rounds=1)
    cpu, wall = cpu[1:], wall[1:]  # drop the warm-up round
    REPORT["predict"][model] = {
        "n_queries": n,
        "fit_seconds": fit_s,
        "seconds": statistics.median(wall),
        "cpu_seconds": statistics.median(cpu),
        "queries_per_s": n / statistics.median(wall),
    }
    benchmark.extra_info.update(REPORT["predict"][model])


# --------------------------------------------------------------------------- report


def _ratios() -> dict[str, Any]:
    ls = REPORT["load_split"]
    out: dict[str, Any] = {}
    if "full" in ls:
        full = ls["full"]
        out["full_speedup"] = 1.0 / full["time_ratio"]
        out["full_cpu_speedup"] = 1.0 / full["cpu_ratio"]
        out["full_rss_ratio"] = full["rss_ratio"]
    if "full" in ls and "tenth" in ls:
        for who in ("ratingbench", "notebook"):
            out[f"growth_{who}"] = ls["full"][who]["seconds"] / ls["tenth"][who]["seconds"]
            out[f"growth_{who}_cpu"] = (
                ls["full"][who]["cpu_seconds"] / ls["tenth"][who]["cpu_seconds"]
            )
    return out


def _targets(r: dict[str, Any]) -> dict[str, bool | None]:
    pred = REPORT["predict"]
    return {
        "speedup": None if "full_speedup" not in r else r["full_speedup"] >= TARGETS["speedup_min"],
        "peak_rss": None
        if "full_rss_ratio" not in r
        else r["full_rss_ratio"] <= TARGETS["rss_ratio_max"],
        "growth": None
        if "growth_ratingbench" not in r
        else r["growth_ratingbench"] <= TARGETS["growth_max"],
        "predict": None
        if not pred
        else all(p["cpu_seconds"] < TARGETS["predict_cpu_max_s"] for p in pred.values()),
    }


def _table(r: dict[str, Any]) -> str:
    lines = ["", "ratingbench vs notebook (load parquet + leave-last-out split)"]
    lines.append(
        f"{'size':8s} {'ratings':>11s} {'rb s':>7s} {'nb s':>7s} {'nb/rb':>6s} {'cpu x':>6s} "
        f"{'rb MB':>7s} {'nb MB':>7s} {'rb/nb':>6s}"
    )
    for size, row in REPORT["load_split"].items():
        rb, nb = row["ratingbench"], row["notebook"]
        lines.append(
            f"{size:8s} {REPORT['data'][size]['n_ratings']:>11,d} {rb['seconds']:7.2f} "
            f"{nb['seconds']:7.2f} {1 / row['time_ratio']:6.1f} {1 / row['cpu_ratio']:6.1f} "
            f"{rb['peak_rss_mb']:7.0f} {nb['peak_rss_mb']:7.0f} {row['rss_ratio']:6.2f}"
        )
    for who in ("ratingbench", "notebook"):
        if f"growth_{who}" in r:
            lines.append(
                f"growth full/tenth {who}: {r[f'growth_{who}']:.2f} (wall), "
                f"{r[f'growth_{who}_cpu']:.2f} (cpu)"
            )
    c = REPORT["cache"]
    if c:
        lines.append(
            f"cache: parse {c['parse']['seconds']:.2f} s / {c['parse']['peak_rss_mb']:.0f} MB, "
            f"load {c['cache_load']['seconds']:.2f} s / {c['cache_load']['peak_rss_mb']:.0f} MB "
            f"({c['load_speedup']:.1f}x), load+split with cache "
            f"{c['load_split_cached']['seconds']:.2f} s / "
            f"{c['load_split_cached']['peak_rss_mb']:.0f} MB, entry {c['entry_mb']:.0f} MB"
        )
    for model, p in REPORT["predict"].items():
        lines.append(
            f"predict {model:12s} {p['n_queries']:,d} queries: {p['seconds']:.3f} s wall, "
            f"{p['cpu_seconds']:.3f} s cpu, {p['queries_per_s']:,.0f} q/s "
            f"(fit {p['fit_seconds']:.2f} s)"
        )
    lines.append(f"targets met: {_targets(r)}")
    return "\n".join(lines)


def write_report(path: Path = RESULTS) -> dict[str, Any]:
    """Write ``REPORT`` plus ratios to ``path`` atomically (temp file + ``os.replace``)."""
    r = _ratios()
    doc = {
        "schema": "ratingbench/bench_scale/1",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_avg_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        },
        "sizes": SIZES,
        "targets": TARGETS,
        **REPORT,
        "ratios": r,
        "targets_met": _targets(r),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))
    return doc


def test_report(benchmark: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Last in the file, so that it sees every case of the session (a benchmark itself, so
    that ``--benchmark-only`` keeps it)."""
    if not any(REPORT[k] for k in ("load_split", "cache", "predict")):
        pytest.skip("no scale case ran in this session")
    doc = benchmark.pedantic(write_report, rounds=1, iterations=1)
    with capsys.disabled():
        print(_table(doc["ratios"]))
        print(f"written: {RESULTS.relative_to(REPO)}")
