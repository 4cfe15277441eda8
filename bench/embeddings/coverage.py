"""How much of a split an embedding covers, for the results."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.types import ItemEmbeddings

__all__ = ["coverage"]


def coverage(
    emb: ItemEmbeddings, hist_items: NDArray[np.integer], target_items: NDArray[np.integer]
) -> dict[str, Any]:
    """How much of a split the embedding covers, for the results.

    ``hist_items`` (H,) and ``target_items`` (B,) are item codes (every occurrence counts).
    Returns ``target_share`` and ``history_share`` (share of rows whose item has a vector),
    ``item_share`` (share of the dataset's items), ``n_present``, ``n_items``,
    ``mean_norm`` (mean L2 norm of the present rows) and ``dim``.
    """
    present = np.asarray(emb.present, dtype=bool)
    hist = np.asarray(hist_items, dtype=np.int64)
    targ = np.asarray(target_items, dtype=np.int64)

    def share(x: NDArray[np.int64]) -> float | None:
        return float(present[x].mean()) if x.size else None

    norms = np.linalg.norm(emb.vectors[present], axis=1)
    return {
        "name": emb.name,
        "hash": emb.hash,
        "dim": emb.dim,
        "n_items": int(present.shape[0]),
        "n_present": int(present.sum()),
        "item_share": float(present.mean()) if present.size else None,
        "target_share": share(targ),
        "history_share": share(hist),
        "mean_norm": float(norms.mean()) if norms.size else None,
    }
