"""The runner: one split, every chosen model (per seed) fitted and scored on it.

A model that fails is recorded with its error and the run goes on; Ctrl-C keeps every
finished model (the results file is marked incomplete). Test truth is read only here, for
the metrics, never handed to a model.
"""

from __future__ import annotations

import contextlib
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
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

import bench
from bench import embeddings as E
from bench import memory, stats
from bench.data.loading import DataSource, Loaded, load_source
from bench.data.split import Split, SplitParams, make_split
from bench.data.types import Interactions, time_unit_note
from bench.errors import ConfigError
from bench.results import (
    SCHEMA,
    SCHEMA_VERSION,
    new_results_path,
    new_run_id,
    resume_results,
    write_results,
)
from bench.runkey import RunKey
from predictors.contract import (
    Capabilities,
    Harnessed,
    NullProgress,
    Prediction,
    RichProgress,
    RunContext,
    capabilities_of,
)
from predictors.device import resolve_device as _resolve_device
from predictors.registry import (
    ModelSpec,
    changed_plugins,
    class_of,
    create,
    parse_spec,
    spec_from_record,
)
from predictors.types import HistoryBatch, ItemEmbeddings, TrainSet, gather_ranges

# Test batches are built once and shared by every model up to this size of their histories
# (13.4M history events at the notebook's full scale are 214 MB); larger, once per model.
TEST_CACHE_BYTES = 768 * 2**20

__all__ = ["CHECK_LEVELS", "ModelRun", "RunOutcome", "RunSpec", "execute"]

