"""Fast, validating readers for rating logs, movie catalogs and tag files (CSV/TSV/dat/parquet).

Every reader returns arrays (``RawRatings``, ``Catalog``) or a small frame, never Python rows,
and parses with pyarrow's multithreaded C++ readers:

- ``csv`` (any one-character separator, default ``,``; RFC 4180 quoting; LF or CRLF lines),
- ``tsv`` (tab-separated, no quoting; MovieLens 100k's ``u.data``),
- ``dat`` (a multi-character separator, MovieLens 1M's ``::``: pyarrow only splits on one
  byte, so the file is read into memory once, ``::`` is replaced by an unused control byte,
  and the buffer is parsed by pyarrow; this is correct even when titles contain ``:``),
- ``parquet``.

Every failure is a ``DataError`` whose one-line message names the file, the column and what
was expected. Ratings are not range-checked here: ``bench.data.build_interactions`` checks
them against the scale.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from numpy.typing import NDArray

from bench.data.types import TIME_UNITS, Catalog, RawRatings, detect_time_unit
from bench.errors import ConfigError, DataError
from predictors.types import RatingScale

__all__ = [
    "DEFAULT_CATALOG_COLUMNS",
    "DEFAULT_RATING_COLUMNS",
    "DEFAULT_TAG_COLUMNS",
    "FORMATS",
    "infer_format",
    "infer_scale",
    "read_catalog",
    "read_ratings",
    "read_tags",
]

#: Supported formats and the file suffixes that imply them.
FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".data"),
    "dat": (".dat",),
    "parquet": (".parquet", ".pq"),
}
#: role -> column name defaults (MovieLens' own header names).
DEFAULT_RATING_COLUMNS: dict[str, str] = {
    "user": "userId",
    "item": "movieId",
    "rating": "rating",
    "timestamp": "timestamp",
}
DEFAULT_CATALOG_COLUMNS: dict[str, str] = {"item": "movieId", "title": "title", "genres": "genres"}
DEFAULT_TAG_COLUMNS: dict[str, str] = {"item": "movieId", "tag": "tag"}

_DEFAULT_SEP = {"csv": ",", "tsv": "\t", "dat": "::"}
_BLOCK_SIZE = 16 << 20  # 16 MiB parse blocks: fewer, larger tasks for pyarrow's thread pool
_SEP_STANDINS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c")  # ASCII unit/record/group/file separators


# --------------------------------------------------------------------------- formats


def infer_format(path: str | Path, format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given (validated), else from the suffix.

    Raises ``DataError`` for an unknown format or suffix, listing the supported ones.
    """
    path = Path(path)
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"{path}: unknown format {format!r}; supported: {', '.join(FORMATS)}")
        return format
    suffix = path.suffix.lower()
    for fmt, suffixes in FORMATS.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(f"{s} ({f})" for f, ss in FORMATS.items() for s in ss)
    raise DataError(
        f"{path}: cannot tell the format from the suffix {suffix!r}; supported: {known} "
        "(or pass the format explicitly)"
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")


def _roles(
    columns: Mapping[str, str] | None, defaults: Mapping[str, str], path: Path
) -> dict[str, str]:
    """Merge a role->column mapping over the defaults; unknown roles are a ConfigError."""
    roles = dict(defaults)
    for role, col in (columns or {}).items():
        if role not in defaults:
            raise ConfigError(
                f"{path}: unknown column role {role!r}; known roles: {', '.join(defaults)}"
            )
        roles[role] = col
    return roles


# --------------------------------------------------------------------------- raw table reading


def _sep_for(fmt: str, sep: str | None) -> str:
    sep = _DEFAULT_SEP.get(fmt, ",") if sep is None else sep
    if not sep or "\n" in sep or "\r" in sep:
        raise ConfigError(f"invalid separator {sep!r}")
    return sep


def _load_delimited_source(path: Path, sep: str) -> tuple[Any, str]:
    """What pyarrow should parse, and the one-character delimiter to parse it with.

    A multi-character separator is replaced in memory by a control byte absent from the file.
    """
    if len(sep) == 1:
        return str(path), sep
    raw = path.read_bytes()
    sep_b = sep.encode("ascii")
    for standin in _SEP_STANDINS:
        if standin not in raw:
            return pa.BufferReader(raw.replace(sep_b, standin)), standin.decode("ascii")
    raise DataError(f"{path}: cannot split on {sep!r}: the file uses every stand-in byte")


def _header_names(path: Path, sep: str, encoding: str, quoting: bool) -> list[str]:
    """The column names in the first line of a delimited file (cheap: reads one line)."""
    with path.open("rb") as fh:
        first = fh.readline(1 << 20)
    try:
        line = first.decode(encoding).lstrip("\ufeff").rstrip("\r\n")
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"{path}: cannot decode the header line as {encoding}: {exc}") from None
    if len(sep) > 1:
        line = line.replace(sep, "\x1f")
        sep = "\x1f"
    if quoting:
        return next(csv.reader([line], delimiter=sep), [])
    return line.split(sep)


