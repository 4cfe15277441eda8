"""The runner: one split, every chosen model (per seed) fitted and scored on it.

A model that fails is recorded with its error and the run goes on; Ctrl-C keeps every
finished model (the results file is marked incomplete). Test truth is read only here, for
the metrics, never handed to a model.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import platform
import resource
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

import bench
from bench import stats
from bench.errors import ConfigError
from bench.loading import DataSource, Loaded, load_source
from bench.results import SCHEMA, SCHEMA_VERSION, new_results_path, write_results
from bench.split import Split, SplitParams, make_split
from predictors.registry import ModelSpec, create, parse_spec
from predictors.types import TrainSet

__all__ = ["ModelRun", "RunOutcome", "RunSpec", "execute"]


@dataclass
class RunSpec:
    source: DataSource
    split: SplitParams
    models: list[ModelSpec]
    protocol: str = "default"
    seeds: list[int] = field(default_factory=lambda: [0])
    reference: str = "user-mean"
    n_resamples: int = 2000
    confidence: float = 0.95
    stats_seed: int = 0
    out_dir: Path = Path("results")
    chunk_size: int = 50_000
    device: str = "auto"
    command: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if self.n_resamples < 100:
            raise ConfigError(f"--resamples must be >= 100, got {self.n_resamples}")
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"--confidence must be in (0.5, 1), got {self.confidence}")
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be >= 1, got {self.chunk_size}")


@dataclass
class ModelRun:
    key: str
    spec: ModelSpec
    seed: int
    status: str = "pending"  # ok | failed
    error: str | None = None
    traceback: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    fit_info: dict[str, Any] = field(default_factory=dict)
    refit: bool = False
    learning_curve: list[dict[str, Any]] | None = None
    fit_s: float = 0.0
    predict_s: float = 0.0
    peak_rss_mb: float | None = None
    rss_delta_mb: float | None = None
    pred: NDArray[np.float32] | None = None
    fallback: NDArray[np.bool_] | None = None
    metrics: dict[str, Any] | None = None
    vs_reference: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.spec.label,
            "name": self.spec.name,
            "options": dict(self.spec.options),
            "seed": self.seed,
            "status": self.status,
            "error": self.error,
            "traceback": self.traceback,
            "config": self.config,
            "fit_info": self.fit_info,
            "refit": self.refit,
            "learning_curve": self.learning_curve,
            "timings": {"fit_s": self.fit_s, "predict_s": self.predict_s},
            "memory": {"peak_rss_mb": self.peak_rss_mb, "rss_delta_mb": self.rss_delta_mb},
            "n_fallback": None if self.fallback is None else int(self.fallback.sum()),
            "metrics": self.metrics,
            "vs_reference": self.vs_reference,
        }


@dataclass
class RunOutcome:
    path: Path
    doc: dict[str, Any]
    runs: list[ModelRun]
    interrupted: bool = False

    @property
    def failed(self) -> list[ModelRun]:
        return [r for r in self.runs if r.status != "ok"]


# -- provenance ---------------------------------------------------------------------------
def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


class PeakRSS:
    """Samples the process RSS every few ms in a thread; ``peak`` is the high-water mark.
    Falls back to ``ru_maxrss`` (process lifetime) where /proc is not available."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            now = _rss_mb()
            if now is not None and (self.peak is None or now > self.peak):
                self.peak = now

    def __enter__(self) -> PeakRSS:
        if self.start is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        now = _rss_mb()
        if now is not None and self.peak is not None:
            self.peak = max(self.peak, now)
        if self.start is None:  # no /proc: lifetime maximum (KiB on Linux, bytes on macOS)
            ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak = ru / 2**20 if sys.platform == "darwin" else ru / 2**10