# What ``bench run`` checks of a plugin before benchmarking it (``predictors.testing``):
# "quick" the checks that never fit it (config, capabilities, predict before fit; well under
# a second), "full" the whole conformance suite on its small synthetic data (fits the model
# several times: seconds for most models), "none" nothing. Built-ins pass the full suite in CI.
CHECK_LEVELS = ("quick", "full", "none")


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
    ci_method: str = "auto"  # see bench.stats.METHODS
    min_test_users: int = 20  # fewer test users: no verdict ("too few queries")
    per_seed: bool = False  # verdicts per seed instead of one per model over its seeds
    out_dir: Path = Path("results")
    chunk_size: int = 50_000
    device: str = "auto"
    embeddings: list[str] = field(default_factory=list)  # names or parquet paths
    embedding_dir: Path | None = None
    missing_embedding: str = "drop"
    blas_threads: int | None = 1  # BLAS threads while a model fits/predicts; None: library default
    check: str = "quick"  # conformance checks on plugins before the run: quick | full | none
    command: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds has repeated values: {self.seeds}")
        if self.n_resamples < 100:
            raise ConfigError(f"--resamples must be >= 100, got {self.n_resamples}")
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"--confidence must be in (0.5, 1), got {self.confidence}")
        if isinstance(self.min_test_users, bool) or not (
            isinstance(self.min_test_users, int) and self.min_test_users >= 1
        ):
            raise ConfigError(
                f"--min-test-users must be an integer >= 1, got {self.min_test_users!r}"
            )
        if self.ci_method not in stats.METHODS:
            raise ConfigError(
                f"--ci-method must be one of {', '.join(stats.METHODS)}, got '{self.ci_method}'"
            )
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be >= 1, got {self.chunk_size}")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ConfigError(f"--blas-threads must be >= 1, got {self.blas_threads}")
        if self.check not in CHECK_LEVELS:
            raise ConfigError(
                f"--check must be one of {', '.join(CHECK_LEVELS)}, got '{self.check}'"
            )
        if self.missing_embedding not in E.MISSING_POLICIES:
            raise ConfigError(
                f"--missing-embedding must be one of {', '.join(E.MISSING_POLICIES)}, "
                f"got '{self.missing_embedding}'"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``from_dict`` rebuilds the identical spec (``bench rerun``/``--resume``)."""
        return {
            "source": self.source.to_dict(),
            "split": self.split.to_dict(),
            "models": [
                {
                    "spec": m.label,
                    "implicit": m.implicit,
                    "source": None if m.source is None else m.source.to_dict(),
                    "error": m.error,
                }
                for m in self.models
            ],
            "protocol": self.protocol,
            "seeds": list(self.seeds),
            "reference": self.reference,
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "stats_seed": self.stats_seed,
            "ci_method": self.ci_method,
            "min_test_users": self.min_test_users,
            "per_seed": self.per_seed,
            "out_dir": str(self.out_dir),
            "chunk_size": self.chunk_size,
            "device": self.device,
            "embeddings": list(self.embeddings),
            "embedding_dir": None if self.embedding_dir is None else str(self.embedding_dir),
            "missing_embedding": self.missing_embedding,
            "blas_threads": self.blas_threads,
            "check": self.check,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, command: list[str] | None = None) -> RunSpec:
        return cls(
            source=DataSource.from_dict(d["source"]),
            split=SplitParams(**d["split"]),
            models=[spec_from_record(m) for m in d["models"]],
            protocol=d.get("protocol", "default"),
            seeds=list(d["seeds"]),
            reference=d["reference"],
            n_resamples=d["n_resamples"],
            confidence=d["confidence"],
            stats_seed=d.get("stats_seed", 0),
            ci_method=d.get("ci_method", "auto"),
            min_test_users=d.get("min_test_users", 20),
            per_seed=bool(d.get("per_seed", False)),
            out_dir=Path(d.get("out_dir", "results")),
            chunk_size=d.get("chunk_size", 50_000),
            device=d.get("device", "auto"),
            embeddings=list(d.get("embeddings", [])),
            embedding_dir=None if d.get("embedding_dir") is None else Path(d["embedding_dir"]),
            missing_embedding=d.get("missing_embedding", "drop"),
            blas_threads=d.get("blas_threads", 1),
            check=d.get("check", "quick"),
            command=command or [],
        )


@dataclass
class ModelRun:
    """One job of the plan: a model spec on one embedding with one seed."""

    run_key: RunKey
    spec: ModelSpec
    seed: int
    embedding: str | None = None
    status: str = "pending"  # ok | failed | not run
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
    val_rmse: float | None = None
    n_clipped: int | None = None
    flags: list[str] = field(default_factory=list)  # warnings a reader must see
    notes: list[str] = field(default_factory=list)  # facts worth a line (clipping)
    pred: NDArray[np.float32] | None = None
    fallback: NDArray[np.bool_] | None = None
    metrics: dict[str, Any] | None = None
    vs_reference: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The text form of ``run_key``: the name of the run in tables and sidecar columns."""
        return str(self.run_key)

    @property
    def group(self) -> str:
        """The key without the seed: the runs of one model on several seeds."""
        return str(self.run_key.group)

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "run_key": self.run_key.to_dict(),
            "label": self.spec.label,
            "name": self.spec.name,
            "options": dict(self.spec.options),
            # where a plugin's code came from (file hash, or package and version)
            "source": None if self.spec.source is None else self.spec.source.to_dict(),
            "seed": self.seed,
            "embedding": self.embedding,
            "group": self.group,
            "status": self.status,
            "error": self.error,
            "traceback": self.traceback,
            "config": self.config,
            "fit_info": self.fit_info,
            "refit": self.refit,
            "learning_curve": self.learning_curve,
            "timings": {"fit_s": self.fit_s, "predict_s": self.predict_s},
            "memory": {"peak_rss_mb": self.peak_rss_mb, "rss_delta_mb": self.rss_delta_mb},
            "val_rmse": self.val_rmse,
            "n_fallback": None if self.fallback is None else int(self.fallback.sum()),
            "n_clipped": self.n_clipped,
            "flags": self.flags,
            "notes": self.notes,
            "metrics": self.metrics,
            "vs_reference": self.vs_reference,
        }

    def restore(
        self, d: dict[str, Any], pred: NDArray[np.float32], fallback: NDArray[np.bool_]
    ) -> None:
        """Take back a finished model from a results file (``--resume``)."""
        self.status = "ok"
        self.config = d.get("config") or {}
        self.fit_info = d.get("fit_info") or {}
        self.refit = bool(d.get("refit"))
        self.learning_curve = d.get("learning_curve")
        self.fit_s = (d.get("timings") or {}).get("fit_s", 0.0)
        self.predict_s = (d.get("timings") or {}).get("predict_s", 0.0)
        mem = d.get("memory") or {}
        self.peak_rss_mb, self.rss_delta_mb = mem.get("peak_rss_mb"), mem.get("rss_delta_mb")
        self.val_rmse = d.get("val_rmse")
        self.n_clipped = d.get("n_clipped")
        self.flags = list(d.get("flags") or [])
        self.notes = list(d.get("notes") or [])
        self.pred, self.fallback = pred, fallback


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
    """``--device`` resolved (``predictors.device``): ``auto`` stays ``auto`` until torch is
    imported (only when a model declares torch), so a run of the baselines never imports it."""
    try:
        return _resolve_device(name)
    except ValueError as e:
        raise ConfigError(f"--device: {e}") from e


