"""What happens to items without an embedding (``--missing-embedding``): ``drop`` their
ratings, give them a ``zero`` vector, or the ``mean`` of the present ones."""

from __future__ import annotations

import difflib

import numpy as np
from numpy.typing import NDArray

from bench.data.types import Interactions, drop_items, hash_arrays
from bench.errors import ConfigError, DataError
from predictors.types import ItemEmbeddings

__all__ = [
    "MISSING_POLICIES",
    "apply_missing_policy",
    "drop_missing",
    "items_without_embedding",
]

MISSING_POLICIES = ("drop", "zero", "mean")


def items_without_embedding(emb: ItemEmbeddings) -> NDArray[np.bool_]:
    """(n_items,) bool, True for items without a real vector: under the ``drop`` policy the
    caller removes their ratings before splitting (as the notebook did)."""
    return ~np.asarray(emb.present, dtype=bool)


def apply_missing_policy(policy: str, emb: ItemEmbeddings) -> ItemEmbeddings:
    """Apply a policy for items without an embedding.

    ``drop``: returned unchanged; the data loses the ratings of
    ``items_without_embedding(emb)`` before splitting (``drop_missing``, which ``prepare``
    applies to the data and every embedding at once). ``zero``: unchanged (missing rows stay
    zero). ``mean``: missing rows get the mean of the present rows, re-normalised to unit
    length (``present`` still marks the real vectors; the hash changes).

    Raises ``ConfigError`` for an unknown policy, ``DataError`` for ``mean`` when no item has
    a vector.
    """
    if policy not in MISSING_POLICIES:
        near = difflib.get_close_matches(str(policy), MISSING_POLICIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"unknown missing-embedding policy {policy!r}; options: "
            f"{', '.join(MISSING_POLICIES)}{hint}"
        )
    if policy in ("drop", "zero"):
        return emb
    present = np.asarray(emb.present, dtype=bool)
    if not present.any():
        raise DataError(f"embedding {emb.name!r}: no item has a vector, so there is no mean")
    if present.all():
        return emb
    mean = emb.vectors[present].astype(np.float64).mean(axis=0)
    mean = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    vectors = emb.vectors.copy()
    vectors[~present] = mean
    return ItemEmbeddings(
        name=emb.name,
        vectors=vectors,
        present=emb.present,
        hash=hash_arrays(vectors, extra=f"{emb.hash}:mean"),
    )


def drop_missing(
    inter: Interactions, built: dict[str, ItemEmbeddings], missing: NDArray[np.bool_]
) -> tuple[Interactions, dict[str, ItemEmbeddings]]:
    """The ``drop`` policy: ``inter`` without the ratings of the items where ``missing``
    (n_items,) bool is True, re-coded (``bench.data.drop_items``), and every embedding of
    ``built`` restricted to the kept items, its hash that of the re-coded rows (as
    ``align_embeddings`` computes it). Raises ``DataError`` if no rating is left."""
    kept = ~np.asarray(missing, dtype=bool)
    inter2 = drop_items(inter, ~kept)
    return inter2, {
        n: ItemEmbeddings(
            name=e.name,
            vectors=e.vectors[kept],
            present=e.present[kept],
            hash=hash_arrays(inter2.item_ids, e.vectors[kept]),
        )
        for n, e in built.items()
    }
