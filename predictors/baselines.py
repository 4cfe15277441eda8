"""Baselines: global mean, user mean, recent-k mean, damped biases. All vectorised.

Notation: ``mu`` is the mean of the training events; a query's history is ``r_1..r_n``
(oldest first); ``I(i)`` the training ratings of item ``i``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.base import BasePredictor
from predictors.contract import FitReport
from predictors.numerics import damped_user_bias, history_sums, mean_rating
from predictors.options import Boolean, Integer, Interval, Validated, model_options, option
from predictors.types import EventStore, HistoryBatch, TrainSet, last_k

__all__ = ["Bias", "GlobalMean", "RecentK", "UserMean"]


@model_options
class _TrainMean(Validated, BasePredictor):
    """The fit the mean baselines share: ``mean_`` = ``mu``, their prediction or fallback."""

    def _fit(self, train: TrainSet) -> None:
        self.mean_ = mean_rating(train.events.rating)


@model_options
class GlobalMean(_TrainMean):
    """``pred = mu``, the mean of all training events. Never falls back."""

    name = "global-mean"

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        return np.full(len(batch), self.mean_), np.zeros(len(batch), dtype=bool)


@model_options
class UserMean(_TrainMean):
    """``pred = (r_1 + ... + r_n) / n`` over the query's whole history; ``mu`` (flagged as a
    fallback) when the history is empty."""

    name = "user-mean"

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        n = batch.hist_lengths()
        sums = history_sums(batch, batch.hist_rating)
        empty = n == 0
        pred = np.where(empty, self.mean_, sums / np.maximum(n, 1))
        return pred, empty


@model_options
class RecentK(_TrainMean):
    """``pred = (r_{n-k+1} + ... + r_n) / min(k, n)``, the mean of the last ``k`` ratings of
    the history (the notebook's recent-5 baseline for k=5); ``mu`` (flagged) when empty."""

    name = "recent-k"

    k: int = option(5, Integer(1), help="how many of the newest history ratings to average")

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        rows, mask = last_k(batch, self.k)
        vals = np.where(mask, batch.hist_rating[rows] if batch.hist_rating.size else 0.0, 0.0)
        cnt = mask.sum(axis=1)
        empty = cnt == 0
        pred = np.where(empty, self.mean_, vals.sum(axis=1, dtype=np.float64) / np.maximum(cnt, 1))
        return pred, empty


_DAMPING_GRID = (0.0, 1.0, 3.0, 10.0, 25.0, 50.0, 100.0)


@model_options
class Bias(Validated, BasePredictor):
    """Damped baseline estimates (Koren 2010, eq. 2):

    ``b_i = sum_{r in I(i)} (r - mu) / (|I(i)| + item_damping)``,
    ``b_u = sum_{j <= n} (r_j - mu - b_{i_j}) / (n + user_damping)`` over the query's history,
    ``pred = mu + b_u + b_i``.

    Learns per-item parameters (ids). ``b_u`` is computed from the query's own history at
    predict time, so it uses every rating the user has given so far. Dampings left as
    ``None`` are tuned on validation RMSE over a fixed grid; then the item biases are refit
    on the training events plus the validation targets. Items with no training rating get
    ``b_i = 0`` and are flagged as fallbacks.

    Tuning is closed-form and linear in the validation histories (one pass per item damping,
    the user dampings reuse its sums), so it always runs on all training events and all
    validation queries, at any scale; the fit report's settings record the grid and the
    timings.
    """

    name = "bias"

    item_damping: float | None = option(
        None, Interval(0.0), help="damping of the item biases; None: tuned on validation"
    )
    user_damping: float | None = option(
        None, Interval(0.0), help="damping of the user biases; None: tuned on validation"
    )
    refit: bool = option(
        True, Boolean(), help="refit the item biases on training + validation events"
    )

    @staticmethod
    def _item_bias(
        store: EventStore, n_items: int, mu: float, damping: float
    ) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
        cnt = np.bincount(store.item, minlength=n_items)
        dev = np.bincount(store.item, weights=store.rating - mu, minlength=n_items)
        return dev / (cnt + damping + 1e-12 * (cnt == 0)), cnt

    def _predict_with(
        self,
        batch: HistoryBatch,
        mu: float,
        b_item: NDArray[np.float64],
        user_damping: float,
    ) -> NDArray[np.float64]:
        b_user = damped_user_bias(batch, mu, b_item, user_damping)
        return mu + b_user + b_item[batch.target_item]

    def _fit(self, train: TrainSet) -> FitReport:
        t0 = time.perf_counter()
        mu = mean_rating(train.events.rating)
        item_grid = _DAMPING_GRID if self.item_damping is None else (self.item_damping,)
        user_grid = _DAMPING_GRID if self.user_damping is None else (self.user_damping,)
        val = train.val
        best: tuple[float, float, float] = (np.inf, item_grid[0], user_grid[0])
        scores: list[dict[str, Any]] = []
        if len(val.batch) and (len(item_grid) > 1 or len(user_grid) > 1):
            n = val.batch.hist_lengths()
            for di in item_grid:
                b_item, _ = self._item_bias(train.events, train.n_items, mu, di)
                # the history residual sums do not depend on the user damping: once per di
                res_sum = history_sums(
                    val.batch, val.batch.hist_rating - mu - b_item[val.batch.hist_item]
                )
                base = mu + b_item[val.batch.target_item]
                for du in user_grid:
                    p = train.scale.clip(base + res_sum / (n + du + 1e-12 * (n == 0)))
                    rmse = float(np.sqrt(np.mean((p - val.rating) ** 2, dtype=np.float64)))
                    scores.append({"item_damping": di, "user_damping": du, "val_rmse": rmse})
                    if rmse < best[0]:
                        best = (rmse, di, du)
        _, di, du = best
        tuning_s = time.perf_counter() - t0
        self.item_damping_, self.user_damping_ = float(di), float(du)
        store = train.events
        refit = bool(self.refit and len(val.batch))
        if refit:
            store = train.val_events()
            mu = mean_rating(store.rating)
        self.mu_ = mu
        self.item_bias_, self.item_count_ = self._item_bias(store, train.n_items, mu, di)
        val_rmse = None if not np.isfinite(best[0]) else best[0]
        settings = {
            "item_damping": self.item_damping_,
            "user_damping": self.user_damping_,
            "val_rmse": val_rmse,
            "tuning": {"on": "all", "events": train.events.n_events, "val_queries": len(val.batch)},
            "grid": scores,
            "timings": {
                "tuning_s": round(tuning_s, 3),
                "final_fit_s": round(time.perf_counter() - t0 - tuning_s, 3),
            },
        }
        return FitReport(settings=settings, refit=refit, val_rmse=val_rmse)

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        pred = self._predict_with(batch, self.mu_, self.item_bias_, self.user_damping_)
        unseen = self.item_count_[batch.target_item] == 0
        return pred, unseen