# -- the run ------------------------------------------------------------------------------
# The sanity flag "validation RMSE worse than global-mean's" is read on at most this many
# validation queries (a seeded sample above it): predicting 200k validation queries again
# after every fit costs a torch model a minute or more on a CPU, for a flag.
VAL_CHECK_MAX = 20_000


@dataclass(frozen=True)
class ValCheck:
    """The validation queries the sanity flag is read on, and global-mean's RMSE there."""

    batch: HistoryBatch
    truth: NDArray[np.float64]  # (V',) the validation ratings of those queries
    global_mean_rmse: float  # inf without validation queries

    @classmethod
    def of(cls, train: TrainSet) -> ValCheck:
        n = len(train.val.batch)
        rows = np.arange(n)
        if n > VAL_CHECK_MAX:
            rows = np.sort(np.random.default_rng(0).choice(n, VAL_CHECK_MAX, replace=False))
        batch = train.val.batch if rows.size == n else train.val.batch.take(rows)
        truth = train.val.rating[rows].astype(np.float64)
        gm = float(np.mean(train.events.rating, dtype=np.float64))
        gm_rmse = float(np.sqrt(np.mean((gm - truth) ** 2))) if n else float("inf")
        return cls(batch=batch, truth=truth, global_mean_rmse=gm_rmse)


@dataclass
class Prepared:
    """Everything derived from the spec and the data before any model runs."""

    loaded: Loaded
    split: Split
    truth: NDArray[np.float32]
    embeddings: dict[str, ItemEmbeddings]
    embedding_info: dict[str, Any]
    runs: list[ModelRun]
    ref_key: str | None
    timings: dict[str, float]
    stats_method: str | None = None  # the CI method ``stats.evaluate`` resolved
    stats_units: int | None = None  # test users resampled
    table: list[dict[str, Any]] = field(default_factory=list)  # one row per model over seeds
    test_cache: list[HistoryBatch] | None = None  # the test batches, kept when small

    def test_batches(self, chunk: int) -> Iterable[HistoryBatch]:
        """The test queries in chunks of ``chunk``. Built once and kept read-only when
        their histories fit in ``TEST_CACHE_BYTES`` (every model predicts the same batches;
        a model that writes into one fails instead of changing the next model's input),
        built again for every model otherwise, so that memory stays bounded."""
        if self.test_cache is not None:
            return self.test_cache
        inter = self.loaded.interactions
        if not self._cache_tests():
            return (b for _, b in self.split.test_batches(inter, chunk))
        batches = [b for _, b in self.split.test_batches(inter, chunk)]
        for b in batches:
            for f in dataclasses.fields(b):
                getattr(b, f.name).flags.writeable = False
        self.test_cache = batches
        return batches

    def _test_history_rows(self) -> int:
        starts = self.loaded.interactions.user_offsets[self.split.test_user]
        return int((self.split.test_pos - starts).sum())

    def _cache_tests(self) -> bool:
        return self._test_history_rows() * memory.HISTORY_ROW_BYTES <= TEST_CACHE_BYTES

    def memory_needs(self, chunk: int) -> list[memory.Need]:
        """What the runner will build beside the loaded data, each with its option."""
        row = memory.HISTORY_ROW_BYTES
        n_test = max(1, int(self.split.test_pos.shape[0]))
        n_hist = self._test_history_rows()
        per_chunk = n_hist * min(chunk, n_test) // n_test
        return [
            memory.Need(
                "the events fitting may see",
                int(self.split.fit_len.sum()) * row,
                "--sample-users",
            ),
            memory.Need(
                "the training targets",
                int(self.split.train_pos.shape[0]) * 12,
                "--samples-per-user",
            ),
            memory.Need(
                "the test batches",
                n_hist * row if self._cache_tests() else 2 * per_chunk * row,
                "--chunk-size",
            ),
        ]


