"""A run's plan: the jobs (one ``FitJob`` per model, embedding and seed), what the data gives
them (``Prepared``: the loaded data, the split, the embeddings; ``TestBatches``: the test
queries in chunks, built in this one place) and the validation queries of the sanity flag
(``ValCheck``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench import memory
from bench.data.loading import Loaded
from bench.data.split import Split
from bench.data.types import Interactions
from bench.jobs import FitJob, FitResult, Status
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

__all__ = [
    "Prepared",
    "RunOutcome",
    "TestBatches",
    "ValCheck",
    "plan_jobs",
    "predicted",
    "predictions_frame",
    "read_only",
    "refused_results",
]


def read_only(value: Any) -> None:
    """Make every array of ``value`` read-only, in place: an array, or the arrays of a
    dataclass (a ``TrainSet``, ``HistoryBatch``, ``ItemEmbeddings``, ``ValCheck``), a tuple or
    a dict, recursively. Every model sees the same arrays: one that writes into them fails
    (``ValueError: ... read-only``) instead of changing the next model's input. Setting the
    flag on a view leaves its base as it was."""
    if isinstance(value, np.ndarray):
        value.flags.writeable = False
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            read_only(getattr(value, f.name))
    elif isinstance(value, (tuple, list)):
        for v in value:
            read_only(v)
    elif isinstance(value, dict):
        for v in value.values():
            read_only(v)


# Test batches are built once and shared by every model up to this size of their histories
# (13.4M history events at the notebook's full scale are 214 MB); larger, once per model.
TEST_CACHE_BYTES = 768 * 2**20


@dataclass(frozen=True)
class RunOutcome:
    """What a run leaves: its results file, the document written, every job's result in the
    plan's order, and whether it was interrupted."""

    path: Path | None  # None on a rank > 0 of a data-parallel run: it writes nothing
    doc: dict[str, Any]
    results: tuple[FitResult, ...]
    interrupted: bool = False

    @property
    def failed(self) -> list[FitResult]:
        return [r for r in self.results if r.status is not Status.OK]


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
        read_only(batch)  # every model predicts it
        return cls(batch=batch, truth=truth, global_mean_rmse=gm_rmse)


def test_history_rows(inter: Interactions, split: Split) -> int:
    """The history events of every test query together."""
    starts = inter.user_offsets[split.test_user]
    return int((split.test_pos - starts).sum())


def keeps_test_batches(inter: Interactions, split: Split) -> bool:
    """Whether the test batches are built once and kept (``TEST_CACHE_BYTES``)."""
    return test_history_rows(inter, split) * memory.HISTORY_ROW_BYTES <= TEST_CACHE_BYTES


@dataclass(frozen=True)
class TestBatches:
    """The test queries in chunks of ``chunk``, in the split's order: the one place they are
    built. Built once and kept when their histories fit in ``TEST_CACHE_BYTES`` (every model
    predicts the same batches), else built again on every iteration (by every job, wherever
    it runs), so that memory stays bounded. Either way every batch a model gets is read-only:
    one that writes into it fails instead of changing the next model's input."""

    __test__ = False  # not a pytest class

    chunk: int
    kept: tuple[HistoryBatch, ...] | None  # the batches, when small enough to keep
    source: tuple[Interactions, Split] | None  # else what builds them again

    @classmethod
    def of(cls, inter: Interactions, split: Split, chunk: int) -> TestBatches:
        if not keeps_test_batches(inter, split):
            return cls(chunk, None, (inter, split))
        out = cls(chunk, tuple(b for _, b in split.test_batches(inter, chunk)), None)
        out.freeze()
        return out

    def __iter__(self) -> Iterator[HistoryBatch]:
        if self.kept is not None:
            return iter(self.kept)
        assert self.source is not None
        inter, split = self.source
        return (_read_only(b) for _, b in split.test_batches(inter, self.chunk))

    def freeze(self) -> None:
        """Make the kept batches read-only (again after they travelled to a worker)."""
        read_only(self.kept)


def _read_only(batch: HistoryBatch) -> HistoryBatch:
    read_only(batch)
    return batch


