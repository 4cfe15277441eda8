"""Alignment of an embedding keyed by movie ids to a dataset's dense item codes: the last
step of every embedding, whatever its source (a file, a builder, the synthetic generator)."""

from __future__ import annotations

import numpy as np

from bench.data.types import hash_arrays
from predictors.types import ItemEmbeddings

__all__ = ["align_embeddings"]


def align_embeddings(
    name: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    item_ids: np.ndarray,
    *,
    normalise: bool = True,
) -> ItemEmbeddings:
    """Align an (M, D) matrix keyed by original movie ids to the item codes of a dataset.

    Items without a vector get a zero row and ``present = False``. Rows are L2-normalised
    (as the notebook did) when ``normalise``.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    if normalise:
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        vectors = vectors / (norms + 1e-12)
    order = np.argsort(ids)
    sorted_ids = np.asarray(ids)[order]
    pos = np.searchsorted(sorted_ids, item_ids)
    pos = np.minimum(pos, max(len(sorted_ids) - 1, 0))
    present = sorted_ids[pos] == item_ids if len(sorted_ids) else np.zeros(len(item_ids), bool)
    out = np.zeros((len(item_ids), vectors.shape[1]), dtype=np.float32)
    out[present] = vectors[order[pos[present]]]
    return ItemEmbeddings(
        name=name,
        vectors=out,
        present=present,
        hash=hash_arrays(np.asarray(item_ids, dtype=np.int64), out),
    )
