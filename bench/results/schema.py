"""The results schema, both ways: the document's sections, a model record written from a
job's result and its scores, and read back (typed, ``ModelRecord``; or as the result it was,
for ``--resume``). Every reader and writer of results files goes through this module, so a
key is spelled once.

Schema version 1, the document in the order written::

    schema, schema_version, status (complete | incomplete), created, finished, command,
    run_spec, protocol, ratingbench, git, versions, python, platform, run_id, device,
    executor, seeds, dataset, split, embeddings, statistics, timings, models, seed_summary
    (+ predictions_file, added by the writer: the sidecar's name)

and each model record as ``record_of`` writes it (``fallback_reported: false`` only on the
record of a model that does not flag its fallbacks: its ``n_fallback`` is null, not 0). A
file read back is checked against the JSON types of ``DOCUMENT_FIELDS``, ``MODEL_FIELDS``
and ``INTERVAL_FIELDS`` (``problem_of``).
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
    # a plain class's fallback flags are all False: not a count of 0 but "not reported",
    # recorded as ``fallback_reported: false`` (absent: reported, as in earlier files)
    reported = result.fallback is None or job.reports_fallback
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
        "n_fallback": result.n_fallback if reported else None,
        **({} if reported else {"fallback_reported": False}),
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
    def fallback_reported(self) -> bool:
        """Whether the model flags its fallbacks (files without the flag: as they say)."""
        return self.record.get("fallback_reported") is not False

    @property
    def n_fallback(self) -> int | None:
        """How many test predictions fell back; None when not known: not finished, or a
        model that does not report its fallbacks (its sidecar flags are all False)."""
        return self.record.get("n_fallback") if self.fallback_reported else None

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


# -- checking a document read back ---------------------------------------------------------
# The JSON types each field may hold ("|"-separated): what a reader of this schema relies on.
# A field that is absent passes (files of earlier writers leave some out) unless REQUIRED.
_ANY_INTERVAL = "number|null"
INTERVAL_FIELDS: dict[str, str] = {
    "estimate": _ANY_INTERVAL,
    "low": _ANY_INTERVAL,
    "high": _ANY_INTERVAL,
    "design_effect": _ANY_INTERVAL,
    "p_value": _ANY_INTERVAL,
    "p_adjusted": _ANY_INTERVAL,
    "method": "string|null",
    "verdict": "string|null",
}
MODEL_FIELDS: dict[str, str] = {
    "key": "string",
    "run_key": "object|null",
    "run_key.model": "string",
    "run_key.embedding": "string|null",
    "run_key.seed": "integer|null",
    "label": "string|null",
    "name": "string|null",
    "options": "object|null",
    "source": "object|null",
    "seed": "integer|null",
    "embedding": "string|null",
    "group": "string|null",
    "status": "string",
    "error": "string|null",
    "traceback": "string|null",
    "config": "object|null",
    "fit_info": "object|null",
    "refit": "boolean|null",
    "learning_curve": "array|null",
    "timings": "object|null",
    "timings.fit_s": "number|null",
    "timings.predict_s": "number|null",
    "memory": "object|null",
    "memory.peak_rss_mb": "number|null",
    "memory.rss_delta_mb": "number|null",
    "val_rmse": "number|null",
    "n_fallback": "integer|null",
    "fallback_reported": "boolean|null",
    "n_clipped": "integer|null",
    "flags": "array|null",
    "notes": "array|null",
    "metrics": "object|null",
    "vs_reference": "object|null",
}
DOCUMENT_FIELDS: dict[str, str] = {
    "status": "string|null",
    "run_id": "string|null",
    "run_spec": "object|null",
    "seeds": "array|null",
    "dataset": "object",
    "dataset.name": "string|null",
    "dataset.hash": "string|null",
    "dataset.scale": "object|null",
    "dataset.scale.low": "number|null",
    "dataset.scale.high": "number|null",
    "dataset.scale.step": "number|null",
    "split": "object",
    "split.hash": "string|null",
    "split.params": "object|null",
    "split.counts": "object|null",
    "split.counts.test": "integer|null",
    "embeddings": "object|null",
    "statistics": "object|null",
    "statistics.reference": "string|null",
    "statistics.table": "array|null",
    "timings": "object|null",
    "models": "array",
    "seed_summary": "object|null",
    "predictions_file": "string|null",
}
_JSON_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "null": lambda v: v is None,
}
_ARTICLE = {
    "string": "a string",
    "object": "an object",
    "array": "an array",
    "boolean": "a boolean",
    "integer": "an integer",
    "number": "a number",
}


def _json_type(v: Any) -> str:
    return next(
        (
            _ARTICLE.get(t, t)
            for t in ("null", "boolean", "integer", "number", "string", "array", "object")
            if _JSON_TYPES[t](v)
        ),
        type(v).__name__,
    )


def _check_fields(obj: dict[str, Any], fields: dict[str, str], where: str) -> str | None:
    """The first field of ``obj`` (dotted names reach into objects) whose value is not of
    the JSON types ``fields`` allow, as ``'where.field' must be ..., got ...``; None."""
    for name, allowed in fields.items():
        *parents, last = name.split(".")
        inner: Any = obj
        for p in parents:
            inner = inner.get(p) if isinstance(inner, dict) else None
        if not isinstance(inner, dict) or last not in inner:
            continue
        value = inner[last]
        kinds = allowed.split("|")
        if not any(_JSON_TYPES[k](value) for k in kinds):
            want = " or ".join(_ARTICLE.get(k, k) for k in kinds)
            return f"'{where}{name}' must be {want}, got {_json_type(value)}"
    return None


def _check_intervals(section: Any, where: str) -> str | None:
    if not isinstance(section, dict):
        return None
    for metric, rec in section.items():
        if not isinstance(rec, dict):
            return f"'{where}.{metric}' must be an object, got {_json_type(rec)}"
        bad = _check_fields(rec, INTERVAL_FIELDS, f"{where}.{metric}.")
        if bad:
            return bad
    return None


def problem_of(doc: dict[str, Any]) -> str | None:
    """The first field of results document ``doc`` whose JSON type this schema's readers
    cannot use (``'models[0].metrics.rmse.estimate' must be a number or null, got a
    string``), a model record that is not an object or has no key, or None."""
    bad = _check_fields(doc, DOCUMENT_FIELDS, "")
    if bad:
        return bad
    for i, rec in enumerate(doc["models"]):
        where = f"models[{i}]"
        if not isinstance(rec, dict):
            return f"'{where}' must be an object (a model record), got {_json_type(rec)}"
        if "key" not in rec and not isinstance(rec.get("run_key"), dict):
            return f"'{where}' has no 'key'"
        bad = (
            _check_fields(rec, MODEL_FIELDS, f"{where}.")
            or _check_intervals(rec.get("metrics"), f"{where}.metrics")
            or _check_intervals(rec.get("vs_reference"), f"{where}.vs_reference")
        )
        if bad:
            return bad
    return None
