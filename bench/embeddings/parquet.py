"""The research notebook's embedding file format: a parquet table with columns ``movieId``
(integer) and ``embedding`` (list of floats of one fixed length), read with full validation
and written atomically."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from bench._checks import flagged
from bench.errors import ConfigError, DataError
from bench.fileio import atomic_write

__all__ = [
    "ID_COLUMN",
    "META_KEY",
    "VECTOR_COLUMN",
    "read_embedding_parquet",
    "write_embedding_parquet",
]

ID_COLUMN = "movieId"
VECTOR_COLUMN = "embedding"
META_KEY = b"ratingbench"  # schema metadata key of the JSON that ``write_embedding_parquet`` stores


def _fail(path: Path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def read_embedding_parquet(path: str | Path) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Read an embedding file in the notebook's format.

    Returns ``(ids, vectors)``: ids (M,) int64 movie ids (unique, file order) and vectors
    (M, D) float32 as stored (not normalised).

    Raises ``DataError`` naming the file and the problem for: a missing file; a file that is
    not parquet; a missing ``movieId`` or ``embedding`` column (listing the columns found); a
    non-integer or null ``movieId``; an ``embedding`` that is not a list of numbers, or null;
    an empty table; duplicate movie ids (count and first); rows of different lengths (the
    lengths found); NaN or infinite values (count and first movie id).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "embedding file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise _fail(path, f"not a parquet file ({e})") from None
    found = list(schema.names)
    missing = [c for c in (ID_COLUMN, VECTOR_COLUMN) if c not in found]
    if missing:
        raise _fail(
            path,
            f"missing column(s) {', '.join(map(repr, missing))}; found {found}; expected "
            f"{ID_COLUMN!r} (integer) and {VECTOR_COLUMN!r} (list of floats)",
        )
    try:
        table = pq.read_table(path, columns=[ID_COLUMN, VECTOR_COLUMN])
    except (pa.ArrowException, OSError) as e:
        raise _fail(path, f"cannot read the parquet data ({e})") from None
    id_col = table.column(ID_COLUMN)
    if not pa.types.is_integer(id_col.type):
        raise _fail(path, f"column {ID_COLUMN!r} has type {id_col.type}; expected integers")
    vec_col = table.column(VECTOR_COLUMN)
    vtype = vec_col.type
    is_list = (
        pa.types.is_list(vtype)
        or pa.types.is_large_list(vtype)
        or pa.types.is_fixed_size_list(vtype)
    )
    if not is_list or not (
        pa.types.is_floating(vtype.value_type) or pa.types.is_integer(vtype.value_type)
    ):
        raise _fail(path, f"column {VECTOR_COLUMN!r} has type {vtype}; expected a list of floats")
    if table.num_rows == 0:
        raise _fail(path, "the file is empty (no rows); expected one row per movie")
    if id_col.null_count:
        i = int(np.flatnonzero(pc.is_null(id_col).to_numpy(zero_copy_only=False))[0])
        raise _fail(
            path, f"column {ID_COLUMN!r} has {id_col.null_count} null(s) (first at row {i + 1})"
        )
    ids = id_col.to_numpy().astype(np.int64, copy=False)
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _fail(
            path,
            f"{int(dup.sum())} duplicate {ID_COLUMN}(s) (first: {ids[i]} at row {i + 1}); "
            "expected one row per movie",
        )
    if vec_col.null_count:
        i = int(np.flatnonzero(pc.is_null(vec_col).to_numpy(zero_copy_only=False))[0])
        raise _fail(
            path,
            f"{vec_col.null_count} row(s) have a null {VECTOR_COLUMN!r} (first: "
            f"{ID_COLUMN} {ids[i]})",
        )
    lengths = pc.list_value_length(vec_col).to_numpy(zero_copy_only=False).astype(np.int64)
    uniq, counts = np.unique(lengths, return_counts=True)
    if uniq.shape[0] > 1:
        found_l = ", ".join(f"{int(n)} ({int(c)} rows)" for n, c in zip(uniq, counts, strict=True))
        i = int(np.flatnonzero(lengths != uniq[np.argmax(counts)])[0])
        raise _fail(
            path,
            f"ragged {VECTOR_COLUMN!r}: rows have different lengths: {found_l} (first "
            f"odd one: {ID_COLUMN} {ids[i]}); expected one fixed length",
        )
    dim = int(uniq[0])
    if dim == 0:
        raise _fail(path, f"every {VECTOR_COLUMN!r} is an empty list")
    flat = pc.list_flatten(vec_col)
    flat = pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN
    vectors = flat.reshape(ids.shape[0], dim).astype(np.float32)
    bad = flagged(~np.isfinite(vectors).all(axis=1))
    if bad:
        raise _fail(
            path,
            f"{bad.count} row(s) have NaN, infinite or missing values (or values "
            f"beyond float32; first: {ID_COLUMN} {ids[bad.first]})",
        )
    return ids, vectors


def write_embedding_parquet(
    path: str | Path,
    ids: NDArray[np.integer],
    vectors: NDArray[np.floating],
    *,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write ``ids`` (M,) and ``vectors`` (M, D) in the notebook's format (``movieId`` int64,
    ``embedding`` list<float32>), atomically: a temporary file in the same folder is renamed
    into place, so a reader never sees half a file. ``metadata`` is stored as JSON in the
    schema metadata under ``ratingbench``."""
    path = Path(path)
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    m, d = vectors.shape
    if m * d > np.iinfo(np.int32).max:
        raise ConfigError(f"embedding too large for list<float32>: {m} x {d} values")
    offsets = pa.array(np.arange(0, m * d + 1, d, dtype=np.int64))
    emb = pa.LargeListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))
    emb = emb.cast(pa.list_(pa.float32()))
    table = pa.table({ID_COLUMN: pa.array(ids), VECTOR_COLUMN: emb})
    if metadata is not None:
        table = table.replace_schema_metadata({META_KEY: json.dumps(metadata, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))
