"""A run's plan: the jobs (one ``ModelRun`` per model, embedding and seed), what the data gives
them (``Prepared``: the loaded data, the split, the test batches, the embeddings) and the
validation queries of the sanity flag (``ValCheck``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench import memory
from bench.data.loading import Loaded
from bench.data.split import Split
from bench.data.types import Interactions
from bench.runkey import RunKey
from bench.spec import RunSpec
from predictors.contract import (
    Capabilities,
    capabilities_of,
)
from predictors.registry import (
    ModelSpec,
    class_of,
)
from predictors.types import HistoryBatch, ItemEmbeddings, TrainSet, gather_ranges

__all__ = ["ModelRun", "Prepared", "RunOutcome", "ValCheck", "plan_runs"]

# Test batches are built once and shared by every model up to this size of their histories
# (13.4M history events at the notebook's full scale are 214 MB); larger, once per model.
TEST_CACHE_BYTES = 768 * 2**20


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
    path: Path | None  # None on a rank > 0 of a data-parallel run: it writes nothing
    doc: dict[str, Any]
    runs: list[ModelRun]
    interrupted: bool = False

    @property
    def failed(self) -> list[ModelRun]:
        return [r for r in self.runs if r.status != "ok"]


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


def capabilities(m: ModelSpec) -> Capabilities:
    return capabilities_of(class_of(m))


def plan_runs(
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
        caps = capabilities(m)
        embs: list[str | None] = list(emb_names) if (caps.embeddings and emb_names) else [None]
        seeds = spec.seeds if (m.label in requested and caps.seeded) else spec.seeds[:1]
        for e in embs:
            shown_emb = e if e is not None and len(emb_names) > 1 else None
            for s in seeds:
                key = RunKey(m.label, shown_emb, s if len(seeds) > 1 else None)
                runs.append(ModelRun(run_key=key, spec=m, seed=s, embedding=e))
    return runs


def fit_rows(split: Split, inter: Interactions) -> NDArray[np.int64]:
    """Rows of ``inter`` that are history of some query (the events fitting may see plus the
    validation targets): what ``coverage`` calls history items."""
    lens = split.fit_len.copy()
    lens[split.val_user] += 1
    idx, _ = gather_ranges(inter.user_offsets[:-1], inter.user_offsets[:-1] + lens)
    return idx


def predicted_runs(prep: Prepared) -> list[ModelRun]:
    """The runs whose predictions the sidecar holds: finished, with predictions."""
    return [
        r for r in prep.runs if r.status == "ok" and r.pred is not None and r.fallback is not None
    ]


def predictions_frame(prep: Prepared) -> pd.DataFrame:
    inter = prep.loaded.interactions
    split = prep.split
    cols: dict[str, Any] = {
        "user_id": inter.user_ids[split.test_user],
        "movie_id": inter.item_ids[inter.item[split.test_pos]],
        "target_time": inter.timestamp[split.test_pos],
        "truth": prep.truth,
    }
    for r in predicted_runs(prep):
        cols[f"pred:{r.key}"] = r.pred
        cols[f"fallback:{r.key}"] = r.fallback
    return pd.DataFrame(cols)