def _capabilities(m: ModelSpec) -> Capabilities:
    return capabilities_of(class_of(m))


def _plan_runs(
    spec: RunSpec,
    models: list[ModelSpec],
    ref_label: str,
    emb_names: list[str],
    broken: dict[str, str] | None = None,
) -> list[ModelRun]:
    """Every (model, embedding, seed) job, the reference first. A model that declares
    ``embeddings`` runs once per embedding, one that declares ``seeded`` once per seed (an
    automatically added reference once); the key names the embedding when the run has
    several, and the seed when the model runs on several. A plugin that could not be built
    (``broken``: label -> error) is one job, already failed."""
    requested = {m.label for m in spec.models}
    ordered = sorted(models, key=lambda m: m.label != ref_label)  # stable: reference first
    runs: list[ModelRun] = []
    for m in ordered:
        if broken and m.label in broken:
            run = ModelRun(run_key=RunKey(m.label), spec=m, seed=spec.seeds[0])
            run.status, run.error = "failed", f"PluginError: {broken[m.label]}"
            runs.append(run)
            continue
        caps = _capabilities(m)
        embs: list[str | None] = list(emb_names) if (caps.embeddings and emb_names) else [None]
        seeds = spec.seeds if (m.label in requested and caps.seeded) else spec.seeds[:1]
        for e in embs:
            shown_emb = e if e is not None and len(emb_names) > 1 else None
            for s in seeds:
                key = RunKey(m.label, shown_emb, s if len(seeds) > 1 else None)
                runs.append(ModelRun(run_key=key, spec=m, seed=s, embedding=e))
    return runs


