"""Small array helpers the models share: history sums, the damped user bias of a history,
known-id masks, RMSE, the mean of a training set."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from predictors.types import HistoryBatch

__all__ = ["damped_user_bias", "history_sums", "known", "mean_rating", "rmse"]


def history_sums(batch: HistoryBatch, values: NDArray[np.floating]) -> NDArray[np.float64]:
    """(B,) float64 sum of ``values`` (H,) (one per history row) over each query's history;
    0 for an empty history."""
    return np.add.reduceat(
        np.concatenate([np.asarray(values, dtype=np.float64), [0.0]]),
        batch.hist_offsets[:-1],
    ) * (batch.hist_lengths() > 0)


def rmse(pred: NDArray[np.floating], truth: NDArray[np.floating]) -> float:
    """sqrt(mean((pred - truth)^2)), computed in float64; ``pred`` and ``truth`` are (B,)."""
    return float(np.sqrt(np.mean((np.asarray(pred, np.float64) - truth) ** 2)))


def mean_rating(ratings: NDArray[np.float32]) -> float:
    """The mean (float64) of the training ratings (N,). Raises ValueError when N is 0."""
    if ratings.size == 0:
        raise ValueError("cannot fit on an empty training set (no training events)")
    return float(np.mean(ratings, dtype=np.float64))


def damped_user_bias(
    batch: HistoryBatch, mu: float, item_bias: NDArray[np.floating], damping: float
) -> NDArray[np.float64]:
    """(B,) float64 ``b_u = sum_j (r_j - mu - b_{i_j}) / (n + damping)`` over each query's
    history (Koren 2010, eq. 2, as in the ``bias`` baseline); 0 for an empty history, even
    with ``damping`` 0. ``item_bias`` is (n_items,)."""
    resid = batch.hist_rating - mu - item_bias[batch.hist_item]
    n = batch.hist_lengths()
    return history_sums(batch, resid) / (n + damping + 1e-12 * (n == 0))


def known(count: NDArray[np.integer], ids: NDArray[np.integer]) -> NDArray[np.bool_]:
    """(B,) bool: ``ids`` (B,) within ``count`` (n,) and with ``count[id] > 0`` (an entity
    seen in training; ids past the end, e.g. users added after the fit, are unknown)."""
    ids = np.asarray(ids, dtype=np.int64)
    n = count.size
    return (ids < n) & (count[np.minimum(ids, n - 1)] > 0)