def _available_columns(
    path: Path,
    fmt: str,
    sep: str,
    header: bool,
    encoding: str,
    quoting: bool,
    names: Sequence[str] | None,
) -> list[str]:
    if fmt == "parquet":
        try:
            return list(pq.read_schema(path).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None
    if names is not None:
        return list(names)
    if not header:
        raise ConfigError(f"{path}: a file without a header line needs its column `names`")
    return _header_names(path, sep, encoding, quoting)


def _require_columns(path: Path, wanted: Mapping[str, str], found: Sequence[str]) -> None:
    for role, col in wanted.items():
        if col in found:
            continue
        near = difflib.get_close_matches(col, list(found), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise DataError(
            f"{path}: missing column {col!r} (role {role}); columns found: "
            f"{', '.join(map(str, found)) or '(none)'}{hint}"
        )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_table(
    path: Path,
    fmt: str,
    *,
    sep: str | None,
    header: bool,
    encoding: str,
    quoting: bool | None,
    names: Sequence[str] | None,
    wanted: Mapping[str, str],
    types: Mapping[str, pa.DataType] | None = None,
    retry: bool = False,
) -> pa.Table:
    """Read only the ``wanted`` columns (role -> name) of ``path`` into an Arrow table.

    ``types`` pins column types (name -> type). With ``retry``, a conversion failure
    propagates as ``pa.ArrowInvalid`` so that the caller can re-read as strings.
    """
    _check_file(path)
    sep = _sep_for(fmt, sep) if fmt != "parquet" else ","
    quoting = (fmt == "csv") if quoting is None else quoting
    found = _available_columns(path, fmt, sep, header, encoding, quoting, names)
    _require_columns(path, wanted, found)
    cols = list(dict.fromkeys(wanted.values()))
    if fmt == "parquet":
        try:
            return pq.read_table(path, columns=cols)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None
    source, delim = _load_delimited_source(path, sep)
    read_opts = pacsv.ReadOptions(
        use_threads=True,
        block_size=_BLOCK_SIZE,
        encoding=encoding,
        column_names=list(names) if names is not None else None,
        skip_rows=1 if (header and names is not None) else 0,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=delim, quote_char='"' if quoting else False, newlines_in_values=False
    )
    convert_opts = pacsv.ConvertOptions(
        include_columns=cols,
        column_types={c: t for c, t in (types or {}).items() if c in cols},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    try:
        return pacsv.read_csv(
            source, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if retry and "conversion error" in msg.lower():
            raise  # the caller retries with string columns and reports the bad value
        detail = _one_line(exc).replace(delim, sep) if delim != sep else _one_line(exc)
        raise DataError(f"{path}: not a valid {fmt} file ({detail})") from None
    except (UnicodeDecodeError, LookupError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot read as {fmt} with encoding {encoding} ({_one_line(exc)})"
        ) from None


def _read_with_retry(
    path: Path,
    fmt: str,
    *,
    wanted: Mapping[str, str],
    types: Mapping[str, pa.DataType],
    **kwargs: Any,
) -> pa.Table:
    """Fast typed read; if a typed column fails to convert, re-read those columns as strings
    (slow, error path or odd files only) so that validation can name the bad value."""
    try:
        return _read_table(path, fmt, wanted=wanted, types=types, retry=True, **kwargs)
    except pa.ArrowInvalid:
        as_str = {c: pa.string() for c in wanted.values()}
        return _read_table(path, fmt, wanted=wanted, types=as_str, **kwargs)


# --------------------------------------------------------------------------- column conversion


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
        bad = np.isnan(num) & ~np.isin(np.char.lower(stripped), ["nan", "+nan", "-nan"])
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {name!r} has a non-numeric value {s[i]!r} at data row {i + 1}; "
                f"expected {what}"
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
    big = np.abs(a) > _FLOAT_EXACT
    if big.any():
        i = int(np.flatnonzero(big)[0])
        raise DataError(
            f"{path}: column {name!r} is stored as floating point and has {int(big.sum())} "
            f"value(s) above 2**53 (first: {a[i]:.0f} at data row {i + 1}), where float64 "
            f"cannot hold every integer: the conversion would be lossy; expected {what} "
            "stored as integers"
        )


def _ids(col: pa.ChunkedArray, path: Path, name: str) -> NDArray[np.int64]:
    """(N,) int64 non-negative integer ids, never converted through float64."""
    what = "non-negative integer ids"
    a = (
        _exact_ints(col, path, name, what)
        if _is_string(col.type)
        else _numeric(col, path, name, what)
    )
    if a.dtype.kind == "f":
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {name!r} has a non-integer value {a[i]} at data row {i + 1}; "
                f"expected {what}"
            )
        _check_float_exact(a, path, name, what)
    if a.dtype.kind == "u":
        if a.size and a.max() > np.iinfo(np.int64).max:
            raise DataError(f"{path}: column {name!r} has ids beyond int64; expected {what}")
    a = a.astype(np.int64, copy=False)
    neg = a < 0
    if neg.any():
        i = int(np.flatnonzero(neg)[0])
        raise DataError(
            f"{path}: column {name!r} has {int(neg.sum())} negative value(s) (first: {a[i]} at "
            f"data row {i + 1}); expected {what}"
        )
    return a


def _ratings(col: pa.ChunkedArray, path: Path, name: str) -> NDArray[np.float32]:
    """(N,) float32 finite ratings."""
    what = "finite numbers"
    if col.null_count and (pa.types.is_floating(col.type) or pa.types.is_integer(col.type)):
        valid = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        raise DataError(
            f"{path}: column {name!r} has {col.null_count} NaN/missing value(s) (first at data "
            f"row {_first_row(valid)}); expected {what}"
        )
    a = _numeric(col, path, name, what).astype(np.float64, copy=False)
    bad = ~np.isfinite(a)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{path}: column {name!r} has {int(bad.sum())} NaN/inf value(s) (first: {a[i]} at "
            f"data row {i + 1}); expected {what}"
        )
    return a.astype(np.float32)


def _timestamps(
    col: pa.ChunkedArray, path: Path, name: str
) -> tuple[NDArray[np.int64], str | None]:
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
        bad = ~np.isfinite(a) | (a != np.round(a))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: column {name!r} has a non-integer value {a[i]} at data row {i + 1}; "
                f"expected {what}"
            )
        _check_float_exact(a, path, name, what)
    return a.astype(np.int64, copy=False), None


def _check_duplicates(
    path: Path,
    user: NDArray[np.int64],
    item: NDArray[np.int64],
    ts: NDArray[np.int64],
    names: tuple[str, str, str],
) -> None:
    """Raise on repeated (user, item, timestamp) rows.

    Vectorised: one int64 (user, item) key, sorted (or only scanned when the file is already
    in key order, as MovieLens' CSVs are); timestamps are compared only for the rows whose
    (user, item) pair repeats, which real logs rarely have.
    """
    n = user.shape[0]
    if n < 2:
        return
    n_items = int(item.max()) + 1
    if int(user.max()) < (np.iinfo(np.int64).max // max(n_items, 1)):
        pair = user * n_items + item  # (N,) int64, unique per (user, item)
        ordered = pair if bool(np.all(pair[1:] >= pair[:-1])) else np.sort(pair)
        repeated = ordered[1:][ordered[1:] == ordered[:-1]]  # sorted, with repeats
        if repeated.size == 0:
            return
        pos = np.minimum(np.searchsorted(repeated, pair), repeated.size - 1)
        rows = np.flatnonzero(repeated[pos] == pair)
    else:
        rows = np.arange(n)
    sub = pd.DataFrame({"u": user[rows], "i": item[rows], "t": ts[rows]})
    dup = sub.duplicated(keep="first").to_numpy()
    if not dup.any():
        return
    j = int(np.flatnonzero(dup)[0])
    key = (sub["u"].iat[j], sub["i"].iat[j], sub["t"].iat[j])
    same = (
        (sub["u"].to_numpy() == key[0])
        & (sub["i"].to_numpy() == key[1])
        & (sub["t"].to_numpy() == key[2])
    )
    first = int(rows[np.flatnonzero(same)[0]]) + 1
    u_name, i_name, t_name = names
    raise DataError(
        f"{path}: {int(dup.sum())} duplicate ({u_name}, {i_name}, {t_name}) row(s); first: "
        f"{u_name}={key[0]}, {i_name}={key[1]}, {t_name}={key[2]} at data rows {first} and "  # type: ignore[str-bytes-safe]
        f"{int(rows[j]) + 1}; expected each rating event once"
    )


# --------------------------------------------------------------------------- public readers


def infer_scale(rating: NDArray[np.floating], *, source: str = "ratings") -> RatingScale:
    """The rating scale implied by the data: ``low`` = min, ``high`` = max, and ``step`` = 1
    if every rating is a whole number, 0.5 if every rating is a multiple of 0.5, else
    ``None`` (continuous). Prefer a declared scale (a dataset manifest) when there is one:
    a sample may miss the extremes of the true scale.

    Raises ``DataError`` when there are no ratings or all ratings are equal.
    """
    r = np.asarray(rating)
    if r.dtype.kind != "f":
        r = r.astype(np.float64)
    if r.size == 0:
        raise DataError(f"{source}: cannot infer a rating scale from an empty table")
    low, high = float(r.min()), float(r.max())
    if not low < high:
        raise DataError(
            f"{source}: cannot infer a rating scale: every rating equals {low}; pass the scale"
        )
    # checked in the array's own precision (doubling is exact), without float64 copies
    if np.array_equal(r, np.rint(r)):
        step: float | None = 1.0
    elif np.array_equal(2 * r, np.rint(2 * r)):
        step = 0.5
    else:
        step = None
    return RatingScale(low=low, high=high, step=step)


def read_ratings(
    path: str | Path,
    *,
    format: str | None = None,
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    columns: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
    quoting: bool | None = None,
    scale: RatingScale | None = None,
    source: str | None = None,
    time_unit: str | None = None,
) -> RawRatings:
    """Read a ratings log into ``RawRatings`` (file order, original ids).

    ``format`` is one of ``csv``, ``tsv``, ``dat``, ``parquet`` (default: from the suffix:
    ``.csv``; ``.tsv``/``.data``; ``.dat``; ``.parquet``/``.pq``). ``sep`` defaults to the
    format's (``,``, tab, ``::``). ``columns`` maps roles ``user``, ``item``, ``rating``,
    ``timestamp`` to column names (default ``userId``, ``movieId``, ``rating``,
    ``timestamp``); a file without a header line gives all its column ``names`` in order.
    ``quoting`` (default: on for csv only) honours double-quoted fields. Timestamps are integer
    Unix times in ``time_unit`` (``s``, ``ms``, ``us``, ``ns``; default: detected from their
    magnitude, see ``bench.data.detect_time_unit``), or datetimes / ISO-8601 strings (UTC;
    they carry their own unit, and ``time_unit`` must not be given). When ``scale`` is None
    it is inferred by ``infer_scale`` (min, max, step 1 / 0.5 / None). Ids and integer
    timestamps are never converted through float64: text is parsed exactly, and a float
    column whose values exceed 2**53 (where float64 cannot hold every integer) is an error.

    Returns arrays: user_id, item_id (N,) int64; rating (N,) float32; timestamp (N,) int64
    in ``time_unit`` units (``build_interactions`` converts them to seconds), plus
    ``time_unit`` and ``time_info`` (how the unit was decided).

    Raises ``DataError`` (naming file and column) for: a missing file; an unknown format;
    a file that is not of its format; a missing column (with the columns found and the
    nearest name); missing, non-numeric, negative or non-integer ids or timestamps;
    NaN/inf/missing/non-numeric ratings; duplicate (user, item, timestamp) rows; an empty
    table. Ratings outside the scale are reported by ``build_interactions``.
    """
    path = Path(path)
    fmt = infer_format(path, format)
    roles = _roles(columns, DEFAULT_RATING_COLUMNS, path)
    if names is None and not header and fmt != "parquet":
        names = [roles["user"], roles["item"], roles["rating"], roles["timestamp"]]
    types = {roles["user"]: pa.int64(), roles["item"]: pa.int64(), roles["rating"]: pa.float64()}
    table = _read_with_retry(
        path,
        fmt,
        wanted=roles,
        types=types,
        sep=sep,
        header=header,
        encoding=encoding,
        quoting=quoting,
        names=names,
    )
    if table.num_rows == 0:
        raise DataError(f"{path}: no ratings (the table is empty); expected at least one row")
    # convert one column at a time and let Arrow free it, so that the Arrow table and the
    # numpy copies never coexist in full (peak memory at 30M+ ratings)
    out: dict[str, Any] = {}
    datetime_unit: str | None = None
    for role, conv in (("user", _ids), ("item", _ids), ("rating", _ratings), ("timestamp", None)):
        name = roles[role]
        col = table.column(name)
        if conv is None:
            out[role], datetime_unit = _timestamps(col, path, name)
        else:
            out[role] = conv(col, path, name)
        out[role] = np.array(out[role], copy=not out[role].flags.owndata)  # own the buffer
        del col
        if name not in [roles[r] for r in ("user", "item", "rating", "timestamp") if r not in out]:
            table = table.drop_columns([name])
    del table
    pa.default_memory_pool().release_unused()  # return Arrow's freed pages to the system
    user, item, rating, ts = out["user"], out["item"], out["rating"], out["timestamp"]
    _check_duplicates(path, user, item, ts, (roles["user"], roles["item"], roles["timestamp"]))
    src = source or str(path)
    if scale is None:
        scale = infer_scale(rating, source=src)
    unit, info = _time_unit(ts, time_unit, datetime_unit, path, roles["timestamp"])
    return RawRatings(
        user_id=user,
        item_id=item,
        rating=rating,
        timestamp=ts,
        scale=scale,
        source=src,
        time_unit=unit,
        time_info=info,
    )


def _time_unit(
    ts: NDArray[np.int64],
    given: str | None,
    datetime_unit: str | None,
    path: Path,
    column: str,
) -> tuple[str, dict[str, Any]]:
    """The unit of the timestamps and how it was decided: ``given`` (``--time-unit``),
    ``datetime`` (the column held datetimes, in ``datetime_unit``) or ``detected`` from the
    magnitude (``bench.data.detect_time_unit``)."""
    if given is not None:
        if given not in TIME_UNITS:
            raise ConfigError(f"--time-unit must be one of {', '.join(TIME_UNITS)}, got {given!r}")
        if datetime_unit is not None:
            raise ConfigError(
                f"{path}: column {column!r} holds datetimes, which carry their own unit; "
                f"--time-unit {given} does not apply (leave it out)"
            )
        return given, {"how": "given", "column": column}
    if datetime_unit is not None:
        return datetime_unit, {"how": "datetime", "column": column}
    unit = detect_time_unit(ts, source=str(path), column=column)
    return unit, {"how": "detected", "column": column}


def _strings(col: pa.ChunkedArray) -> NDArray[np.object_]:
    """(N,) object array of str; nulls become ''."""
    if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "").to_numpy(zero_copy_only=False).astype(object)


def _genres_from_flags(table: pa.Table, flags: Sequence[str], path: Path) -> NDArray[np.object_]:
    """Pipe-joined genre labels from 0/1 flag columns, in the order of ``flags``."""
    m = np.column_stack([_ids(table.column(f), path, f) for f in flags]) > 0  # (M, G) bool
    labels = np.array([f + "|" for f in flags], dtype=object)  # (G,)
    joined = m.astype(object) @ labels  # (M,) bool * str is str or "", + concatenates
    return np.array([s.rstrip("|") for s in joined], dtype=object)


def read_catalog(
    path: str | Path,
    *,
    format: str | None = None,
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    columns: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
    quoting: bool | None = None,
    genre_flags: Sequence[str] | None = None,
    tags: pd.DataFrame | None = None,
) -> Catalog:
    """Read a movie catalog into a ``Catalog``.

    ``columns`` maps roles ``item``, ``title``, ``genres`` to column names (default
    ``movieId``, ``title``, ``genres``). Genres are pipe-separated strings (``""`` when
    missing). When the file stores genres as 0/1 flag columns (MovieLens 100k's ``u.item``),
    pass their names in ``genre_flags``: each row's genres are the names of its set flags,
    pipe-joined in the given order, and the ``genres`` role is not read. Other options as in
    ``read_ratings``. ``tags`` (from ``read_tags``) is attached as is.

    Raises ``DataError`` as ``read_ratings`` does, and for duplicate movie ids.
    """
    path = Path(path)
    fmt = infer_format(path, format)
    roles = _roles(columns, DEFAULT_CATALOG_COLUMNS, path)
    if genre_flags:
        roles.pop("genres")
        wanted: dict[str, str] = {**roles, **{f"genre flag {f}": f for f in genre_flags}}
    else:
        wanted = roles
    if names is None and not header and fmt != "parquet":
        names = list(dict.fromkeys(wanted.values()))
    table = _read_with_retry(
        path,
        fmt,
        wanted=wanted,
        types={roles["item"]: pa.int64(), roles["title"]: pa.string()},
        sep=sep,
        header=header,
        encoding=encoding,
        quoting=quoting,
        names=names,
    )
    if table.num_rows == 0:
        raise DataError(f"{path}: no movies (the table is empty); expected at least one row")
    item = _ids(table.column(roles["item"]), path, roles["item"])
    dup = pd.Series(item).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{path}: column {roles['item']!r} has {int(dup.sum())} duplicate id(s) (first: "
            f"{item[i]} at data row {i + 1}); expected one row per movie"
        )
    title = _strings(table.column(roles["title"]))
    if genre_flags:
        genres = _genres_from_flags(table, genre_flags, path)
    else:
        genres = _strings(table.column(roles["genres"]))
    return Catalog(item_id=item, title=title, genres=genres, tags=tags)


def read_tags(
    path: str | Path,
    *,
    format: str | None = None,
    sep: str | None = None,
    header: bool = True,
    encoding: str = "utf-8",
    columns: Mapping[str, str] | None = None,
    names: Sequence[str] | None = None,
    quoting: bool | None = None,
) -> pd.DataFrame:
    """Read a tag-application file: a frame with columns ``item_id`` (int64) and ``tag``
    (str), one row per application, in file order. Rows with an empty tag are dropped.

    ``columns`` maps roles ``item``, ``tag`` (default ``movieId``, ``tag``). Raises
    ``DataError`` as ``read_ratings`` does (an empty tag file is allowed).
    """
    path = Path(path)
    fmt = infer_format(path, format)
    roles = _roles(columns, DEFAULT_TAG_COLUMNS, path)
    if names is None and not header and fmt != "parquet":
        names = [roles["item"], roles["tag"]]
    table = _read_with_retry(
        path,
        fmt,
        wanted=roles,
        types={roles["item"]: pa.int64(), roles["tag"]: pa.string()},
        sep=sep,
        header=header,
        encoding=encoding,
        quoting=quoting,
        names=names,
    )
    item = _ids(table.column(roles["item"]), path, roles["item"])
    tag = _strings(table.column(roles["tag"]))
    keep = tag != ""
    return pd.DataFrame({"item_id": item[keep], "tag": tag[keep]})