def _prepare(spec: RunSpec, console: Console) -> Prepared:
    timings: dict[str, float] = {}
    models = list(spec.models)
    ref_spec = next((m for m in models if m.label == spec.reference), None)
    if ref_spec is None:
        ref_spec = parse_spec(spec.reference)
        models.insert(0, ref_spec)  # the reference is always scored alongside
    broken: dict[str, str] = {}
    for m in models:
        if not m.is_plugin:
            create(m)  # unknown options / bad values fail now, not after loading
            continue
        # a plugin that cannot be built, or fails its checks, is recorded as a failed model;
        # the others go on
        try:
            create(m)
        except Exception as e:
            broken[m.label] = str(e)
            continue
        why = _check_plugin(m, spec.check, console)
        if why is not None:
            broken[m.label] = why
    for label, error in broken.items():
        console.print(f"[red]plugin failed[/] {label}: {error}")
    models_ok = [m for m in models if m.label not in broken]

    def uses_emb(m: ModelSpec) -> bool:
        return _capabilities(m).embeddings

    need_emb = any(uses_emb(m) for m in models_ok)

    t0 = time.perf_counter()
    with console.status("loading data"):
        loaded = load_source(spec.source)
    timings["load_s"] = time.perf_counter() - t0
    skipped: list[str] = []
    if need_emb and not spec.embeddings and loaded.embeddings is None and loaded.catalog is None:
        # nothing to build embeddings from: models that came from 'all' are skipped
        skipped = [m.label for m in models_ok if uses_emb(m) and m.implicit]
        if skipped:
            models = [m for m in models if m.label not in skipped]
            models_ok = [m for m in models_ok if m.label not in skipped]
            need_emb = any(uses_emb(m) for m in models_ok)
            console.print(
                f"[yellow]skipped[/] {', '.join(skipped)}: no item embeddings (give "
                "--embedding NAME|FILE.parquet, or --catalog to build them)"
            )
    t0 = time.perf_counter()
    loaded, embs, emb_info = E.prepare(
        loaded,
        spec.embeddings,
        policy=spec.missing_embedding,
        embedding_dir=spec.embedding_dir,
        split_params=spec.split,
        need=need_emb,
        notify=console.print,
        progress=console.is_terminal,
    )
    if skipped:
        emb_info = {**emb_info, "skipped_models": skipped}
    timings["embeddings_s"] = time.perf_counter() - t0
    inter = loaded.interactions
    console.print(
        f"[bold]{inter.name}[/]: {len(inter):,} ratings, {inter.n_users:,} users, "
        f"{inter.n_items:,} items, scale {inter.scale.low:g}–{inter.scale.high:g}"
        f"{time_unit_note(inter)}"
    )
    t0 = time.perf_counter()
    split = make_split(inter, spec.split)
    timings["split_s"] = time.perf_counter() - t0
    c = split.counts()
    console.print(
        f"split {split.hash}: {c['train']:,} train / {c['val']:,} validation / "
        f"{c['test']:,} test targets from {c['users']:,} users"
    )
    if embs:
        test_items = inter.item[split.test_pos]
        hist_items = inter.item[_fit_rows(split, inter)]
        emb_info["coverage"] = {n: E.coverage(e, hist_items, test_items) for n, e in embs.items()}
    runs = _plan_runs(spec, models, ref_spec.label, list(embs) if need_emb else [], broken)
    ref_key = next((r.key for r in runs if r.spec.label == ref_spec.label), None)
    return Prepared(
        loaded=loaded,
        split=split,
        truth=split.test_truth(inter),
        embeddings=embs,
        embedding_info=emb_info,
        runs=runs,
        ref_key=ref_key,
        timings=timings,
    )


def _check_plugin(m: ModelSpec, level: str, console: Console) -> str | None:
    """Why the plugin ``m`` may not be benchmarked (the failed conformance checks), or None."""
    if level == "none":
        return None
    from predictors.testing import check_predictor

    with console.status(f"checking plugin {m.label} ({level})"):
        report = check_predictor(lambda: create(m), quick=level == "quick")
    if report.passed:
        return None
    reasons = "; ".join(f"{r.name}: {r.reason}" for r in report.failures)
    return (
        f"plugin {m.label} failed {len(report.failures)} conformance check(s) "
        f"(`bench check` shows them all; --check none skips them): {reasons}"
    )


def _fit_rows(split: Split, inter: Interactions) -> NDArray[np.int64]:
    """Rows of ``inter`` that are history of some query (the events fitting may see plus the
    validation targets): what ``coverage`` calls history items."""
    lens = split.fit_len.copy()
    lens[split.val_user] += 1
    idx, _ = gather_ranges(inter.user_offsets[:-1], inter.user_offsets[:-1] + lens)
    return idx


