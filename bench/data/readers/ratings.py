"""Reading a ratings log into ``RawRatings``: ids, ratings and timestamps, their unit, the
rating scale, and no repeated rating events."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Unpack

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

import bench.data.readers.columns as columns
from bench.data.readers.table import DEFAULT_RATING_COLUMNS, TableFile, TableOptions
from bench.data.types import TIME_UNITS, RawRatings, detect_time_unit
from bench.errors import ConfigError, DataError
from predictors.types import RatingScale


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
    scale: RatingScale | None = None,
    source: str | None = None,
    time_unit: str | None = None,
    **options: Unpack[TableOptions],
) -> RawRatings:
    """Read a ratings log into ``RawRatings`` (file order, original ids).

    The ``options`` (``TableOptions``, as every reader takes): ``format`` is one of ``csv``,
    ``tsv``, ``dat``, ``parquet`` (default: from the suffix: ``.csv``; ``.tsv``/``.data``;
    ``.dat``; ``.parquet``/``.pq``; each optionally followed by ``.gz``, ``.bz2``, ``.xz``,
    ``.zst`` or ``.lz4``). A compressed file is read decompressed, told from its first bytes
    whatever its name. ``sep`` defaults to the format's (``,``, tab, ``::``), or, when that
    does not split the first lines into the wanted columns, to the first of ``;``, tab,
    ``|``, ``::``, space that does (``bench.data.readers.sniff``).
    ``columns`` maps roles ``user``, ``item``, ``rating``, ``timestamp`` to column names
    (default ``userId``, ``movieId``, ``rating``, ``timestamp``); a file without a header
    line (``header=False``) gives all its column ``names`` in order; ``encoding`` defaults
    to utf-8.
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
    a file that is not of its format, not text, or corrupt compressed data; a missing column
    (with the columns found, the nearest name, and ``--sep`` when another separator fits);
    missing, non-numeric, negative or non-integer ids or timestamps;
    NaN/inf/missing/non-numeric ratings; duplicate (user, item, timestamp) rows; an empty
    table. Ratings outside the scale are reported by ``build_interactions``.
    """
    file = TableFile.open(path, DEFAULT_RATING_COLUMNS, options)
    path, roles = file.path, file.roles
    types = {roles["user"]: pa.int64(), roles["item"]: pa.int64(), roles["rating"]: pa.float64()}
    table = file.read(roles, types, headerless_names=list(roles.values()))
    if table.num_rows == 0:
        raise DataError(f"{path}: no ratings (the table is empty); expected at least one row")
    # convert one column at a time and let Arrow free it, so that the Arrow table and the
    # numpy copies never coexist in full (peak memory at 30M+ ratings)
    out: dict[str, Any] = {}
    datetime_unit: str | None = None
    converters = (("user", columns.ids), ("item", columns.ids), ("rating", columns.ratings))
    for role, conv in (*converters, ("timestamp", None)):
        name = roles[role]
        col = table.column(name)
        if conv is None:
            out[role], datetime_unit = columns.timestamps(col, path, name)
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
