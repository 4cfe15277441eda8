"""What the catalog builders read from a movie catalog: its content hash (part of every
catalog builder's cache key), release years, genre labels and normalised tag counts."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.data.types import Catalog, hash_arrays

__all__ = ["catalog_hash", "genre_pairs", "release_year", "tag_counts"]

NO_GENRES = "(no genres listed)"
# "(1995)" or a series' "(2006–2007)" / "(2006-)" at the end of a MovieLens title
_YEAR_RE = r"\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$"


def catalog_hash(catalog: Catalog) -> str:
    """A content hash of a catalog: ids, titles, genres and tags, order included."""
    h = hashlib.blake2b(digest_size=8)
    h.update(hash_arrays(np.asarray(catalog.item_id, dtype=np.int64)).encode())
    for col in (catalog.title, catalog.genres):
        h.update("\x1f".join(map(str, col.tolist())).encode())
        h.update(b"\x1e")
    if catalog.tags is not None and len(catalog.tags):
        h.update(hash_arrays(catalog.tags["item_id"].to_numpy(dtype=np.int64)).encode())
        h.update("\x1f".join(map(str, catalog.tags["tag"].tolist())).encode())
    return h.hexdigest()


def release_year(titles: NDArray[np.object_]) -> NDArray[np.float64]:
    """(M,) float64 release year parsed from MovieLens titles ("Toy Story (1995)"; a series'
    "(2006–2007)" gives its first year); NaN where the title has none."""
    s = pd.Series(titles, dtype=object).astype(str)
    return pd.to_numeric(s.str.extract(_YEAR_RE, expand=False), errors="coerce").to_numpy(
        dtype=np.float64
    )


def genre_pairs(catalog: Catalog) -> pd.DataFrame:
    """One row per (movie index, genre label), ``(no genres listed)`` and blanks removed."""
    g = pd.Series(catalog.genres, dtype=object).fillna("").astype(str).str.split("|")
    g = g.explode().str.strip()  # type: ignore[assignment]
    g = g[(g != "") & (g != NO_GENRES) & g.notna()]
    return pd.DataFrame({"movie": g.index.to_numpy(dtype=np.int64), "label": g.to_numpy()})


def tag_counts(catalog: Catalog) -> pd.DataFrame:
    """(movie index, tag, count): tags normalised (lowercase, trimmed, inner whitespace
    collapsed), counted per movie; tags of movies outside the catalog are dropped."""
    empty = pd.DataFrame({"movie": np.zeros(0, np.int64), "tag": [], "count": np.zeros(0)})
    if catalog.tags is None or len(catalog.tags) == 0:
        return empty
    tags = catalog.tags
    tag = tags["tag"].astype(str).str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    tid = tags["item_id"].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(ids[order], tid), max(len(ids) - 1, 0))
    ok = (ids[order][pos] == tid) & (tag != "").to_numpy()
    df = pd.DataFrame({"movie": order[pos][ok], "tag": tag.to_numpy()[ok]})
    if df.empty:
        return empty
    out = df.groupby(["movie", "tag"], sort=True).size().reset_index(name="count")
    return out
