"""The results schema, both ways: the document's sections, a model record written from a
job's result and its scores, and read back (typed, ``ModelRecord``; or as the result it was,
for ``--resume``). Every reader and writer of results files goes through this module, so a
key is spelled once.

Schema version 1, the document in the order written::

    schema, schema_version, status (complete | incomplete), created, finished, command,
    run_spec, protocol, ratingbench, git, versions, python, platform, run_id, device,
    executor, seeds, dataset, split, embeddings, statistics, timings, models, seed_summary
    (+ predictions_file, added by the writer: the sidecar's name)

and each model record as ``record_of`` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bench.jobs import FitJob, FitResult, Status
from bench.runkey import RunKey

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "REQUIRED",
    "SCHEMA",
    "SCHEMA_VERSION",
    "ModelRecord",
    "document",
    "record_of",
    "result_of",
    "sidecar_meta",
    "statistics_section",
]

SCHEMA = "ratingbench.results"
SCHEMA_VERSION = 1

#: the sections a results file cannot be read without
REQUIRED = ("dataset", "split", "models")


def document(
    *,
    status: str,
    created: str,
    finished: str,
    command: list[str] | None,
    run_spec: dict[str, Any],
    protocol: str,
    provenance: dict[str, Any],
    device: str,
    executor: dict[str, Any] | None,
    seeds: Sequence[int],
    dataset: dict[str, Any],
    split: dict[str, Any],
    embeddings: dict[str, Any] | None,
    statistics: dict[str, Any],
    timings: dict[str, float],
    models: list[dict[str, Any]],
    seed_summary: dict[str, Any],
) -> dict[str, Any]:
    """A results document, its sections in the schema's order (``provenance``: where it ran
    and the run id, ``executor``: where the jobs ran; the results do not depend on it)."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "created": created,
        "finished": finished,
        "command": command,
        "run_spec": run_spec,
        "protocol": protocol,
        **provenance,
        "device": device,
        "executor": executor,
        "seeds": seeds,
        "dataset": dataset,
        "split": split,
        "embeddings": embeddings,
        "statistics": statistics,
        "timings": timings,
        "models": models,
        "seed_summary": seed_summary,
    }


