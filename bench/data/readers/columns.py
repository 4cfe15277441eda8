"""Arrow columns to validated numpy arrays: ids, ratings, timestamps and strings.

Ids and integer timestamps are never converted through float64: text is parsed exactly,
and a float column whose values exceed 2**53 (where float64 cannot hold every integer) is
an error. Every failure is a ``DataError`` naming the file, the column, the first bad value
with its 1-based data row, and what was expected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import NDArray

from bench._checks import flagged
from bench.errors import DataError


def _first_row(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0]) + 1  # 1-based data row (header not counted)


def _numeric(col: pa.ChunkedArray, path: Path, name: str, what: str) -> NDArray[Any]:
    """A numeric numpy array from an Arrow column, or a ``DataError`` naming the bad value."""
    n_null = col.null_count
    if n_null:
        valid = ~np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        raise DataError(
            f"{path}: column {name!r} has {n_null} missing value(s) (first at data row "
            f"{_first_row(~valid)}); expected {what}"
        )
    t = col.type
    if pa.types.is_integer(t) or pa.types.is_floating(t):
        # per-chunk zero-copy views + one concatenate: much faster than ChunkedArray.to_numpy
        # on many chunks (which goes through Arrow's allocator)
        if col.num_chunks == 1:
            return col.chunk(0).to_numpy()
        if col.num_chunks == 0:
            return col.to_numpy()
        return np.concatenate([c.to_numpy() for c in col.chunks])
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        s = col.to_numpy(zero_copy_only=False)
        num = pd.to_numeric(pd.Series(s, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        stripped = np.char.strip(s.astype(str))
        bad = flagged(np.isnan(num) & ~np.isin(np.char.lower(stripped), ["nan", "+nan", "-nan"]))
        if bad:
            raise DataError(
                f"{path}: column {name!r} has a non-numeric value {s[bad.first]!r} at data row "
                f"{bad.first + 1}; expected {what}"
            )
        if np.all(num == np.round(num)) and np.all(np.abs(num) < 2.0**53):
            return num.astype(np.int64)
        return num
    raise DataError(f"{path}: column {name!r} has type {t}; expected {what}")


_FLOAT_EXACT = 2**53  # float64 holds every integer up to here, and not all beyond


def _is_string(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _exact_ints(col: pa.ChunkedArray, path: Path, name: str, what: str) -> NDArray[np.int64]:
    """(N,) int64 from a string column of whole numbers, parsed exactly (never through
    float64, which merges distinct integers above 2**53): digits with an optional sign and
    an optional all-zero fraction (``"12"``, ``"12.0"``). Raises ``DataError`` naming the
    first value that is missing, not a number, not whole, or beyond int64."""
    if col.null_count:
        _numeric(col, path, name, what)  # raises the missing-values error
    text = pc.utf8_trim_whitespace(col)
    whole = pc.match_substring_regex(text, r"^[+-]?[0-9]+(\.0*)?$")
    if not pc.all(whole).as_py():
        ok = np.asarray(whole.to_numpy(zero_copy_only=False), dtype=bool)
        i = int(np.flatnonzero(~ok)[0])
        v = col[i].as_py() if col.num_chunks else None
        try:
            num = float(str(v))
        except ValueError:
            num = float("nan")
        if num != num:  # NaN: not a number at all
            raise DataError(
                f"{path}: column {name!r} has a non-numeric value {v!r} at data row {i + 1}; "
                f"expected {what}"
            )
        raise DataError(
            f"{path}: column {name!r} has a non-integer value {num} at data row {i + 1} "
            f"(written {v!r}); expected {what}"
        )
    digits = pc.replace_substring_regex(text, r"\.0*$", "")
    try:
        out = pc.cast(digits, pa.int64())
    except pa.ArrowInvalid:
        raise DataError(
            f"{path}: column {name!r} has values beyond the 64-bit integer range; expected {what}"
        ) from None
    return np.asarray(out.to_numpy(), dtype=np.int64)


def _check_float_exact(a: NDArray[Any], path: Path, name: str, what: str) -> None:
    """Integral floats convert exactly only up to 2**53: beyond it, distinct integers were
    merged when the column was written as floating point, so refuse rather than guess."""
    big = flagged(np.abs(a) > _FLOAT_EXACT)
    if big:
        raise DataError(
            f"{path}: column {name!r} is stored as floating point and has {big.count} "
            f"value(s) above 2**53 (first: {a[big.first]:.0f} at data row {big.first + 1}), "
            f"where float64 cannot hold every integer: the conversion would be lossy; expected "
            f"{what} stored as integers"
        )


def _check_float_whole(a: NDArray[Any], path: Path, name: str, what: str) -> None:
    """A float column meant to hold integers: every value finite, whole and exact."""
    bad = flagged(~np.isfinite(a) | (a != np.round(a)))
    if bad:
        raise DataError(
            f"{path}: column {name!r} has a non-integer value {a[bad.first]} at data row "
            f"{bad.first + 1}; expected {what}"
        )
    _check_float_exact(a, path, name, what)


def ids(col: pa.ChunkedArray, path: Path, name: str) -> NDArray[np.int64]:
    """(N,) int64 non-negative integer ids, never converted through float64."""
    what = "non-negative integer ids"
    a = (
        _exact_ints(col, path, name, what)
        if _is_string(col.type)
        else _numeric(col, path, name, what)
    )
    if a.dtype.kind == "f":
        _check_float_whole(a, path, name, what)
    if a.dtype.kind == "u":
        if a.size and a.max() > np.iinfo(np.int64).max:
            raise DataError(f"{path}: column {name!r} has ids beyond int64; expected {what}")
    a = a.astype(np.int64, copy=False)
    neg = flagged(a < 0)
    if neg:
        raise DataError(
            f"{path}: column {name!r} has {neg.count} negative value(s) (first: {a[neg.first]} at "
            f"data row {neg.first + 1}); expected {what}"
        )
    return a


def ratings(col: pa.ChunkedArray, path: Path, name: str) -> NDArray[np.float32]:
    """(N,) float32 finite ratings."""
    what = "finite numbers"
    if col.null_count and (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        valid = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        raise DataError(
            f"{path}: column {name!r} has {col.null_count} NaN/missing value(s) (first at data "
            f"row {_first_row(valid)}); expected {what}"
        )
    a = _numeric(col, path, name, what).astype(np.float64, copy=False)
    bad = flagged(~np.isfinite(a))
    if bad:
        raise DataError(
            f"{path}: column {name!r} has {bad.count} NaN/inf value(s) (first: {a[bad.first]} at "
            f"data row {bad.first + 1}); expected {what}"
        )
    return a.astype(np.float32)


def timestamps(col: pa.ChunkedArray, path: Path, name: str) -> tuple[NDArray[np.int64], str | None]:
    """((N,) int64 timestamps, their unit when they came from datetimes, else None).

    Integer columns are kept as they are (their unit is decided by the caller); integers
    written as text are parsed exactly, never through float64. Datetime columns become
    integers in their own unit (``s``/``ms``/``us``/``ns``), dates Unix seconds, ISO-8601
    strings nanoseconds, so that sub-second order survives until ``build_interactions``
    sorts the events (it then floors to seconds). Time-zone-aware values are converted to
    UTC, naive ones are taken as UTC.
    """
    what = "integer Unix times (seconds, or ms/us/ns) or ISO-8601 datetimes"
    t = col.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        if col.null_count:
            _numeric(col, path, name, what)  # raises the missing-values error
        if pa.types.is_date(t):
            days = np.asarray(col.to_numpy(zero_copy_only=False)).astype("datetime64[s]")
            return days.astype(np.int64), "s"
        arr = pc.cast(col, pa.timestamp(t.unit)).to_numpy()  # drops the tz: UTC instants
        return np.asarray(arr).astype(np.int64), str(t.unit)
    if _is_string(t):
        if col.null_count == 0:
            text = pc.utf8_trim_whitespace(col)
            if not pc.all(pc.match_substring_regex(text, r"^[+-]?[0-9]+(\.0*)?$")).as_py():
                s = col.to_numpy(zero_copy_only=False)
                num = pd.to_numeric(pd.Series(s, dtype=object), errors="coerce")
                if num.isna().any():  # not all numeric: try ISO datetimes
                    try:
                        dt = pd.to_datetime(pd.Series(s, dtype=object), utc=True, format="ISO8601")
                    except (ValueError, TypeError):
                        dt = None
                    if dt is not None and not dt.isna().any():
                        return dt.to_numpy(dtype="datetime64[ns]").astype(np.int64), "ns"
        return _exact_ints(col, path, name, what), None
    a = _numeric(col, path, name, what)
    if a.dtype.kind == "f":
        _check_float_whole(a, path, name, what)
    return a.astype(np.int64, copy=False), None


def strings(col: pa.ChunkedArray) -> NDArray[np.object_]:
    """(N,) object array of str; nulls become ''."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "").to_numpy(zero_copy_only=False).astype(object)
