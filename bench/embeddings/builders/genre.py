"""The ``genre`` builder: multi-hot genres, the release year scaled to [0, 1] and a has-year
flag (n_genres + 2 columns), from the catalog."""

from __future__ import annotations

import numpy as np

from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.embeddings.catalog import genre_pairs, release_year

__all__ = ["GENRE", "build_genre"]


def build_genre(inp: BuildInput) -> Built:
    """Columns: one per genre of the catalog's vocabulary (sorted; ``(no genres listed)``
    excluded), multi-hot; then the release year min–max scaled to [0, 1] over the catalog
    (missing year: the mean of the scaled years); then a has-year flag (1/0)."""
    catalog = inp.need_catalog()
    m = int(catalog.item_id.shape[0])
    pairs = genre_pairs(catalog)
    vocab = np.unique(pairs["label"].to_numpy().astype(str))
    x = np.zeros((m, vocab.shape[0] + 2), dtype=np.float32)
    x[pairs["movie"].to_numpy(), np.searchsorted(vocab, pairs["label"].to_numpy().astype(str))] = 1
    year = release_year(catalog.title)
    has = np.isfinite(year)
    scaled = np.zeros(m)
    if has.any():
        lo, hi = float(year[has].min()), float(year[has].max())
        scaled[has] = (year[has] - lo) / (hi - lo) if hi > lo else 0.0
        scaled[~has] = scaled[has].mean()
    x[:, -2] = scaled
    x[:, -1] = has
    return np.asarray(catalog.item_id, dtype=np.int64), x


GENRE = Builder(
    name="genre",
    description="multi-hot genres + scaled release year + has-year flag (catalog)",
    fn=build_genre,
    uses_catalog=True,
)
