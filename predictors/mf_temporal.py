"""Biased MF with temporal dynamics, in the spirit of Koren's timeSVD++ (KDD 2009).

Model for user ``u``, movie ``i`` at time ``t`` (days)::

    r̂_ui(t) = mu + b_u + α_u dev_u(t) + b_i + p_u · q_i + o_u(t)
    dev_u(t) = sign(t - t̄_u) |t - t̄_u|^beta

- ``b_u + α_u dev_u(t)`` is the user's drifting bias (Koren's eq. 10): ``t̄_u`` is the mean
  date of the user's training events and ``α_u`` a learned per-user slope.
- ``o_u(t)`` is the short-term (session) offset, estimated at predict time from the query's
  own history: with ``res_j = r_j - r̂_j`` the residuals of the long-term part above on the
  last ``window`` history events, ``Δt_j`` the hours from event ``j`` to the target and
  ``rank_j`` its recency rank (0 = the newest)::

      w_j = exp(-Δt_j / tau) · decay^rank_j
      o_u(t) = Σ_j w_j res_j / (Σ_j w_j + shrink)

  It plays the part of Koren's day-specific bias ``b_{u,t}``, which cannot be learned for a
  target day that training never saw. Every history event precedes the target, so the model
  is blind to the future.

Training is the ALS of ``predictors.mf`` with two more terms: the user side also solves
``α_u`` (its design gets a ``dev_u(t)`` column, ridge ``reg_drift``), and after every sweep a
bias ``b_s`` per training session (a run of the user's events with gaps ``<= session_gap``
seconds) is solved in closed form (damping ``reg_session``). Session biases soak up
short-term mood while fitting so that ``b_u``, ``α_u``, ``p_u`` and ``q_i`` model the long
term; they are then dropped, and ``o_u(t)`` re-estimates the mood from the residuals.

Tuning on validation RMSE: first ``factors``/``reg``/sweeps as in ``mf`` (with the offset
at its given or default settings; on all data or a seeded user subsample, by ``mf``'s
``tune_events`` rule), then ``tau``, ``decay`` and ``shrink`` over a grid (cheap: no
refitting) on the validation queries of the same data (all, or the subsample's users),
scored with the parameters fitted on all training events. Then a refit on training +
validation events, as ``mf`` does. The fit report's ``val_rmse`` is the model with its tuned
offset on all validation queries (before the refit); ``val_rmse_without_offset`` and the
offset grid are on the queries the offset was tuned on.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.contract import FitReport
from predictors.mf import MF, ALSParams
from predictors.numerics import known, rmse
from predictors.options import Integer, Interval, model_options, option
from predictors.types import HistoryBatch, Queries, TrainSet, last_k

__all__ = ["MFTemporal"]

_HOUR = 3600.0
_TAU_GRID = (0.05, 0.25, 1.0, 4.0, 24.0, float("inf"))  # hours
_DECAY_GRID = (1.0, 0.9, 0.7)
_SHRINK_GRID = (0.5, 2.0, 5.0, 15.0)
_DEFAULT_OFFSET = (0.25, 0.9, 2.0)  # (tau, decay, shrink) while tuning the MF part
_OFFSET_ELEMENTS = 1 << 21  # bound on the (queries, window) elements scored at once


@model_options
class MFTemporal(MF):
    """timeSVD-style biased MF: drifting user bias + a recency-weighted session offset.

    Learns per-user and per-movie parameters (ids). Options (keyword-only), besides those
    of ``mf`` (``factors``, ``reg``, ``reg_bias``, ``epochs``, ``max_epochs``, ``refit``,
    ``seed``, ``tune_events``):

    - ``beta`` (> 0, default 0.4) exponent of ``dev_u(t)``; ``reg_drift`` (>= 0, default 300);
    - ``session_gap`` (seconds > 0, default 3600; 0 turns training sessions off) and
      ``reg_session`` (>= 0, default 3);
    - ``window`` (int >= 1, default 100) history events the offset looks at;
    - ``tau`` (hours > 0, or ``inf`` for no time decay), ``decay`` (in (0, 1]) and
      ``shrink`` (>= 0) of the session offset; ``None``: tuned on validation.

    See the module docstring for the formulas. Fallbacks as in ``mf``; a user without
    training events gets no offset (the history already sets its bias).
    """

    name = "mf-temporal"

    beta: float = option(0.4, Interval(0.0, closed="neither"), help="exponent of dev_u(t)")
    reg_drift: float = option(300.0, Interval(0.0), help="L2 on the user bias drift")
    session_gap: float = option(
        3600.0, Interval(0.0), help="seconds between sessions; 0: no training sessions"
    )
    reg_session: float = option(3.0, Interval(0.0), help="L2 on the training session biases")
    window: int = option(100, Integer(1), help="history events the session offset looks at")
    tau: float | None = option(
        None,
        Interval(0.0, closed="neither", inf=True, unit="hours"),
        help="time decay of the session offset (inf: none); None: tuned",
    )
    decay: float | None = option(
        None, Interval(0.0, 1.0, closed="right"), help="rank decay of the offset; None: tuned"
    )
    shrink: float | None = option(
        None, Interval(0.0), help="shrinkage of the session offset; None: tuned"
    )

    # ------------------------------------------------------------------------- MF hooks
    def _solver_options(self) -> dict[str, Any]:
        return {
            "drift": True,
            "beta": float(self.beta),
            "reg_drift": float(self.reg_drift),
            "session_gap": float(self.session_gap) if self.session_gap > 0 else None,
            "reg_session": float(self.reg_session),
        }

    def _offset_setting(self) -> tuple[float, float, float]:
        t, d, s = _DEFAULT_OFFSET
        return (
            t if self.tau is None else float(self.tau),
            d if self.decay is None else float(self.decay),
            s if self.shrink is None else float(self.shrink),
        )

    def _fit(self, train: TrainSet) -> FitReport:
        for key in ("tau_", "decay_", "shrink_", "mf_val_rmse_"):
            self.__dict__.pop(key, None)  # a previous fit's offset must not score this one
        return super()._fit(train)

    def _val_score(self, params: ALSParams, val: Queries) -> float:
        """Validation RMSE with the tuned offset once it is tuned, the given/default offset
        before."""
        setting = (
            (self.tau_, self.decay_, self.shrink_)
            if hasattr(self, "tau_")
            else self._offset_setting()
        )
        pred, _ = self._full_pred(params, val.batch, setting)
        return rmse(self.scale_.clip(pred), val.rating)

    def _full_pred(
        self, params: ALSParams, batch: HistoryBatch, setting: tuple[float, float, float]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """Prediction with the offset and the fallback mask, (B,) each, computed in chunks of
        queries so that the (B, window) arrays stay under a fixed number of elements."""
        n = len(batch)
        step = max(1, _OFFSET_ELEMENTS // self.window)
        preds, falls = [], []
        for lo in range(0, n, step):
            b = batch if n <= step else batch.take(np.arange(lo, min(n, lo + step)))
            base, fallback, known_u = self._long_term(params, b)
            preds.append(base + known_u * _offset(self._offset_parts(params, b), *setting))
            falls.append(fallback)
        if not preds:
            return np.zeros(0), np.zeros(0, dtype=bool)
        return np.concatenate(preds), np.concatenate(falls)

    def _after_tuning(self, params: ALSParams, val: Queries) -> None:
        tau, decay, shrink = self._offset_setting()
        self.offset_grid_: list[dict[str, Any]] = []
        if not len(val.batch):
            self.tau_, self.decay_, self.shrink_ = tau, decay, shrink
            return
        taus = _TAU_GRID if self.tau is None else (tau,)
        decays = _DECAY_GRID if self.decay is None else (decay,)
        shrinks = _SHRINK_GRID if self.shrink is None else (shrink,)
        base, _, known_u = self._long_term(params, val.batch)
        res, hours, rank, mask = self._offset_parts(params, val.batch)
        best = np.inf
        chosen = (tau, decay, shrink)
        for t in taus:
            for d in decays:
                # the weights depend on (tau, decay) only: once per pair, then every shrink
                w = np.where(mask, np.exp(-hours / t) * d**rank, 0.0)
                num, den = (w * res).sum(axis=1), w.sum(axis=1)
                for s in shrinks:
                    off = np.where(den + s > 0, num / np.where(den + s > 0, den + s, 1.0), 0.0)
                    score = rmse(self.scale_.clip(base + known_u * off), val.rating)
                    self.offset_grid_.append(
                        {"tau": t, "decay": d, "shrink": s, "val_rmse": round(score, 5)}
                    )
                    if score < best:
                        best = score
                        chosen = (t, d, s)
        self.tau_, self.decay_, self.shrink_ = chosen
        self.offset_val_rmse_ = best
        self.mf_val_rmse_ = rmse(self.scale_.clip(base), val.rating)

    def _extra_info(self) -> dict[str, Any]:
        tau = self.tau_
        return {
            "tau_hours": tau if np.isfinite(tau) else "inf",
            "decay": self.decay_,
            "shrink": self.shrink_,
            "val_rmse_without_offset": getattr(self, "mf_val_rmse_", None),
            "offset_grid": self.offset_grid_,
        }

    # ------------------------------------------------------------------------- prediction
    def _long_term(
        self, params: ALSParams, batch: HistoryBatch
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_], NDArray[np.bool_]]:
        """(pred, fallback, known_user), each (B,): the model without the session offset."""
        pred, fallback = self._predict_params(params, batch)
        return pred, fallback, known(params.user_count, batch.user)

    def _offset_parts(
        self, params: ALSParams, batch: HistoryBatch
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
        """Residuals, hours before the target, recency ranks and mask of the last ``window``
        history events, each (B, W)."""
        rows, mask = last_k(batch, self.window)
        n_users = params.user_count.size
        user = np.minimum(batch.user.astype(np.int64), n_users - 1)
        if batch.hist_item.size == 0:
            zeros = np.zeros(rows.shape)
            return zeros, zeros, zeros, mask
        u = np.broadcast_to(user[:, None], rows.shape)
        fit = params.score(
            u.ravel(), batch.hist_item[rows].ravel(), batch.hist_timestamp[rows].ravel()
        ).reshape(rows.shape)
        res = np.where(mask, batch.hist_rating[rows] - fit, 0.0)
        hours = (batch.target_time[:, None] - batch.hist_timestamp[rows]) / _HOUR
        hours = np.where(mask, np.maximum(hours, 0.0), 0.0)
        rank = np.broadcast_to(np.arange(rows.shape[1] - 1, -1, -1, dtype=np.float64), rows.shape)
        return res, hours, rank, mask

    def session_offset(self, batch: HistoryBatch) -> NDArray[np.float64]:
        """(B,) float64 the session offset ``o_u(t)`` of every query (0 for unknown users)."""
        self._check_fitted()
        _, _, known_u = self._long_term(self.params_, batch)
        parts = self._offset_parts(self.params_, batch)
        return known_u * _offset(parts, self.tau_, self.decay_, self.shrink_)

    def _check_fitted(self) -> None:
        if not getattr(self, "_fitted", False):
            from predictors.base import NotFittedError

            raise NotFittedError(f"{self.name}: predict() called before fit()")

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        return self._full_pred(self.params_, batch, (self.tau_, self.decay_, self.shrink_))


def _offset(
    parts: tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]],
    tau: float,
    decay: float,
    shrink: float,
) -> NDArray[np.float64]:
    """(B,) Σ w res / (Σ w + shrink) with w = exp(-Δt/tau) decay^rank on real events."""
    res, hours, rank, mask = parts
    w = np.where(mask, np.exp(-hours / tau) * decay**rank, 0.0)
    den = w.sum(axis=1) + shrink
    return np.where(den > 0, (w * res).sum(axis=1) / np.where(den > 0, den, 1.0), 0.0)