@dataclass(frozen=True)
class Prepared:
    """Everything derived from the spec and the data before any model runs."""

    loaded: Loaded
    split: Split
    truth: NDArray[np.float32]  # (K,) the test ratings: read by the scoring only
    embeddings: dict[str, ItemEmbeddings]
    embedding_info: dict[str, Any]
    jobs: tuple[FitJob, ...]  # the plan, the reference first
    refused: dict[RunKey, FitResult]  # jobs failed before running (a plugin not built)
    ref_key: RunKey | None  # the reference's job
    timings: dict[str, float]  # load, embeddings, split (seconds)

    def memory_needs(self, chunk: int) -> list[memory.Need]:
        """What the runner will build beside the loaded data, each with its option."""
        row = memory.HISTORY_ROW_BYTES
        inter = self.loaded.interactions
        n_test = max(1, int(self.split.test_pos.shape[0]))
        n_hist = test_history_rows(inter, self.split)
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
                n_hist * row if keeps_test_batches(inter, self.split) else 2 * per_chunk * row,
                "--chunk-size",
            ),
        ]


def capabilities(m: ModelSpec) -> Capabilities:
    return capabilities_of(class_of(m))


def plan_jobs(
    spec: RunSpec,
    models: list[ModelSpec],
    ref_label: str,
    emb_names: list[str],
    broken: dict[str, str] | None = None,
) -> list[FitJob]:
    """Every (model, embedding, seed) job, the reference first. A model that declares
    ``embeddings`` runs once per embedding, one that declares ``seeded`` once per seed (an
    automatically added reference once); the key names the embedding when the run has
    several, and the seed when the model runs on several. A plugin that could not be built
    (``broken``: label -> error) is one job (``refused_results`` fails it)."""
    requested = {m.label for m in spec.models}
    ordered = sorted(models, key=lambda m: m.label != ref_label)  # stable: reference first
    jobs: list[FitJob] = []
    for m in ordered:
        if broken and m.label in broken:
            jobs.append(FitJob(run_key=RunKey(m.label), spec=m, seed=spec.seeds[0]))
            continue
        caps = capabilities(m)
        embs: list[str | None] = list(emb_names) if (caps.embeddings and emb_names) else [None]
        seeds = spec.seeds if (m.label in requested and caps.seeded) else spec.seeds[:1]
        for e in embs:
            shown_emb = e if e is not None and len(emb_names) > 1 else None
            for s in seeds:
                key = RunKey(m.label, shown_emb, s if len(seeds) > 1 else None)
                jobs.append(FitJob(run_key=key, spec=m, seed=s, embedding=e))
    return jobs


def refused_results(jobs: Iterable[FitJob], broken: dict[str, str]) -> dict[RunKey, FitResult]:
    """The results of the jobs of plugins that could not be built: failed, never run."""
    return {
        j.run_key: j.failed(f"PluginError: {broken[j.spec.label]}")
        for j in jobs
        if j.spec.label in broken
    }


def fit_rows(split: Split, inter: Interactions) -> NDArray[np.int64]:
    """Rows of ``inter`` that are history of some query (the events fitting may see plus the
    validation targets): what ``coverage`` calls history items."""
    lens = split.fit_len.copy()
    lens[split.val_user] += 1
    idx, _ = gather_ranges(inter.user_offsets[:-1], inter.user_offsets[:-1] + lens)
    return idx


def predicted(jobs: Iterable[FitJob], results: Mapping[RunKey, FitResult]) -> list[FitResult]:
    """The results the sidecar holds, in the plan's order: finished, with predictions."""
    out = (results.get(j.run_key) for j in jobs)
    return [r for r in out if r is not None and r.predicted]


def predictions_frame(prep: Prepared, results: Mapping[RunKey, FitResult]) -> pd.DataFrame:
    """The sidecar: one row per test query (ids, time, truth), then ``pred:KEY`` and
    ``fallback:KEY`` of every result that has predictions."""
    inter = prep.loaded.interactions
    split = prep.split
    cols: dict[str, Any] = {
        "user_id": inter.user_ids[split.test_user],
        "movie_id": inter.item_ids[inter.item[split.test_pos]],
        "target_time": inter.timestamp[split.test_pos],
        "truth": prep.truth,
    }
    for r in predicted(prep.jobs, results):
        cols[f"pred:{r.key}"] = r.pred
        cols[f"fallback:{r.key}"] = r.fallback
    return pd.DataFrame(cols)
