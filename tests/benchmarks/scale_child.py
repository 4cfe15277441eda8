"""Measure one load+split pipeline in a fresh process: ``scale_child.py PIPELINE PATH``.

Prints one JSON object on stdout: ``seconds`` (wall) and ``cpu_seconds`` of the pipeline
(imports excluded), ``peak_rss_mb`` (the process's peak resident set, imports included),
``base_rss_mb`` (resident set after the imports), and ``counts``/``sums`` of the
train/val/test targets so that the caller can check that both pipelines built the same
split. One process per measurement so that peaks do not mix.

Pipelines:

- ``notebook``: the notebook's pandas read, groupby/apply sequences and split loop;
- ``ratingbench``: ``load_source`` (``read_ratings`` + ``build_interactions``),
  ``make_split``, ``train_set`` and every test batch;
- ``parse``: ``load_source`` only; ``cache-save``: parse then ``save_interactions``;
- ``cache-load``: ``load_interactions`` only (needs a ``cache-save`` first);
- ``ratingbench-cached``: ``ratingbench`` with the Interactions from the cache.

``--cache-dir DIR`` selects the cache folder (default: ``bench.data.cache.default_cache_dir``).

Peak memory: on Linux this is ``VmHWM`` from ``/proc/self/status``. ``getrusage(
RUSAGE_SELF).ru_maxrss`` is also reported, but it is wrong in a subprocess: when the
parent spawns the child with vfork+exec (CPython does), the kernel records the *parent's*
high-water mark into the child's ``ru_maxrss`` at exec, so a 10 MB child of a 2 GB pytest
process reports 1.9 GB. ``VmHWM`` belongs to the child's own address space.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for p in (str(REPO), str(HERE)):
    if p not in sys.path:
        sys.path.insert(0, p)

PIPELINES = ("notebook", "ratingbench", "ratingbench-cached", "parse", "cache-save", "cache-load")


def _status_mb(field: str) -> float | None:
    """A ``/proc/self/status`` memory field (``VmHWM``, ``VmRSS``) in MiB, or None."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def _maxrss_mb() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return r / 2**20 if sys.platform == "darwin" else r / 1024.0  # bytes on macOS, KiB else


def _notebook(path: Path, cache_dir: Path | None) -> dict[str, Any]:
    import notebook_pipeline as nb

    train, val, test = nb.notebook_load_split(path)
    return {
        "counts": {"train": len(train), "val": len(val), "test": len(test)},
        "_sums": lambda: {
            name: float(sum(d[3] for d in data))
            for name, data in (("train", train), ("val", val), ("test", test))
        },
    }


def _parse(path: Path) -> Any:
    from bench.data.loading import DataSource, load_source

    return load_source(DataSource(dataset=None, ratings=path, cache=False)).interactions


def _from_cache(path: Path, cache_dir: Path | None) -> Any:
    from bench.data.cache import load_interactions, source_key

    inter = load_interactions(source_key(path), cache_dir)
    if inter is None:
        raise SystemExit(f"no cache entry for {path.name}: run the cache-save pipeline first")
    return inter


def _split_all(inter: Any) -> dict[str, Any]:
    from bench.data.split import make_split

    split = make_split(inter)
    train = split.train_set(inter)
    n_hist = 0
    n_test = 0
    for _, batch in split.test_batches(inter):
        n_test += len(batch)
        n_hist += int(batch.hist_offsets[-1])
    c = split.counts()
    assert n_test == c["test"]

    def sums() -> dict[str, float]:
        r = inter.rating.astype("float64")
        return {
            "train": float(train.events.rating[train.train_pos].astype("float64").sum()),
            "val": float(train.val.rating.astype("float64").sum()),
            "test": float(r[split.test_pos].sum()),
        }

    return {
        "counts": {"train": c["train"], "val": c["val"], "test": c["test"]},
        "n_history_rows": n_hist,
        "_keep": (split, train),  # alive until the clock stops, as in a run
        "_sums": sums,
    }


def run(pipeline: str, path: Path, cache_dir: Path | None) -> dict[str, Any]:
    if pipeline == "notebook":
        return _notebook(path, cache_dir)
    if pipeline == "ratingbench":
        return _split_all(_parse(path))
    if pipeline == "ratingbench-cached":
        return _split_all(_from_cache(path, cache_dir))
    if pipeline == "parse":
        inter = _parse(path)
        return {"n_ratings": len(inter), "hash": inter.hash}
    if pipeline == "cache-save":
        from bench.data.cache import save_interactions, source_key

        inter = _parse(path)
        save_interactions(inter, source_key(path), cache_dir, source={"path": path.name})
        return {"n_ratings": len(inter), "hash": inter.hash}
    if pipeline == "cache-load":
        inter = _from_cache(path, cache_dir)
        return {"n_ratings": len(inter), "hash": inter.hash}
    raise SystemExit(f"unknown pipeline {pipeline!r}; known: {', '.join(PIPELINES)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("pipeline", choices=PIPELINES)
    ap.add_argument("path", type=Path)
    ap.add_argument("--cache-dir", type=Path, default=None)
    args = ap.parse_args(argv)

    # imports outside the clock, the same for every pipeline
    import notebook_pipeline  # noqa: F401
    import numpy  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import bench.data.cache
    import bench.data.loading
    import bench.data.split  # noqa: F401

    base = _status_mb("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    out = run(args.pipeline, args.path, args.cache_dir)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    hwm = _status_mb("VmHWM")
    maxrss = _maxrss_mb()
    sums = out.pop("_sums", None)
    out.pop("_keep", None)
    result = {
        "pipeline": args.pipeline,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "peak_rss_mb": hwm if hwm is not None else maxrss,
        "peak_source": "VmHWM" if hwm is not None else "ru_maxrss",
        "ru_maxrss_mb": maxrss,
        "base_rss_mb": base,
        **out,
    }
    if sums is not None:
        result["sums"] = sums()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
