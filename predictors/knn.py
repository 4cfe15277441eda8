"""Item-based kNN over item embeddings: the target's most similar movies in the history.

For a query with history ``(i_1, r_1) .. (i_n, r_n)`` (oldest first) and target ``i``:

- candidates are the last ``window`` history events (default 200);
- ``s_j = e_i · e_{i_j}``, the cosine similarity of the L2-normalised embeddings;
- the neighbours ``N`` are the ``k`` candidates with the largest ``s_j > 0`` (ties: the
  newer event first);
- ``w_j = s_j^alpha`` and, with ``b`` a baseline,

      pred = b_ui + Σ_{j∈N} w_j (r_j - b_{u i_j}) / (Σ_{j∈N} w_j + shrink)

  i.e. shrinkage on the sum of weights: with few or weak neighbours the prediction stays
  near the baseline.

Baselines: ``"user-mean"`` (``b_ui = b_{u i_j} =`` the mean of the whole history) or
``"bias"`` (the damped ``mu + b_u + b_i`` of the ``bias`` baseline, ``b_u`` from the
query's history, dampings tuned on validation). Fallback (flagged): the baseline alone when
no neighbour qualifies (``mu + b_u + b_i``, or the history mean; the global mean when the
history is empty). ``k``, ``alpha``, ``shrink`` (and the baseline) left as ``None`` are
tuned on validation RMSE over a small grid; with ``baseline="bias"`` the item biases are
then refit on training + validation events. Similarities are computed in chunks of queries
so that memory stays bounded.

Tuning cost is one neighbour search over the validation queries (the grid then only
re-weights the same neighbours). Up to ``tune_queries`` validation queries (default 20,000)
it runs on all of them; above, on a seeded random subset of ``tune_queries`` of them
(``predictors.tuning.query_subset``, seed: the train set's), which bounds tuning at any
scale. The ``bias`` baseline inside is closed-form and tunes its dampings on all
validation queries.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from predictors.base import BasePredictor
from predictors.baselines import Bias
from predictors.contract import Capabilities, FitReport
from predictors.numerics import damped_user_bias, history_sums, rmse
from predictors.options import (
    Boolean,
    Integer,
    Interval,
    OneOf,
    Validated,
    model_options,
    option,
)
from predictors.tuning import query_subset
from predictors.types import HistoryBatch, TrainSet, gather_ranges

__all__ = ["KNN"]

_K_GRID = (10, 20, 40, 80)
_ALPHA_GRID = (1.0, 2.0, 4.0)
_SHRINK_GRID = (0.0, 0.5, 2.0, 5.0)
_BASELINES = ("bias", "user-mean")
_CHUNK_ELEMENTS = 1 << 24  # bound on gathered embedding elements held at once


@dataclass(frozen=True)
class _Neighbours:
    """The up-to-``k`` best neighbours of every query, flattened, best first per query."""

    query: NDArray[np.int64]  # (M,) query of each neighbour, non-decreasing
    row: NDArray[np.int64]  # (M,) row in the batch's hist_* arrays
    sim: NDArray[np.float64]  # (M,) cosine similarity, > 0
    rank: NDArray[np.int64]  # (M,) 0 = most similar


@model_options
class KNN(Validated, BasePredictor):
    """Similarity-weighted kNN over item embeddings (see the module docstring).

    Learns per-movie parameters only with the ``bias`` baseline (item biases); the
    embeddings are given. Options (keyword-only): ``k`` (int >= 1), ``alpha`` (> 0),
    ``shrink`` (>= 0), ``baseline`` (``"bias"`` or ``"user-mean"``): ``None`` tunes them;
    ``window`` (int >= 1, default 200) caps the candidates; ``refit`` (default True);
    ``tune_queries`` (int >= 1, default 20,000) validation queries the grid runs on at most.

    Not declared ``seeded``: the fit is deterministic on the data, except that above
    ``tune_queries`` validation queries the tuning subset is drawn with the run's seed
    (``train.context.seed``); a run with several seeds fits it once, with the first.
    """

    name = "knn"
    capabilities: ClassVar[Capabilities] = Capabilities(embeddings=True)

    k: int | None = option(None, Integer(1), help="neighbours per query; None: tuned")
    alpha: float | None = option(
        None, Interval(0.0, closed="neither"), help="similarity exponent; None: tuned"
    )
    shrink: float | None = option(
        None, Interval(0.0), help="shrinkage of the weighted mean; None: tuned"
    )
    baseline: str | None = option(
        None, OneOf(*_BASELINES), help="what the neighbours' deviations add to; None: tuned"
    )
    window: int = option(200, Integer(1), help="newest history events that can be neighbours")
    refit: bool = option(True, Boolean(), help="refit on training + validation events")
    tune_queries: int = option(
        20_000, Integer(1), help="validation queries the tuning grid runs on, at most"
    )

    # ------------------------------------------------------------------------- pieces
    def _neighbours(self, batch: HistoryBatch, k: int) -> _Neighbours:
        vec = self.vectors_
        end = batch.hist_offsets[1:]
        start = np.maximum(batch.hist_offsets[:-1], end - self.window)
        rows, off = gather_ranges(start, end)
        query = np.repeat(np.arange(len(batch), dtype=np.int64), np.diff(off))
        sim = np.empty(rows.size, dtype=np.float64)
        step = max(1, _CHUNK_ELEMENTS // max(vec.shape[1], 1))
        for lo in range(0, rows.size, step):
            r, q = rows[lo : lo + step], query[lo : lo + step]
            a = vec[batch.hist_item[r]]  # (h, D)
            b = vec[batch.target_item[q]]  # (h, D)
            sim[lo : lo + step] = np.einsum("hd,hd->h", a, b, dtype=np.float64)
        keep = sim > 0
        rows, query, sim = rows[keep], query[keep], sim[keep]
        order = np.lexsort((-rows, -sim, query))  # by query, then similarity, then newest
        rows, query, sim = rows[order], query[order], sim[order]
        first = np.searchsorted(query, query, side="left")
        rank = np.arange(query.size, dtype=np.int64) - first
        top = rank < k
        return _Neighbours(query=query[top], row=rows[top], sim=sim[top], rank=rank[top])

    def _baseline(
        self, batch: HistoryBatch, bias: Bias | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(target baseline (B,), baseline of every history row (H,))."""
        n = batch.hist_lengths()
        if bias is None:  # user mean
            mean = history_sums(batch, batch.hist_rating) / np.maximum(n, 1)
            mean = np.where(n > 0, mean, self.mean_)
            return mean, np.repeat(mean, n)
        b_item = bias.item_bias_
        b_user = damped_user_bias(batch, bias.mu_, b_item, bias.user_damping_)
        target = bias.mu_ + b_user + b_item[batch.target_item]
        hist = bias.mu_ + np.repeat(b_user, n) + b_item[batch.hist_item]
        return target, hist

    @staticmethod
    def _combine(
        nb: _Neighbours,
        resid: NDArray[np.float64],
        base: NDArray[np.float64],
        k: int,
        alpha: float,
        shrink: float,
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        sel = nb.rank < k
        q = nb.query[sel]
        w = nb.sim[sel] ** alpha
        n = base.shape[0]
        num = np.bincount(q, weights=w * resid[nb.row[sel]], minlength=n)
        den = np.bincount(q, weights=w, minlength=n)
        has = np.bincount(q, minlength=n) > 0
        pred = base + np.where(has, num / np.where(has, den + shrink, 1.0), 0.0)
        return pred, ~has

    # ------------------------------------------------------------------------- fit/predict
    def _fit(self, train: TrainSet) -> FitReport:
        t0 = time.perf_counter()
        emb = train.embeddings
        if emb is None:
            raise ValueError("knn needs item embeddings: pass --embedding ...")
        if emb.vectors.shape[0] < train.n_items:
            raise ValueError(
                f"knn: the embedding has {emb.vectors.shape[0]} rows for {train.n_items} items"
            )
        vec = np.asarray(emb.vectors, dtype=np.float32)
        norms = np.linalg.norm(vec, axis=1, keepdims=True)
        self.vectors_ = vec / np.where(norms > 0, norms, 1.0)  # zero rows stay zero
        self.mean_ = float(np.mean(train.events.rating, dtype=np.float64))
        k_grid = _K_GRID if self.k is None else (int(self.k),)
        a_grid = _ALPHA_GRID if self.alpha is None else (float(self.alpha),)
        s_grid = _SHRINK_GRID if self.shrink is None else (float(self.shrink),)
        b_grid = _BASELINES if self.baseline is None else (self.baseline,)
        bias = Bias(refit=False).fit(train) if "bias" in b_grid else None
        timings = {"bias_s": time.perf_counter() - t0}
        val, tuned_on = query_subset(
            train.val, max_queries=int(self.tune_queries), seed=int(train.context.seed)
        )
        best: dict[str, Any] = {
            "val_rmse": np.inf,
            "k": k_grid[0],
            "alpha": a_grid[0],
            "shrink": s_grid[0],
            "baseline": b_grid[0],
        }
        grid: list[dict[str, Any]] = []
        if len(val.batch):
            nb = self._neighbours(val.batch, max(k_grid))
            for bl in b_grid:
                base, hist = self._baseline(val.batch, bias if bl == "bias" else None)
                resid = val.batch.hist_rating - hist
                for k in k_grid:
                    for a in a_grid:
                        for s in s_grid:
                            pred, _ = self._combine(nb, resid, base, k, a, s)
                            score = rmse(train.scale.clip(pred), val.rating)
                            grid.append(
                                {
                                    "baseline": bl,
                                    "k": k,
                                    "alpha": a,
                                    "shrink": s,
                                    "val_rmse": round(score, 5),
                                }
                            )
                            if score < best["val_rmse"]:
                                best = {
                                    "val_rmse": score,
                                    "k": k,
                                    "alpha": a,
                                    "shrink": s,
                                    "baseline": bl,
                                }
        timings["tuning_s"] = time.perf_counter() - t0 - timings["bias_s"]
        t1 = time.perf_counter()
        self.k_, self.alpha_, self.shrink_ = best["k"], best["alpha"], best["shrink"]
        self.baseline_ = best["baseline"]
        self.bias_: Bias | None = None
        refit = False
        if self.baseline_ == "bias":
            assert bias is not None
            self.bias_ = bias
            if self.refit and len(val.batch):
                self.bias_ = Bias(
                    item_damping=bias.item_damping_, user_damping=bias.user_damping_, refit=True
                ).fit(train)
                refit = True
        timings["refit_s"] = time.perf_counter() - t1
        timings["total_s"] = time.perf_counter() - t0
        val_rmse = None if not np.isfinite(best["val_rmse"]) else float(best["val_rmse"])
        settings = {
            "k": int(self.k_),
            "alpha": float(self.alpha_),
            "shrink": float(self.shrink_),
            "baseline": self.baseline_,
            "window": int(self.window),
            "val_rmse": val_rmse,
            "tuning": tuned_on,
            "grid": grid,
            "timings": {k: round(v, 3) for k, v in timings.items()},
        }
        return FitReport(settings=settings, refit=refit, val_rmse=val_rmse)

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        nb = self._neighbours(batch, self.k_)
        base, hist = self._baseline(batch, self.bias_)
        pred, fallback = self._combine(
            nb, batch.hist_rating - hist, base, self.k_, self.alpha_, self.shrink_
        )
        return pred, fallback
