"""Writing one run's results: ``ResultsWriter`` owns the pair of files (the name it claims,
the sidecar, every atomic rewrite); ``write_results`` writes one pair.

A run claims its name when it first writes: the sidecar, then the JSON, each created
exclusively, so two runs started at once into one folder get two names (``-2``, ``-3``...)
and never share or overwrite a file. Updates write the sidecar, then the JSON: the JSON on
disk is always complete and names only models whose columns its sidecar holds.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import ResultsError
from bench.fileio import atomic_write, clean_stale_temps
from bench.results.format import clean_json, json_default, sidecar_path
from bench.results.schema import sidecar_meta

__all__ = ["ResultsWriter", "new_results_path", "new_run_id", "write_results"]


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


class ResultsWriter:
    """One run's results file and its sidecar: the name claimed at the first write (the next
    free ``-N`` name if another run took it), then every rewrite, each atomic. The sidecar is
    written again only when the models it holds change: a write whose predictions are those
    this writer last wrote (e.g. a run's final save) rewrites only the JSON.

    ``ResultsWriter.new(out_dir, stem)`` for a new run; ``ResultsWriter.resume(path)`` for
    the pair of a run being resumed (its files exist: rewritten in place)."""

    def __init__(self, path: Path, *, claimed: bool) -> None:
        self._path = Path(path)
        self._claimed = claimed
        self._sidecar_keys: list[str] | None = None  # the models of the sidecar last written

    @classmethod
    def new(cls, out_dir: Path, stem: str) -> ResultsWriter:
        return cls(new_results_path(out_dir, stem), claimed=False)

    @classmethod
    def resume(cls, path: Path) -> ResultsWriter:
        return cls(path, claimed=True)

    @property
    def path(self) -> Path:
        """The results JSON (its final name once the first write claimed it)."""
        return self._path

    def write(
        self, doc: dict[str, Any], keys: list[str], predictions: Callable[[], pd.DataFrame]
    ) -> Path:
        """Write ``doc`` and, unless the sidecar already holds exactly the models ``keys``,
        the sidecar ``predictions()`` builds; returns the JSON's path. Raises
        ``ResultsError`` as ``write_results`` does."""
        if self._claimed and keys == self._sidecar_keys:
            self._path = write_results(self._path, doc, None, overwrite=True, sidecar_current=True)
        else:
            self._path = write_results(self._path, doc, predictions(), overwrite=self._claimed)
        self._claimed, self._sidecar_keys = True, list(keys)
        return self._path


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
