"""Results files: one JSON per run (never overwritten) plus a per-query predictions sidecar.

The JSON carries a schema version and everything needed to trust and repeat the run. The
sidecar (parquet, same stem, ``.predictions.parquet``) has one row per test query:
``user_id, movie_id, target_time, truth`` and, per model run ``KEY``, ``pred:KEY`` and
``fallback:KEY``. Files are written to a temp file in the same folder, then renamed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import ResultsError

__all__ = [
    "SCHEMA",
    "SCHEMA_VERSION",
    "atomic_write",
    "load_results",
    "read_predictions",
    "sidecar_path",
    "write_results",
]

SCHEMA = "ratingbench.results"
SCHEMA_VERSION = 1


def atomic_write(path: Path, write: Callable[[Path], object], *, overwrite: bool = True) -> None:
    """Call ``write(tmp)`` on a temp file in ``path``'s folder, then rename it to ``path``.

    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` (checked
    atomically with a hard link, so a concurrent writer cannot be clobbered). On any error
    the temp file is removed and ``path`` is untouched.
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual file mode
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails if path exists
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def sidecar_path(json_path: Path) -> Path:
    json_path = Path(json_path)
    return json_path.with_name(json_path.stem + ".predictions.parquet")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if not np.isfinite(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """Replace NaN/inf floats by None so the JSON stays standard."""
    if isinstance(o, float):
        return o if np.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, list | tuple):
        return [_clean(v) for v in o]
    return o


def new_results_path(out_dir: Path, stem: str) -> Path:
    """A fresh ``out_dir/stem.json`` that does not exist yet (suffix -2, -3... if needed)."""
    out_dir = Path(out_dir)
    candidate = out_dir / f"{stem}.json"
    i = 2
    while candidate.exists() or sidecar_path(candidate).exists():
        candidate = out_dir / f"{stem}-{i}.json"
        i += 1
    return candidate


def write_results(
    path: Path, doc: dict[str, Any], predictions: pd.DataFrame | None, *, overwrite: bool = False
) -> None:
    """Write the sidecar (if any) then the JSON, each atomically. The JSON is written last
    so a JSON on disk always has its sidecar. ``overwrite`` is only for updating this run's
    own file (e.g. marking it complete)."""
    path = Path(path)
    if predictions is not None:
        table = pa.Table.from_pandas(predictions, preserve_index=False)
        atomic_write(
            sidecar_path(path),
            lambda tmp: pq.write_table(table, tmp, compression="zstd"),
            overwrite=True,
        )
        doc = {**doc, "predictions_file": sidecar_path(path).name}
    text = json.dumps(_clean(doc), indent=2, default=_json_default, allow_nan=False)
    atomic_write(
        path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite=overwrite
    )


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
    for key in ("dataset", "split", "models"):
        if key not in doc:
            raise ResultsError(f"{path}: results file has no '{key}' section (truncated?)")
    return doc


def read_predictions(path: Path, doc: dict[str, Any] | None = None) -> pd.DataFrame | None:
    """The sidecar of results file ``path`` as a DataFrame, or None when it is absent."""
    path = Path(path)
    name = (doc or {}).get("predictions_file")
    side = path.with_name(name) if name else sidecar_path(path)
    if not side.is_file():
        return None
    try:
        return pq.read_table(side).to_pandas()
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(f"{side}: predictions sidecar is unreadable ({e})") from e
