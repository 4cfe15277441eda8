"""The results file format: JSON that stays standard (no NaN, no numpy values), and reading a
results JSON and its predictions sidecar, validated (the keys: ``bench.results.schema``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import ResultsError
from bench.results.schema import REQUIRED, SCHEMA, SCHEMA_VERSION, problem_of, sidecar_meta

__all__ = [
    "ID_COLUMNS",
    "SCHEMA",
    "SCHEMA_VERSION",
    "clean_json",
    "json_default",
    "load_results",
    "read_predictions",
    "sidecar_meta",
    "sidecar_of",
    "sidecar_path",
]


def sidecar_path(json_path: Path) -> Path:
    json_path = Path(json_path)
    return json_path.with_name(json_path.stem + ".predictions.parquet")


def json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def clean_json(o: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON stays standard."""
    if isinstance(o, float):
        return o if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: clean_json(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [clean_json(v) for v in o]
    return o


def load_results(path: Path) -> dict[str, Any]:
    """Read and validate a results JSON. Raises ``ResultsError`` naming the file when it is
    missing, truncated, not JSON, not ours, or of an unknown schema version."""
    path = Path(path)
    if not path.is_file():
        raise ResultsError(f"{path}: results file not found")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ResultsError(f"{path}: not a valid results JSON (corrupt or truncated: {e})") from e
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ResultsError(f"{path}: not a ratingbench results file (no '{SCHEMA}' schema tag)")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ResultsError(
            f"{path}: results schema version {version!r} is not supported "
            f"(this ratingbench reads version {SCHEMA_VERSION})"
        )
    for key in REQUIRED:
        if key not in doc:
            raise ResultsError(f"{path}: results file has no '{key}' section (truncated?)")
    problem = problem_of(doc)
    if problem is not None:
        raise ResultsError(f"{path}: {problem}")
    sidecar_of(path, doc)  # a predictions_file that is not a plain name beside it: refused
    return doc


def sidecar_of(path: Path, doc: dict[str, Any] | None) -> Path:
    """Where the predictions sidecar of results file ``path`` is: the name its JSON records
    (``predictions_file``) or the default, always in ``path``'s folder. Raises
    ``ResultsError`` when the recorded name is not a plain file name (a path, ``..``, a
    folder): nothing outside the results' folder is opened because a file names it."""
    path = Path(path)
    name = (doc or {}).get("predictions_file")
    if name is None:
        return sidecar_path(path)
    plain = (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
        and Path(name).name == name
    )
    if not plain:
        shown = repr(name)[:80] if isinstance(name, str) else type(name).__name__
        raise ResultsError(
            f"{path}: 'predictions_file' must be a plain file name beside the results "
            f"file (e.g. {sidecar_path(path).name}), got {shown}"
        )
    return path.with_name(name)


def read_predictions(path: Path, doc: dict[str, Any] | None = None) -> pd.DataFrame | None:
    """The sidecar of results file ``path`` as a DataFrame, or None when it is absent.

    Raises ``ResultsError`` when it is unreadable, or when it does not belong to ``doc``:
    another run's id, other dataset or split hashes, or a row count other than the
    split's test count (checked where the files record them)."""
    path = Path(path)
    side = sidecar_of(path, doc)
    if not side.is_file():
        return None
    try:
        table = pq.read_table(side)
    except (pa.ArrowException, OSError, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultsError(f"{side}: predictions sidecar is unreadable ({why})") from None
    _check_columns(side, table)
    if doc is not None:
        _check_sidecar(side, path, doc, table)
    try:
        return table.to_pandas()
    except (pa.ArrowException, ValueError) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ResultsError(f"{side}: predictions sidecar is unreadable ({why})") from None


def _check_columns(side: Path, table: pa.Table) -> None:
    """Each column of the sidecar of the type its readers take: numbers for the ids, time,
    truth and ``pred:KEY``, booleans for ``fallback:KEY``."""
    for field in table.schema:
        name, t = field.name, field.type
        if name.startswith("fallback:"):
            ok, want = pa.types.is_boolean(t), "boolean"
        elif name in ID_COLUMNS or name.startswith("pred:"):
            ok, want = pa.types.is_integer(t) or pa.types.is_floating(t), "numeric"
        else:
            continue
        if not ok:
            raise ResultsError(
                f"{side}: predictions sidecar column {name!r} must be {want}, got {t}"
            )


def _check_sidecar(side: Path, path: Path, doc: dict[str, Any], table: pa.Table) -> None:
    raw = (table.schema.metadata or {}).get(b"ratingbench")
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    own = sidecar_meta(doc, table.num_rows)
    for key, what in (
        ("run_id", "another run"),
        ("dataset_hash", "another dataset"),
        ("split_hash", "another split"),
    ):
        if meta.get(key) and own[key] and meta[key] != own[key]:
            raise ResultsError(
                f"{side}: this predictions sidecar belongs to {what} ({key} {meta[key]}), not "
                f"to {path.name} ({own[key]}); expected the sidecar written with it"
            )
    n_test = ((doc.get("split") or {}).get("counts") or {}).get("test")
    if isinstance(n_test, int) and table.num_rows != n_test:
        raise ResultsError(
            f"{side}: the predictions sidecar has {table.num_rows} rows; {path.name}'s split "
            f"has {n_test} test queries"
        )


ID_COLUMNS = ("user_id", "movie_id", "target_time", "truth")
