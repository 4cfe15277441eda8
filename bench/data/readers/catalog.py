"""Reading a movie catalog (ids, titles, genres) and its tag applications."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Unpack

import numpy as np
import pandas as pd
import pyarrow as pa
from numpy.typing import NDArray

import bench.data.readers.columns as columns
from bench.data.readers.table import (
    DEFAULT_CATALOG_COLUMNS,
    DEFAULT_TAG_COLUMNS,
    TableFile,
    TableOptions,
)
from bench.data.types import Catalog
from bench.errors import DataError


def _genres_from_flags(table: pa.Table, flags: Sequence[str], path: Path) -> NDArray[np.object_]:
    """Pipe-joined genre labels from 0/1 flag columns, in the order of ``flags``."""
    m = np.column_stack([columns.ids(table.column(f), path, f) for f in flags]) > 0  # (M, G) bool
    labels = np.array([f + "|" for f in flags], dtype=object)  # (G,)
    joined = m.astype(object) @ labels  # (M,) bool * str is str or "", + concatenates
    return np.array([s.rstrip("|") for s in joined], dtype=object)


def read_catalog(
    path: str | Path,
    *,
    genre_flags: Sequence[str] | None = None,
    tags: pd.DataFrame | None = None,
    **options: Unpack[TableOptions],
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
    file = TableFile.open(path, DEFAULT_CATALOG_COLUMNS, options)
    path, roles = file.path, dict(file.roles)
    if genre_flags:
        roles.pop("genres")
        wanted: dict[str, str] = {**roles, **{f"genre flag {f}": f for f in genre_flags}}
    else:
        wanted = roles
    types = {roles["item"]: pa.int64(), roles["title"]: pa.string()}
    table = file.read(wanted, types, headerless_names=list(dict.fromkeys(wanted.values())))
    if table.num_rows == 0:
        raise DataError(f"{path}: no movies (the table is empty); expected at least one row")
    item = columns.ids(table.column(roles["item"]), path, roles["item"])
    dup = pd.Series(item).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError(
            f"{path}: column {roles['item']!r} has {int(dup.sum())} duplicate id(s) (first: "
            f"{item[i]} at data row {i + 1}); expected one row per movie"
        )
    title = columns.strings(table.column(roles["title"]))
    if genre_flags:
        genres = _genres_from_flags(table, genre_flags, path)
    else:
        genres = columns.strings(table.column(roles["genres"]))
    return Catalog(item_id=item, title=title, genres=genres, tags=tags)


def read_tags(path: str | Path, **options: Unpack[TableOptions]) -> pd.DataFrame:
    """Read a tag-application file: a frame with columns ``item_id`` (int64) and ``tag``
    (str), one row per application, in file order. Rows with an empty tag are dropped.

    ``columns`` maps roles ``item``, ``tag`` (default ``movieId``, ``tag``). Raises
    ``DataError`` as ``read_ratings`` does (an empty tag file is allowed).
    """
    file = TableFile.open(path, DEFAULT_TAG_COLUMNS, options)
    path, roles = file.path, file.roles
    types = {roles["item"]: pa.int64(), roles["tag"]: pa.string()}
    table = file.read(roles, types, headerless_names=list(roles.values()))
    item = columns.ids(table.column(roles["item"]), path, roles["item"])
    tag = columns.strings(table.column(roles["tag"]))
    keep = tag != ""
    return pd.DataFrame({"item_id": item[keep], "tag": tag[keep]})
