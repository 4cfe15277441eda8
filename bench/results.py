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
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from bench.errors import ConfigError, ResultsError
from bench.runkey import RunKey

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from bench.data.loading import DataSource

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

SCHEMA = "ratingbench.results"
SCHEMA_VERSION = 1


_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TMP = re.compile(r"^\.(?P<name>.+)\.(?P<host>[0-9a-f]{8})-(?P<pid>\d+)\.[^.]+\.tmp$")
_OLD_TMP = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")  # mkstemp's name without host and pid
_FOREIGN_TMP_AGE_S = 24 * 3600  # a temp file of another host (or an unknown writer) this old


def atomic_write(path: Path, write: Callable[[Path], object], *, overwrite: bool = True) -> None:
    """Call ``write(tmp)`` on a temp file in ``path``'s folder, then rename it to ``path``.

    With ``overwrite=False`` an existing ``path`` raises ``FileExistsError`` (checked
    atomically with a hard link, so a concurrent writer cannot be clobbered). On any error
    the temp file is removed and ``path`` is untouched. The temp file's name carries this
    host and process id (``.NAME.HOST-PID.XXXXXXXX.tmp``), so that one left by a killed
    process can be told from a live writer's (``clean_stale_temps``).
    """
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
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


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove the temp files that ``atomic_write`` left in ``folder`` when its process died
    (killed between writing and renaming). A temp file is removed only when its writer ran
    on this host and that process no longer exists, or (another host's, or one named
    without a writer) when it is untouched for 24 hours; a live writer's file and files not
    named like ours are never touched.
    Returns the files removed; errors (a file already gone, no permission) are ignored."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for e in entries:
        if not (e.name.startswith(".") and e.name.endswith(".tmp")) or not e.is_file():
            continue
        m = _TMP.match(e.name)
        try:
            if m is not None and m["host"] == _HOST:
                stale = not _alive(int(m["pid"]))
            elif m is not None or _OLD_TMP.match(e.name):
                stale = now - e.stat().st_mtime > _FOREIGN_TMP_AGE_S
            else:
                continue  # not named like ours: someone else's file
            if stale:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def new_run_id() -> str:
    """A random id binding a results JSON to its predictions sidecar."""
    return os.urandom(8).hex()


def check_output_file(path: Path, option: str = "--out") -> None:
    """Raise ``ConfigError`` (one line, naming ``option``) unless ``path`` can be written:
    its folder exists, is a folder and is writable, and ``path`` is not a folder."""
    path = Path(path)
    parent = path.parent
    bad = None
    for p in (parent, *parent.parents):
        if p.exists():
            if not p.is_dir():
                bad = f"{p} is a file, not a folder"
            elif p != parent:
                bad = f"the folder {parent} does not exist"
            elif not os.access(parent, os.W_OK):
                bad = f"the folder {parent} is not writable"
            break
    if bad is None and path.is_dir():
        bad = "it is a folder"
    if bad is not None:
        raise ConfigError(f"{option} {path}: cannot write there ({bad}); expected a file path")


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


def _sidecar_meta(doc: dict[str, Any], rows: int) -> dict[str, Any]:
    return {
        "run_id": doc.get("run_id"),
        "dataset_hash": (doc.get("dataset") or {}).get("hash"),
        "split_hash": (doc.get("split") or {}).get("hash"),
        "rows": rows,
    }


def write_results(
    path: Path, doc: dict[str, Any], predictions: pd.DataFrame | None, *, overwrite: bool = False
) -> Path:
    """Write the sidecar (if any) then the JSON, each atomically, and return the JSON's path.

    ``overwrite=False`` (a run's first write) claims a new name: when ``path`` or its
    sidecar already exists (another run, perhaps started in the same second), the next
    free ``-N`` name is taken instead; it also removes stale temp files of dead writers in
    the folder. ``overwrite=True`` updates this run's own pair. The JSON is written last,
    so a JSON on disk always has its sidecar.

    Raises ``ResultsError`` (one line) when the files cannot be written (disk full, no
    permission), saying whether the results file on disk is still valid and resumable."""
    path = Path(path)
    if not overwrite:
        clean_stale_temps(path.parent)
    while True:
        try:
            _write_pair(path, doc, predictions, overwrite)
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
    path: Path, doc: dict[str, Any], predictions: pd.DataFrame | None, overwrite: bool
) -> None:
    claimed: Path | None = None
    if predictions is not None:
        table = pa.Table.from_pandas(predictions, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"ratingbench"] = json.dumps(_sidecar_meta(doc, table.num_rows)).encode()
        table = table.replace_schema_metadata(meta)
        side = sidecar_path(path)
        atomic_write(
            side, lambda tmp: pq.write_table(table, tmp, compression="zstd"), overwrite=overwrite
        )
        claimed = None if overwrite else side
        doc = {**doc, "predictions_file": side.name}
    text = json.dumps(_clean(doc), indent=2, default=_json_default, allow_nan=False)
    try:
        atomic_write(
            path, lambda tmp: tmp.write_text(text + "\n", encoding="utf-8"), overwrite=overwrite
        )
    except BaseException:
        if claimed is not None:  # the sidecar this call created exclusively: ours to remove
            claimed.unlink(missing_ok=True)
        raise


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
    """The sidecar of results file ``path`` as a DataFrame, or None when it is absent.

    Raises ``ResultsError`` when it is unreadable, or when it does not belong to ``doc``:
    another run's id, other dataset or split hashes, or a row count other than the
    split's test count (checked where the files record them)."""
    path = Path(path)
    name = (doc or {}).get("predictions_file")
    side = path.with_name(name) if name else sidecar_path(path)
    if not side.is_file():
        return None
    try:
        table = pq.read_table(side)
    except (pa.ArrowInvalid, OSError) as e:
        raise ResultsError(f"{side}: predictions sidecar is unreadable ({e})") from e
    if doc is not None:
        _check_sidecar(side, path, doc, table)
    return table.to_pandas()


def _check_sidecar(side: Path, path: Path, doc: dict[str, Any], table: pa.Table) -> None:
    raw = (table.schema.metadata or {}).get(b"ratingbench")
    try:
        meta = json.loads(raw) if raw else {}
    except ValueError:
        meta = {}
    own = _sidecar_meta(doc, table.num_rows)
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


_ID_COLUMNS = ("user_id", "movie_id", "target_time", "truth")


# --------------------------------------------------------------------------- typed readers


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
        return self.status == "ok"

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
        raw = json.loads(json.dumps(_clean(raw), default=_json_default))
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

    def source(self) -> DataSource | None:
        """The run's data source, from ``run_spec.source`` (the one serialised form of it),
        or None when the file does not record it."""
        from bench.data.loading import DataSource

        src = (self.run_spec or {}).get("source")
        return DataSource.from_dict(src) if src else None

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
    side = path.with_name(doc.raw.get("predictions_file") or sidecar_path(path).name)
    if len(frame) != len(queries):
        raise ResultsError(
            f"{side}: cannot resume: the predictions sidecar has {len(frame)} rows; the split "
            f"has {len(queries)} test queries"
        )
    for col in _ID_COLUMNS:
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


def open_for_resume(
    path: Path, *, dataset_hash: str, split_hash: str, queries: pd.DataFrame
) -> tuple[dict[str, Any], pd.DataFrame | None, list[str]]:
    """``resume_results`` as (document as written, sidecar or None, notes); kept for the
    runner until it reads the typed ``ResultsDoc``."""
    doc, notes = resume_results(
        path, dataset_hash=dataset_hash, split_hash=split_hash, queries=queries
    )
    return doc.raw, doc.predictions, notes