def statistics_section(
    *,
    method: str | None,
    n_units: int | None,
    metrics: list[str],
    table: list[dict[str, Any]] | None,
    reference: str | None,
    min_test_users: int,
    per_seed: bool,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    """The ``statistics`` section: how the intervals were made (``method`` resolved, ``n_units``
    test users resampled), the metrics by name, the table over seeds, and the reference's key
    text."""
    return {
        "metric_ci": "bootstrap over test queries",
        "difference_ci": "paired bootstrap over the same resampled queries",
        "resampling": "one resampling of the test users shared by every model "
        "(a user's test targets stay together)",
        "method": method,
        "units": "users",
        "n_units": n_units,
        "metrics": metrics,
        "multiplicity": "p-values Holm-adjusted across the comparisons with the reference; "
        "verdicts read the adjusted p-value",
        "min_test_users": min_test_users,
        "per_seed": per_seed,
        "table": table,
        "n_resamples": n_resamples,
        "confidence": confidence,
        "seed": seed,
        "reference": reference,
    }


def record_of(
    result: FitResult,
    metrics: dict[str, Any] | None = None,
    vs_reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The model record of ``result``, with its scores (None when it was not scored)."""
    job = result.job
    return {
        "key": job.key,
        "run_key": job.run_key.to_dict(),
        "label": job.spec.label,
        "name": job.spec.name,
        "options": dict(job.spec.options),
        # where a plugin's code came from (file hash, or package and version)
        "source": None if job.spec.source is None else job.spec.source.to_dict(),
        "seed": job.seed,
        "embedding": job.embedding,
        "group": job.group,
        "status": str(result.status),
        "error": result.error,
        "traceback": result.traceback,
        "config": result.config,
        "fit_info": result.fit_info,
        "refit": result.refit,
        "learning_curve": None
        if result.learning_curve is None
        else [dict(c) for c in result.learning_curve],
        "timings": {"fit_s": result.fit_s, "predict_s": result.predict_s},
        "memory": {"peak_rss_mb": result.peak_rss_mb, "rss_delta_mb": result.rss_delta_mb},
        "val_rmse": result.val_rmse,
        "n_fallback": result.n_fallback,
        "n_clipped": result.n_clipped,
        "flags": list(result.flags),
        "notes": list(result.notes),
        "metrics": metrics,
        "vs_reference": vs_reference,
    }


def result_of(
    rec: dict[str, Any],
    job: FitJob,
    pred: NDArray[np.float32],
    fallback: NDArray[np.bool_],
) -> FitResult:
    """The finished result a model record holds (``--resume``), for ``job``, with its
    sidecar columns ``pred`` and ``fallback``. Where it ran is not this run's: None."""
    timings = rec.get("timings") or {}
    mem = rec.get("memory") or {}
    curve = rec.get("learning_curve")
    return FitResult(
        job,
        Status.OK,
        config=rec.get("config") or {},
        fit_info=rec.get("fit_info") or {},
        refit=bool(rec.get("refit")),
        learning_curve=None if curve is None else tuple(curve),
        val_rmse=rec.get("val_rmse"),
        fit_s=timings.get("fit_s", 0.0),
        predict_s=timings.get("predict_s", 0.0),
        peak_rss_mb=mem.get("peak_rss_mb"),
        rss_delta_mb=mem.get("rss_delta_mb"),
        pred=pred,
        fallback=fallback,
        n_clipped=rec.get("n_clipped"),
        flags=tuple(rec.get("flags") or ()),
        notes=tuple(rec.get("notes") or ()),
    )


def sidecar_meta(doc: dict[str, Any], rows: int) -> dict[str, Any]:
    """What the sidecar's parquet metadata records of its document."""
    return {
        "run_id": doc.get("run_id"),
        "dataset_hash": (doc.get("dataset") or {}).get("hash"),
        "split_hash": (doc.get("split") or {}).get("hash"),
        "rows": rows,
    }


@dataclass(frozen=True)
class ModelRecord:
    """One model run of a results file, read through its ``RunKey`` (never its key text).

    ``metrics`` and ``vs_reference`` map each metric of ``bench.stats.METRIC_TABLE`` (by
    name) to its JSON record: ``estimate, low, high, method`` and, for differences,
    ``p_value, p_adjusted, verdict``. They are empty when the run did not finish.
    """

    key: RunKey
    status: str  # "ok" | "failed" | "not run" | "pending"
    metrics: dict[str, dict[str, Any]]
    vs_reference: dict[str, dict[str, Any]]
    record: dict[str, Any]  # the record as written (config, fit_info, learning_curve, ...)
    pred: NDArray[np.float32] | None = None  # (K,) sidecar predictions, row-aligned
    fallback: NDArray[np.bool_] | None = None  # (K,) True where the model fell back

    @classmethod
    def from_dict(cls, rec: dict[str, Any]) -> ModelRecord:
        return cls(
            key=RunKey.from_record(rec),
            status=str(rec.get("status")),
            metrics=dict(rec.get("metrics") or {}),
            vs_reference=dict(rec.get("vs_reference") or {}),
            record=rec,
        )

    def result(self, job: FitJob) -> FitResult | None:
        """The finished result this record holds for ``job`` (None unless it finished and
        its predictions were read)."""
        if not self.finished or self.pred is None or self.fallback is None:
            return None
        return result_of(self.record, job, self.pred, self.fallback)

    @property
    def group(self) -> RunKey:
        """Every seed of this model on this embedding."""
        return self.key.group

    @property
    def seed(self) -> int | None:
        """The seed the model ran with (also when the key does not show it)."""
        seed = self.record.get("seed")
        return None if seed is None else int(seed)

    @property
    def embedding(self) -> str | None:
        """The embedding the model ran on (also when the key does not show it)."""
        emb = self.record.get("embedding")
        return None if emb is None else str(emb)

    @property
    def finished(self) -> bool:
        return self.status == Status.OK

    @property
    def scored(self) -> bool:
        """Finished, with metrics."""
        return self.finished and bool(self.metrics)

    @property
    def error(self) -> str | None:
        return self.record.get("error")

    @property
    def learning_curve(self) -> list[dict[str, Any]] | None:
        return self.record.get("learning_curve") or None

    @property
    def fit_info(self) -> dict[str, Any]:
        return dict(self.record.get("fit_info") or {})

    @property
    def n_fallback(self) -> int | None:
        return self.record.get("n_fallback")

    @property
    def timings(self) -> dict[str, Any]:
        return dict(self.record.get("timings") or {})

    @property
    def pred_column(self) -> str:
        return f"pred:{self.key}"

    @property
    def fallback_column(self) -> str:
        return f"fallback:{self.key}"

    def with_predictions(self, frame: pd.DataFrame | None) -> ModelRecord:
        """This record with its sidecar columns of ``frame`` (None where they are absent)."""
        if frame is None or self.pred_column not in frame.columns:
            return replace(self, pred=None, fallback=None)
        fb = frame[self.fallback_column] if self.fallback_column in frame.columns else None
        return replace(
            self,
            pred=frame[self.pred_column].to_numpy(np.float32),
            fallback=None if fb is None else fb.to_numpy(bool),
        )