def _fit_predict(
    run: ModelRun,
    prep: Prepared,
    spec: RunSpec,
    device: str,
    trains: dict[str | None, TrainSet],
    val_check: ValCheck,
    console: Console | None = None,
) -> None:
    """Fit one job's model and predict the test queries, through the model contract: the
    model gets a ``RunContext`` in its TrainSet, returns a ``FitReport``, and every batch
    comes back as a checked ``Prediction`` (``predictors.contract``)."""
    # Small batched solves are fastest on one BLAS thread, and several threads on a busy
    # machine can be 10-100x slower (oversubscription): limit them while the model runs.
    limits = (
        threadpool_limits(limits=spec.blas_threads, user_api="blas")
        if spec.blas_threads is not None
        else contextlib.nullcontext()
    )
    with PeakRSS() as mem, limits:
        model = Harnessed(create(run.spec))
        run.config = model.config()
        context = RunContext(
            seed=run.seed,
            device=device,
            progress=RichProgress(console) if console is not None else NullProgress(),
        )
        train = dataclasses.replace(trains[run.embedding], context=context)
        t0 = time.perf_counter()
        report = model.fit(train)
        run.fit_s = time.perf_counter() - t0
        run.fit_info = dict(report.settings)
        run.refit = report.refit
        # validation RMSE for the table's sanity flag; a model that refit on the validation
        # targets reports the figure it chose its settings on instead
        if not report.refit and len(val_check.batch):
            vp = model.predict(val_check.batch).values.astype(np.float64)
            run.val_rmse = float(np.sqrt(np.mean((vp - val_check.truth) ** 2)))
        else:
            run.val_rmse = report.val_rmse
        t0 = time.perf_counter()
        out = Prediction.concat([model.predict(b) for b in prep.test_batches(spec.chunk_size)])
        run.predict_s = time.perf_counter() - t0
    run.pred, run.fallback, run.n_clipped = out.values, out.fallback, out.n_clipped
    curve = report.learning_curve
    run.learning_curve = None if curve is None else [dict(c) for c in curve]
    run.peak_rss_mb = mem.peak
    run.rss_delta_mb = None if mem.start is None or mem.peak is None else mem.peak - mem.start
    run.flags, run.notes = [], []
    if run.val_rmse is not None and run.val_rmse > val_check.global_mean_rmse + 1e-6:
        run.flags.append(
            f"validation RMSE {run.val_rmse:.4f} is worse than global-mean's "
            f"{val_check.global_mean_rmse:.4f}"
        )
    if run.n_clipped:
        run.notes.append(f"{run.n_clipped} prediction(s) outside the scale were clipped")
    run.status = "ok"


def _score_all(prep: Prepared, spec: RunSpec) -> None:
    """Metrics with CIs for every finished model and its paired difference against the
    reference, all from one resampling of the test users (``stats.evaluate``).

    Two families of comparisons, each Holm-adjusted on its own: every run against the
    reference (the model records: one row per seed), and, with several seeds, the table a
    reader sees by default, one row per model whose interval and verdict take the seeds in
    (``prep.table``)."""
    ok = [r for r in prep.runs if r.status == "ok" and r.pred is not None]
    prep.table = []
    if not ok:
        return
    ref = next((r for r in ok if r.key == prep.ref_key), None)
    preds = {r.key: r.pred for r in ok if r.pred is not None}
    kw: dict[str, Any] = {
        "units": prep.split.test_user,
        "n_resamples": spec.n_resamples,
        "confidence": spec.confidence,
        "seed": spec.stats_seed,
        "method": spec.ci_method,
        "min_units": spec.min_test_users,
    }
    pairs = [(r.key, ref.key) for r in ok if ref is not None and r is not ref]
    ev = stats.evaluate(prep.truth, preds, pairs=pairs, **kw)
    prep.stats_method = ev.method
    prep.stats_units = ev.n_units
    for r in ok:
        r.metrics = {
            k: {**v.to_dict(), "design_effect": ev.design_effect[r.key][k]}
            for k, v in ev.metrics[r.key].items()
        }
        r.vs_reference = None if ref is None or r is ref else ev.difference((r.key, ref.key))
    members: dict[str, list[str]] = {}
    for r in ok:
        members.setdefault(r.group or r.key, []).append(r.key)
    groups = {g: ks for g, ks in members.items() if len(ks) > 1}
    if not groups or spec.per_seed:
        return
    rows = [g if g in groups else ks[0] for g, ks in members.items()]
    row_pairs = [(k, ref.key) for k in rows if ref is not None and k != ref.key]
    ev_rows = stats.evaluate(prep.truth, preds, pairs=row_pairs, groups=groups, **kw)
    for k in rows:
        prep.table.append(
            {
                "key": k,
                "members": groups.get(k, [k]),
                "metrics": {m: v.to_dict() for m, v in ev_rows.metrics[k].items()},
                "vs_reference": None
                if ref is None or k == ref.key
                else ev_rows.difference((k, ref.key)),
            }
        )


