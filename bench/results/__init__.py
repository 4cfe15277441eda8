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

The package: ``schema`` (the document's sections and the model record, written and read),
``format`` (standard JSON, reading and validating the files), ``doc`` (typed readers,
resuming), ``writer`` (``ResultsWriter``: one run's pair of files, claimed and rewritten);
the atomic writes are ``bench.fileio``'s.
"""

from __future__ import annotations

from typing import Any

from bench.errors import ResultsError
from bench.results.doc import ResultsDoc, read_results, resume_results
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
from bench.results.schema import ModelRecord
from bench.results.writer import ResultsWriter, new_results_path, new_run_id, write_results

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "ModelRecord",
    "ResultsDoc",
    "ResultsWriter",
    "check_reference",
    "clean_json",
    "json_default",
    "load_results",
    "new_results_path",
    "new_run_id",
    "read_predictions",
    "read_results",
    "resume_results",
    "sidecar_meta",
    "sidecar_path",
    "write_results",
]


def check_reference(reference: str | None, docs: list[dict[str, Any]]) -> None:
    """Raise ``ResultsError`` when ``reference`` (``--reference``) is given and is not the
    key of a model run in any of ``docs``, listing the known keys."""
    known = list(dict.fromkeys(str(m.get("key")) for d in docs for m in d.get("models", [])))
    if reference is not None and reference not in known:
        raise ResultsError(
            f"--reference {reference!r} is not a model run in these files; known: "
            f"{', '.join(known) or '(none)'}"
        )
