"""Typed readers of results files: ``ResultsDoc`` and its ``ModelRecord``s (the record's
reader lives with its writer in ``bench.results.schema``), read through their ``RunKey``s,
and the checks a file passes before a run resumes it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.errors import ResultsError
from bench.fileio import clean_stale_temps
from bench.results.format import (
    ID_COLUMNS,
    clean_json,
    json_default,
    load_results,
    read_predictions,
    sidecar_of,
)
from bench.results.schema import ModelRecord
from bench.runkey import RunKey


@dataclass(frozen=True)
class ResultsDoc:
    """A results file, validated (``load_results``), with typed model records and, when
    read, its predictions sidecar. ``raw`` is the JSON as written."""

    path: Path
    raw: dict[str, Any]
    models: tuple[ModelRecord, ...]
    predictions: pd.DataFrame | None = None  # the sidecar: one row per test query

    def __iter__(self) -> Iterator[ModelRecord]:
        return iter(self.models)

    @classmethod
    def of(cls, path: Path, raw: dict[str, Any]) -> ResultsDoc:
        """The document as written to ``path`` from the dict a run holds (numpy values and
        NaN made what the JSON holds)."""
        raw = json.loads(json.dumps(clean_json(raw), default=json_default))
        return cls(Path(path), raw, tuple(ModelRecord.from_dict(m) for m in raw["models"]))

    @property
    def status(self) -> str | None:
        return self.raw.get("status")

    @property
    def dataset(self) -> dict[str, Any]:
        return dict(self.raw["dataset"])

    @property
    def split(self) -> dict[str, Any]:
        return dict(self.raw["split"])

    @property
    def statistics(self) -> dict[str, Any]:
        return dict(self.raw.get("statistics") or {})

    @property
    def dataset_hash(self) -> str | None:
        return self.dataset.get("hash")

    @property
    def split_hash(self) -> str | None:
        return self.split.get("hash")

    @property
    def n_test(self) -> int:
        return int((self.split.get("counts") or {}).get("test", 0))

    @property
    def reference(self) -> str | None:
        """The text form of the run's reference key."""
        return self.statistics.get("reference")

    @property
    def run_spec(self) -> dict[str, Any] | None:
        """What ``runner.RunSpec.from_dict`` rebuilds (``bench rerun``, ``--resume``)."""
        return self.raw.get("run_spec")

    @property
    def scale(self) -> tuple[float, float, float | None]:
        """(low, high, step) of the rating scale the run recorded."""
        sc = self.dataset.get("scale") or {}
        step = sc.get("step")
        return (
            float(sc.get("low", 0.5)),
            float(sc.get("high", 5.0)),
            (None if step is None else float(step)),
        )

    @property
    def source_record(self) -> dict[str, Any] | None:
        """The run's data source as recorded (``run_spec.source``, the one serialised form
        of it: ``bench.data.loading.DataSource.from_dict`` builds it), or None when the file
        does not record it."""
        src = (self.run_spec or {}).get("source")
        return dict(src) if src else None

    def model(self, key: RunKey | str) -> ModelRecord | None:
        """The record of ``key`` (a RunKey, or its text form as typed in ``--reference``)."""
        return next((m for m in self.models if m.key == key or str(m.key) == key), None)

    def finished(self) -> list[ModelRecord]:
        return [m for m in self.models if m.finished]

    def with_predictions(self, frame: pd.DataFrame | None) -> ResultsDoc:
        return replace(
            self, predictions=frame, models=tuple(m.with_predictions(frame) for m in self.models)
        )


def read_results(path: Path, *, predictions: bool = True) -> ResultsDoc:
    """The results file ``path`` as a ``ResultsDoc``; with ``predictions`` its sidecar too
    (checked to belong to it; None when absent). Raises ``ResultsError`` (one line) when the
    file is missing or invalid, or the sidecar unreadable or another run's."""
    path = Path(path)
    raw = load_results(path)
    doc = ResultsDoc(path, raw, tuple(ModelRecord.from_dict(m) for m in raw["models"]))
    return doc.with_predictions(read_predictions(path, raw)) if predictions else doc


def resume_results(
    path: Path, *, dataset_hash: str, split_hash: str, queries: pd.DataFrame
) -> tuple[ResultsDoc, list[str]]:
    """The results file ``path`` and its sidecar, verified for ``--resume``: the same
    dataset and split hashes as the run about to resume, a sidecar of this run (run id)
    with one row per test query and the same queries in the same order (``queries``: the
    columns ``user_id, movie_id, target_time, truth`` of the split being resumed), and
    finite predictions for every finished model it holds. Stale temp files in the folder
    are removed.

    Returns the document (``.predictions`` None without a sidecar; a finished record's
    ``pred`` is None when the sidecar lacks it: it runs again) and notes on finished models
    that will run again. Raises ``ResultsError`` (one line) when anything does not match."""
    path = Path(path)
    doc = read_results(path, predictions=False)
    if doc.split_hash != split_hash or doc.dataset_hash != dataset_hash:
        raise ResultsError(
            f"{path}: cannot resume: the data or split differ from the run's "
            f"(split {doc.split_hash} then, {split_hash} now; dataset "
            f"{doc.dataset_hash} then, {dataset_hash} now)"
        )
    clean_stale_temps(path.parent)
    done = doc.finished()
    try:
        frame = read_predictions(path, doc.raw)
    except ResultsError as e:
        raise ResultsError(f"cannot resume: {e}") from None
    notes: list[str] = []
    if frame is None:
        if done:
            notes.append(
                f"{path.name} has no predictions sidecar: its {len(done)} finished model "
                "run(s) will run again"
            )
        return doc, notes
    side = sidecar_of(path, doc.raw)
    if len(frame) != len(queries):
        raise ResultsError(
            f"{side}: cannot resume: the predictions sidecar has {len(frame)} rows; the split "
            f"has {len(queries)} test queries"
        )
    for col in ID_COLUMNS:
        if col not in frame.columns:
            raise ResultsError(f"{side}: cannot resume: the predictions sidecar has no {col!r}")
        a = frame[col].to_numpy()
        b = queries[col].to_numpy()
        if not np.array_equal(a, b):
            i = int(np.flatnonzero(a != b)[0])
            raise ResultsError(
                f"{side}: cannot resume: the predictions sidecar's column {col!r} differs from "
                f"the split's test queries (first at row {i + 1}); expected the sidecar of "
                f"this split"
            )
    for m in done:
        if any(c not in frame.columns for c in (m.pred_column, m.fallback_column)):
            notes.append(f"{m.key}: finished in {path.name} but not in its sidecar: runs again")
        elif not np.all(np.isfinite(frame[m.pred_column].to_numpy(np.float64))):
            raise ResultsError(
                f"{side}: cannot resume: column {m.pred_column!r} has missing or NaN predictions"
            )
    return doc.with_predictions(frame), notes