def _seed_summary(runs: list[ModelRun]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups: dict[str, list[ModelRun]] = {}
    for r in runs:
        if r.status == "ok" and r.metrics:
            groups.setdefault(r.group or r.key, []).append(r)
    for base, group in groups.items():
        if len(group) < 2:
            continue
        out[base] = {
            "seeds": [g.seed for g in group],
            **{
                m: stats.seed_spread([g.metrics[m]["estimate"] for g in group if g.metrics])
                for m in stats.METRICS
            },
        }
    return out


def _predictions_frame(prep: Prepared) -> pd.DataFrame:
    inter = prep.loaded.interactions
    split = prep.split
    cols: dict[str, Any] = {
        "user_id": inter.user_ids[split.test_user],
        "movie_id": inter.item_ids[inter.item[split.test_pos]],
        "target_time": inter.timestamp[split.test_pos],
        "truth": prep.truth,
    }
    for r in prep.runs:
        if r.status == "ok" and r.pred is not None and r.fallback is not None:
            cols[f"pred:{r.key}"] = r.pred
            cols[f"fallback:{r.key}"] = r.fallback
    return pd.DataFrame(cols)


def _provenance() -> dict[str, Any]:
    """Where the run ran: read once per run (git status is a subprocess)."""
    return {
        "ratingbench": bench.__version__,
        "git": _git_info(),
        "versions": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def _document(
    spec: RunSpec,
    prep: Prepared,
    device: str,
    status: str,
    started: str,
    provenance: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "created": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": spec.command,
        "run_spec": spec.to_dict(),
        "protocol": spec.protocol,
        **provenance,
        "device": device,
        "seeds": spec.seeds,
        "dataset": {**prep.loaded.interactions.summary(), **prep.loaded.info},
        "split": prep.split.summary(),
        "embeddings": prep.embedding_info or None,
        "statistics": {
            "metric_ci": "bootstrap over test queries",
            "difference_ci": "paired bootstrap over the same resampled queries",
            "resampling": "one resampling of the test users shared by every model "
            "(a user's test targets stay together)",
            "method": prep.stats_method,
            "units": "users",
            "n_units": prep.stats_units,
            "metrics": list(stats.METRICS),
            "multiplicity": "p-values Holm-adjusted across the comparisons with the reference; "
            "verdicts read the adjusted p-value",
            "min_test_users": spec.min_test_users,
            "per_seed": spec.per_seed,
            "table": prep.table or None,
            "n_resamples": spec.n_resamples,
            "confidence": spec.confidence,
            "seed": spec.stats_seed,
            "reference": prep.ref_key,
        },
        "timings": prep.timings,
        "models": [r.to_dict() for r in prep.runs],
        "seed_summary": _seed_summary(prep.runs),
    }


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out_dir}: cannot create the output folder ({e.strerror})") from e
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"--out {out_dir}: the output folder is not writable")