def _git_info() -> dict[str, Any]:
    root = Path(bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("ratingbench", "numpy", "pandas", "pyarrow", "scipy", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def resolve_device(name: str) -> str:
    """``auto`` picks cuda, then mps, then cpu; imports torch only when asked to."""
    if name not in ("auto", "cpu", "cuda", "mps"):
        raise ConfigError(f"--device must be auto, cpu, cuda or mps, got '{name}'")
    if name == "cpu":
        return "cpu"
    if name == "auto" and "torch" not in sys.modules:
        # the baselines never need torch; torch models resolve 'auto' themselves
        return "auto"
    import torch

    if name in ("auto", "cuda") and torch.cuda.is_available():
        return "cuda"
    if name in ("auto", "mps") and torch.backends.mps.is_available():
        return "mps"
    if name != "auto":
        raise ConfigError(f"--device {name} was asked for but is not available here")
    return "cpu"


# -- the run ------------------------------------------------------------------------------
def _model_key(spec: ModelSpec, seed: int, n_seeds: int) -> str:
    return spec.label if n_seeds == 1 else f"{spec.label}@{seed}"


def _fit_predict(
    run: ModelRun,
    loaded: Loaded,
    split: Split,
    spec: RunSpec,
    device: str,
    base_train: TrainSet,
) -> None:
    inter = loaded.interactions
    with PeakRSS() as mem:
        model = create(run.spec, context={"seed": run.seed, "device": device})
        run.config = model.get_config()
        train = dataclasses.replace(base_train, seed=run.seed)
        t0 = time.perf_counter()
        model.fit(train)
        run.fit_s = time.perf_counter() - t0
        preds, falls = [], []
        t0 = time.perf_counter()
        for _, batch in split.test_batches(inter, spec.chunk_size):
            if hasattr(model, "predict_with_fallback"):
                p, f = model.predict_with_fallback(batch)
            else:
                p = np.asarray(model.predict(batch), dtype=np.float32)
                f = np.zeros(len(batch), dtype=bool)
            preds.append(p)
            falls.append(f)
        run.predict_s = time.perf_counter() - t0
    pred = np.concatenate(preds).astype(np.float32)
    if not np.all(np.isfinite(pred)):
        raise FloatingPointError(
            f"{run.key}: {int((~np.isfinite(pred)).sum())} NaN/inf predictions"
        )
    run.pred = pred
    run.fallback = np.concatenate(falls)
    run.fit_info = dict(getattr(model, "fit_info_", {}) or {})
    run.refit = bool(getattr(model, "refit_", False))
    curve = getattr(model, "learning_curve_", None)
    run.learning_curve = list(curve) if curve is not None else None
    run.peak_rss_mb = mem.peak
    run.rss_delta_mb = None if mem.start is None or mem.peak is None else mem.peak - mem.start
    run.status = "ok"


def _score(
    runs: list[ModelRun], truth: NDArray[np.float32], spec: RunSpec, ref_key: str | None
) -> None:
    ref = next((r for r in runs if r.key == ref_key and r.status == "ok"), None)
    kw = {"n_resamples": spec.n_resamples, "confidence": spec.confidence, "seed": spec.stats_seed}
    for r in runs:
        if r.status != "ok" or r.pred is None:
            continue
        cis = stats.metric_cis(truth, r.pred, **kw)
        r.metrics = {k: v.to_dict() for k, v in cis.items()}
        if ref is not None and r is not ref and ref.pred is not None:
            diffs = stats.paired_diff_cis(truth, r.pred, ref.pred, **kw)
            r.vs_reference = {
                k: {**v.to_dict(), "verdict": stats.verdict(v)} for k, v in diffs.items()
            }


def _seed_summary(runs: list[ModelRun]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by_label: dict[str, list[ModelRun]] = {}
    for r in runs:
        if r.status == "ok":
            by_label.setdefault(r.spec.label, []).append(r)
    for label, group in by_label.items():
        if len(group) < 2:
            continue
        out[label] = {
            m: stats.seed_spread([g.metrics[m]["estimate"] for g in group if g.metrics])
            for m in ("rmse", "mae")
        }
    return out


def _predictions_frame(
    loaded: Loaded, split: Split, truth: NDArray[np.float32], runs: list[ModelRun]
) -> pd.DataFrame:
    inter = loaded.interactions
    cols: dict[str, Any] = {
        "user_id": inter.user_ids[split.test_user],
        "movie_id": inter.item_ids[inter.item[split.test_pos]],
        "target_time": inter.timestamp[split.test_pos],
        "truth": truth,
    }
    for r in runs:
        if r.status == "ok" and r.pred is not None and r.fallback is not None:
            cols[f"pred:{r.key}"] = r.pred
            cols[f"fallback:{r.key}"] = r.fallback
    return pd.DataFrame(cols)


def _document(
    spec: RunSpec,
    loaded: Loaded,
    split: Split,
    runs: list[ModelRun],
    ref_key: str | None,
    device: str,
    status: str,
    started: str,
    timings: dict[str, float],
) -> dict[str, Any]:
    models = []
    for r in runs:
        models.append(r.to_dict())
    emb = loaded.embeddings
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "created": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": spec.command,
        "protocol": spec.protocol,
        "git": _git_info(),
        "versions": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
        "seeds": spec.seeds,
        "dataset": {**loaded.interactions.summary(), **loaded.info},
        "split": split.summary(),
        "embeddings": None
        if emb is None
        else {
            "name": emb.name,
            "dim": emb.dim,
            "hash": emb.hash,
            "coverage": float(emb.present.mean()) if emb.present.size else 0.0,
        },
        "statistics": {
            "metric_ci": "bootstrap over test queries",
            "difference_ci": "paired bootstrap over the same resampled queries",
            "n_resamples": spec.n_resamples,
            "confidence": spec.confidence,
            "seed": spec.stats_seed,
            "reference": ref_key,
        },
        "timings": timings,
        "models": models,
        "seed_summary": _seed_summary(runs),
    }


def execute(spec: RunSpec, console: Console | None = None) -> RunOutcome:
    """Load, split, fit and score every model, write the results. Raises ``BenchError`` on
    bad data or options (before anything is written); model failures are recorded."""
    console = console or Console(stderr=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    # validate everything cheap before any heavy work
    ref_spec = parse_spec(spec.reference)
    models = list(spec.models)
    if ref_spec.label not in {m.label for m in models}:
        models.insert(0, ref_spec)  # the reference is always scored alongside
    for m in models:
        create(m)  # unknown options / bad values fail now, not after loading
    out_dir = Path(spec.out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out_dir}: cannot create the output folder ({e.strerror})") from e
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"--out {out_dir}: the output folder is not writable")
    device = resolve_device(spec.device)

    t0 = time.perf_counter()
    with console.status("loading data"):
        loaded = load_source(spec.source)
    timings["load_s"] = time.perf_counter() - t0
    inter = loaded.interactions
    console.print(
        f"[bold]{inter.name}[/]: {len(inter):,} ratings, {inter.n_users:,} users, "
        f"{inter.n_items:,} items, scale {inter.scale.low:g}–{inter.scale.high:g}"
    )
    t0 = time.perf_counter()
    split = make_split(inter, spec.split)
    timings["split_s"] = time.perf_counter() - t0
    c = split.counts()
    console.print(
        f"split {split.hash}: {c['train']:,} train / {c['val']:,} validation / "
        f"{c['test']:,} test targets from {c['users']:,} users"
    )
    truth = split.test_truth(inter)
    # built once and shared: models must not mutate it (the contract tests check)
    base_train = split.train_set(inter, embeddings=loaded.embeddings, seed=spec.seeds[0])

    runs: list[ModelRun] = []
    requested = {m.label for m in spec.models}
    for m in models:
        # an automatically added reference runs once; chosen models run once per seed
        seeds = spec.seeds if m.label in requested else spec.seeds[:1]
        for s in seeds:
            runs.append(ModelRun(key=_model_key(m, s, len(seeds)), spec=m, seed=s))
    ref_key = next((r.key for r in runs if r.spec.label == ref_spec.label), None)

    stem = f"{inter.name}-{started.replace(':', '').replace('-', '').replace('+0000', '')}"
    path = new_results_path(out_dir, stem.replace("/", "_"))
    interrupted = False
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    try:
        with progress:
            task = progress.add_task("models", total=len(runs))
            for r in runs:
                progress.update(task, description=f"fitting {r.key}")
                try:
                    _fit_predict(r, loaded, split, spec, device, base_train)
                    console.print(
                        f"  [green]ok[/] {r.key}: fit {r.fit_s:.2f}s, predict {r.predict_s:.2f}s"
                    )
                except KeyboardInterrupt:
                    raise
                except Exception as e:  # a failed model is recorded; the run goes on
                    r.status = "failed"
                    r.error = f"{type(e).__name__}: {e}"
                    r.traceback = traceback.format_exc(limit=8)
                    console.print(f"  [red]failed[/] {r.key}: {r.error}")
                progress.advance(task)
    except KeyboardInterrupt:
        interrupted = True
        for r in runs:
            if r.status == "pending":
                r.status = "not run"
        console.print("[yellow]interrupted: writing the finished models[/]")
    t0 = time.perf_counter()
    _score(runs, truth, spec, ref_key)
    timings["statistics_s"] = time.perf_counter() - t0
    status = "incomplete" if interrupted else "complete"
    doc = _document(spec, loaded, split, runs, ref_key, device, status, started, timings)
    frame = _predictions_frame(loaded, split, truth, runs)
    write_results(path, doc, frame)
    return RunOutcome(path=path, doc=doc, runs=runs, interrupted=interrupted)
