"""Results files: one JSON per run (never overwritten) plus a per-query predictions sidecar.

The JSON carries a schema version and everything needed to trust and repeat the run. The
sidecar (parquet, same stem, ``.predictions.parquet``) has one row per test query:
``user_id, movie_id, target_time, truth`` and, per model run ``KEY``, ``pred:KEY`` and
``fallback:KEY``. Its parquet metadata (key ``ratingbench``) names the run it belongs to
(``run_id``, dataset and split hashes, row count), so a sidecar from another run is refused.

Files are written to a temp file in the same folder, then renamed. A run claims its name
when it first writes: the sidecar, then the JSON, each created exclusively, so two runs
started at once into one folder get two names (``-2``, ``-3``...) and never share or
overwrite a file. Updates write the sidecar, then the JSON: the JSON on disk is always
complete and names only models whose columns its sidecar holds. Temp files are named
``.NAME.HOST-PID.XXXXXXXX.tmp``; those of dead writers are removed on the next write into
the folder (``clean_stale_temps``).

The package: ``files`` (atomic writes, stale temps), ``format`` (schema, reading and
validating the files), ``doc`` (typed readers, resuming); this module writes.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import ResultsError
from bench.results.doc import ModelRecord, ResultsDoc, open_for_resume, read_results, resume_results
from bench.results.files import atomic_write, check_output_file, clean_stale_temps
from bench.results.format import (
    SCHEMA,
    SCHEMA_VERSION,
    clean_json,
    json_default,
    load_results,
    read_predictions,
    sidecar_meta,
    sidecar_path,
)

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "ModelRecord",
    "ResultsDoc",
    "atomic_write",
    "check_output_file",
    "check_reference",
    "clean_stale_temps",
    "load_results",
    "new_run_id",
    "open_for_resume",
    "read_predictions",
    "read_results",
    "resume_results",
    "sidecar_path",
    "write_results",
]


def new_run_id() -> str:
    """A random id binding a results JSON to its predictions sidecar."""
    return os.urandom(8).hex()


def new_results_path(out_dir: Path, stem: str) -> Path:
    """A fresh ``out_dir/stem.json`` that does not exist yet (suffix -2, -3... if needed).
    Only a proposal: ``write_results`` claims the name atomically and moves on if a
    concurrent run took it first."""
    out_dir = Path(out_dir)
    candidate = out_dir / f"{stem}.json"
    i = 2
    while candidate.exists() or sidecar_path(candidate).exists():
        candidate = out_dir / f"{stem}-{i}.json"
        i += 1
    return candidate


def check_reference(reference: str | None, docs: list[dict[str, Any]]) -> None:
    """Raise ``ResultsError`` when ``reference`` (``--reference``) is given and is not the
    key of a model run in any of ``docs``, listing the known keys."""
    known = list(dict.fromkeys(str(m.get("key")) for d in docs for m in d.get("models", [])))
    if reference is not None and reference not in known:
        raise ResultsError(
            f"--reference {reference!r} is not a model run in these files; known: "
            f"{', '.join(known) or '(none)'}"
        )


def _next_name(path: Path) -> Path:
    """``stem-2.json`` after ``stem.json``, ``stem-3.json`` after ``stem-2.json``..."""
    m = re.fullmatch(r"(.*)-(\d+)", path.stem)
    base, k = (m[1], int(m[2]) + 1) if m and int(m[2]) >= 2 else (path.stem, 2)
    cand = path.with_name(f"{base}-{k}.json")
    while cand.exists() or sidecar_path(cand).exists():
        k += 1
        cand = path.with_name(f"{base}-{k}.json")
    return cand


def write_results(
    path: Path,
    doc: dict[str, Any],
    predictions: pd.DataFrame | None,
    *,
    overwrite: bool = False,
    sidecar_current: bool = False,
) -> Path:
    """Write the sidecar (if any) then the JSON, each atomically, and return the JSON's path.

    ``sidecar_current`` (with ``overwrite`` and no ``predictions``): the sidecar this run last
    wrote beside ``path`` already holds these predictions; only the JSON is rewritten.

    ``overwrite=False`` (a run's first write) claims a new name: when ``path`` or its
    sidecar already exists (another run, perhaps started in the same second), the next
    free ``-N`` name is taken instead; it also removes stale temp files of dead writers in
    the folder. ``overwrite=True`` updates this run's own pair. The JSON is written last,
    so a JSON on disk always has its sidecar.

    Raises ``ResultsError`` (one line) when the files cannot be written (disk full, no
    permission), saying whether the results file on disk is still valid and resumable."""
    path = Path(path)
    if sidecar_current and (not overwrite or predictions is not None):
        raise ValueError("sidecar_current is for an update (overwrite) without predictions")
    if not overwrite:
        clean_stale_temps(path.parent)
    while True:
        try:
            _write_pair(path, doc, predictions, overwrite, sidecar_current)
            return path
        except FileExistsError:
            if overwrite:
                raise
            path = _next_name(path)
        except OSError as e:
            why = e.strerror or str(e)
            if overwrite and path.is_file():
                raise ResultsError(
                    f"{path}: cannot update the results ({why}); the file still holds the last "
                    "complete state (valid JSON, every finished model) and the run can be "
                    f"finished with `bench run --resume {path}` once there is room"
                ) from None
            raise ResultsError(
                f"{path}: cannot write the results ({why}); nothing was written"
            ) from None


def _write_pair(
    path: Path,
    doc: dict[str, Any],
    predictions: pd.DataFrame | None,
    overwrite: bool,
    sidecar_current: bool = False,
) -> None:
    claimed: Path | None = None
    if sidecar_current:  # the sidecar on disk is this doc's: name it, do not write it again
        doc = {**doc, "predictions_file": sidecar_path(path).name}
    if predictions is not None:
        table = pa.Table.from_pandas(predictions, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"ratingbench"] = json.dumps(sidecar_meta(doc, table.num_rows)).encode()
        table = table.replace_schema_metadata(meta)
        side = sidecar_path(path)
        atomic_write(
            side, lambda tmp: pq.write_table(table, tmp, compression="zstd"), overwrite=overwrite
        )
        claimed = None if overwrite else side
        doc = {**doc, "predictions_file": side.name}
    text = json.dumps(clean_json(doc), indent=2, default=json_default, allow_nan=False)
    try:
        atomic_write(
            path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite=overwrite
        )
    except BaseException:
        if claimed is not None:  # the sidecar this call created exclusively: ours to remove
            claimed.unlink(missing_ok=True)
        raise