def execute(
    spec: RunSpec, console: Console | None = None, *, resume: Path | None = None
) -> RunOutcome:
    """Load, split, fit and score every model, writing the results after each model (so a
    crash keeps what finished; the file says ``incomplete`` until the end). Raises
    ``BenchError`` on bad data or options before anything is written; a model that fails is
    recorded and the run goes on. With ``resume``, models finished in that results file are
    taken back (after checking that the data and split hashes are identical) and only the
    rest are run; the file is updated in place."""
    console = console or Console(stderr=True)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir = Path(spec.out_dir) if resume is None else Path(resume).parent
    _check_out_dir(out_dir)
    prep = _prepare(spec, console)
    memory.check_fits(prep.memory_needs(spec.chunk_size), memory.available_bytes())
    # torch is imported (and the device resolved) only when a torch model runs
    need_torch = any(_capabilities(r.spec).torch for r in prep.runs if r.status == "pending")
    if need_torch:
        import torch  # noqa: F401
    device = resolve_device(spec.device)
    inter = prep.loaded.interactions

    if resume is not None:
        path = Path(resume)
        old, notes = resume_results(
            path,
            dataset_hash=inter.hash,
            split_hash=prep.split.hash,
            queries=_predictions_frame(prep),
        )
        started = old.raw.get("created", started)
        changed = changed_plugins((old.run_spec or {}).get("models") or [], spec.models)
        for label, why in changed.items():
            console.print(
                f"[yellow]note:[/] plugin {label}: {why} since the run began; its finished "
                "runs are run again"
            )
        done = {rec.key: rec for rec in old.finished() if rec.pred is not None}
        for r in prep.runs:
            rec = done.get(r.run_key) if r.spec.label not in changed else None
            if rec is not None and rec.pred is not None and rec.fallback is not None:
                r.restore(rec.record, rec.pred, rec.fallback)
        n_done = sum(r.status == "ok" for r in prep.runs)
        for note in notes:
            console.print(f"[yellow]note:[/] {note}")
        console.print(f"resuming {path.name}: {n_done} of {len(prep.runs)} model runs finished")
    else:
        stem = f"{inter.name}-{started.replace(':', '').replace('-', '').replace('+0000', '')}"
        path = new_results_path(out_dir, stem.replace("/", "_"))

    # one TrainSet per embedding, built once and shared (models must not mutate it)
    base = prep.split.train_set(inter, embeddings=None, seed=spec.seeds[0])
    trains: dict[str | None, TrainSet] = {None: base}
    for name, emb in prep.embeddings.items():
        trains[name] = dataclasses.replace(base, embeddings=emb)
    if prep.embeddings and not any(r.embedding for r in prep.runs):
        trains[None] = dataclasses.replace(base, embeddings=next(iter(prep.embeddings.values())))
    val_check = ValCheck.of(base)

    written = resume is not None
    run_id = (old.raw.get("run_id") if resume is not None else None) or new_run_id()
    provenance = {**_provenance(), "run_id": run_id}  # run_id pairs the JSON and its sidecar

    def save(status: str) -> dict[str, Any]:
        nonlocal written, path
        # every finished model is scored again on the run's one resampling: cheap (one
        # column per model), and the file on disk always carries complete intervals
        t0 = time.perf_counter()
        _score_all(prep, spec)
        prep.timings["statistics_s"] = time.perf_counter() - t0
        doc = _document(spec, prep, device, status, started, provenance)
        path = write_results(path, doc, _predictions_frame(prep), overwrite=written)
        written = True
        return doc

    interrupted = False
    todo = [r for r in prep.runs if r.status == "pending"]
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    t_models = time.perf_counter()
    try:
        with progress:
            task = progress.add_task("models", total=len(todo))
            for r in todo:
                progress.update(task, description=f"fitting {r.key}")
                try:
                    _fit_predict(r, prep, spec, device, trains, val_check, console)
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
                save("incomplete")
                progress.advance(task)
    except KeyboardInterrupt:
        interrupted = True
        for r in prep.runs:
            if r.status == "pending":
                r.status = "not run"
        console.print("[yellow]interrupted: the finished models are kept[/]")
    prep.timings["models_s"] = time.perf_counter() - t_models
    doc = save("incomplete" if interrupted else "complete")
    return RunOutcome(path=path, doc=doc, runs=prep.runs, interrupted=interrupted)
