"""Biased matrix factorisation trained by alternating least squares (numpy only, no torch).

Model (Koren, Bell & Volinsky 2009), with learned per-user and per-movie parameters::

    r̂_ui = mu + b_u + b_i + p_u · q_i

fitted by minimising, over the training events ``(u, i, r)``::

    Σ (r - r̂_ui)² + reg · Σ_u n_u ‖p_u‖² + reg · Σ_i n_i ‖q_i‖²
                  + reg_bias · (Σ_u b_u² + Σ_i b_i²)

``mu`` is the mean training rating (fixed), ``n_u``/``n_i`` the number of training events of
the user/movie. Factor regularisation is weighted by those counts (ALS-WR, Zhou et al. 2008),
so ``reg`` is on the per-rating scale of SGD recipes (0.01-0.1); biases get a constant damping
``reg_bias`` as in the ``bias`` baseline. ALS alternates exact closed-form solves: all users'
``[b_u, p_u]`` given the movies, then all movies' ``[b_i, q_i]`` given the users. Each side is
one batched ``np.linalg.solve`` over stacked ``(d, d)`` systems, built in bounded chunks of
entities sorted by event count (padded Gram matrices through batched matmul), so memory does
not grow with the dataset. Initial movie factors are ``N(0, init_std²)`` from
``np.random.default_rng(seed)``; everything after is deterministic.

Tuning: ``factors`` and ``reg`` left as ``None`` are chosen on validation RMSE over a small
grid; ``epochs`` (ALS sweeps) left as ``None`` is the best sweep up to ``max_epochs``. Where
the grid runs follows the rule of ``predictors.tuning``:

- small data (at most ``tune_events`` fitting events, default 300,000): every setting is
  trained from the seed on all events (early stopping after 3 sweeps without improvement);
  with ``refit`` the model is then trained again from the same seed, with the chosen
  settings, on the training events plus each user's validation target;
- large data: the grid runs on a seeded user subsample of about ``tune_events`` events,
  walked cheapest first: ``reg`` downwards at the smallest ``factors``, each setting
  warm-started from the previous one (stopping at the first sweep without improvement),
  then each larger ``factors`` along the same path down to the chosen ``reg``, until one
  gains less than 1e-4 (the smaller is kept, the larger ones are skipped); then one fit on
  all training events starts from the chosen subsample model (its movie parameters) and
  runs until a sweep gains less than 1e-4 validation RMSE on all validation queries
  (``epochs``, when given, is the exact count); with ``refit`` it continues for one sweep on
  training + validation events.

The refit data, ``TrainSet.val_events()``, is exactly every event before the user's test
target, so at test time a query's history equals the data its user's parameters were
fitted on, and folding the history in again would only repeat the last user solve.
The fit report's settings record the seed, the tuning data (``tuning``: all or the
subsample's users, events, validation queries and seed), the grid with its validation
curves, the final fit's curve, the refit, and the seconds of each part (``timings``).

Prediction uses the stored parameters of ``batch.user``. Fallbacks (flagged): a user without
training events gets ``b_u`` from the query's history as in ``bias`` (damped mean residual
against ``mu + b_i``) and ``p_u = 0``; a movie without training events gets ``b_i = 0`` and
``q_i = 0``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from predictors.numerics import damped_user_bias, known, rmse
from predictors.options import Interval, model_options, option
from predictors.tuning import FactorModel
from predictors.types import EventStore, HistoryBatch, Queries, gather_ranges

__all__ = ["MF", "ALSParams", "fit_als", "solve_grouped"]

_DAY = 86_400.0
_FACTOR_GRID = (8, 32, 64)
_REG_GRID = (0.05, 0.1, 0.3, 1.0)
# bound on the elements of one padded design chunk (float64: 8 bytes each)
_CHUNK_ELEMENTS = 1 << 23
_CHUNK_ENTITIES = 4096  # bound on the stacked (d, d) systems solved at once
_REFIT_SWEEPS = 1  # large data: sweeps of the warm refit on training + validation events


# --------------------------------------------------------------------------- memory


_MAX_PARAM_BYTES = 2 << 30  # parameter matrices (all copies) above this: fail early


def check_param_memory(option: str, factors: int, rows: int, *, copies: int) -> None:
    """Raise ValueError naming ``option`` when ``copies`` float64 matrices of ``rows`` x
    ``factors`` (users + movies) would exceed a fixed budget of 2 GiB."""
    need = 8 * copies * rows * (factors + 2)
    if need > _MAX_PARAM_BYTES:
        raise ValueError(
            f"option {option}={factors} needs about {need / 2**30:.1f} GiB of parameters for "
            f"{rows:,} users and movies (budget {_MAX_PARAM_BYTES / 2**30:.0f} GiB): lower {option}"
        )


# --------------------------------------------------------------------------- ALS core


@dataclass(frozen=True)
class _Groups:
    """Rating rows grouped by entity (user or movie), CSR style."""

    order: NDArray[np.int64]  # (N,) int64 rating rows, grouped by entity
    offsets: NDArray[np.int64]  # (n + 1,) int64

    @staticmethod
    def of(keys: NDArray[np.integer], n: int) -> _Groups:
        order = np.argsort(keys, kind="stable").astype(np.int64)
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=n), out=offsets[1:])
        return _Groups(order=order, offsets=offsets)

    @property
    def counts(self) -> NDArray[np.int64]:
        return np.diff(self.offsets)


def solve_grouped(
    groups: _Groups,
    design: Callable[[NDArray[np.int64]], NDArray[np.float64]],
    target: NDArray[np.float64],
    ridge: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """For every entity ``e`` with events, solve the ridge system

    ``(X_e^T X_e + diag(ridge[e])) θ_e = X_e^T y_e``

    where ``X_e = design(rows_e)`` (n_e, d) and ``y_e = target[rows_e]``; write ``θ_e`` to
    ``out[e]`` (n, d). ``ridge`` is (n, d) float64 and must be > 0 where an entity has events.
    Entities without events are left untouched. Entities are processed sorted by event count
    in chunks whose padded design stays under a fixed number of elements.
    """
    counts = groups.counts
    d = out.shape[1]
    ents = np.flatnonzero(counts > 0)
    ents = ents[np.argsort(counts[ents], kind="stable")]
    c_sorted = counts[ents]
    lo, n = 0, ents.size
    while lo < n:
        # largest chunk [lo, hi) with (hi - lo) * max_len * d <= budget (at least one entity)
        span = np.arange(1, n - lo + 1, dtype=np.int64)
        fits = span * c_sorted[lo:] * d <= _CHUNK_ELEMENTS
        hi = lo + max(1, min(int(np.argmin(fits)) if not fits.all() else n - lo, _CHUNK_ENTITIES))
        chunk = ents[lo:hi]
        lens = counts[chunk]
        idx, off = gather_ranges(groups.offsets[chunk], groups.offsets[chunk + 1])
        rows = groups.order[idx]
        local = np.repeat(np.arange(chunk.size), lens)
        pos = np.arange(idx.size, dtype=np.int64) - off[local]
        width = int(lens.max())
        flat = local * width + pos  # row of each event in the flattened padded layout
        x = np.zeros((chunk.size, width, d))  # (c, L, d) zero-padded designs
        x.reshape(-1, d)[flat] = design(rows)  # a row scatter: much faster than x[local, pos]
        y = np.zeros((chunk.size, width, 1))  # (c, L, 1)
        y.reshape(-1)[flat] = target[rows]
        rho = ridge[chunk]  # (c, d)
        if width < d:
            # dual form (Woodbury), cheaper for short entities: with R = diag(rho),
            # θ = R⁻¹ Xᵀ (X R⁻¹ Xᵀ + I)⁻¹ y; padded rows give α = 0
            xs = x / rho[:, None, :]  # (c, L, d)
            kern = np.einsum("cld,cmd->clm", xs, x)  # (c, L, L)
            kern[:, np.arange(width), np.arange(width)] += 1.0
            alpha = np.linalg.solve(kern, y)  # (c, L, 1)
            out[chunk] = np.einsum("cld,cl->cd", xs, alpha[:, :, 0])
        else:
            xt = x.transpose(0, 2, 1)  # (c, d, L)
            gram = xt @ x  # (c, d, d)
            gram[:, np.arange(d), np.arange(d)] += rho
            out[chunk] = np.linalg.solve(gram, xt @ y)[:, :, 0]
        lo = hi


_DOT_ROWS = 1 << 18  # rows gathered at once by row_dots


def row_dots(
    a: NDArray[np.float64], ia: NDArray[np.integer], b: NDArray[np.float64], ib: NDArray[np.integer]
) -> NDArray[np.float64]:
    """(M,) ``a[ia[m]] · b[ib[m]]``, gathered in chunks of rows so that memory stays bounded
    (two (M, k) gathers would not, at millions of events)."""
    out = np.empty(ia.shape[0])
    for lo in range(0, ia.shape[0], _DOT_ROWS):
        hi = lo + _DOT_ROWS
        out[lo:hi] = np.einsum("mk,mk->m", a[ia[lo:hi]], b[ib[lo:hi]])
    return out


@dataclass(frozen=True)
class ALSParams:
    """Fitted parameters of (temporal) biased MF. Unused terms are zero."""

    mu: float
    user_bias: NDArray[np.float64]  # (n_users,) b_u
    user_drift: NDArray[np.float64]  # (n_users,) α_u, the slope on dev_u(t); zeros in plain MF
    user_tmean: NDArray[np.float64]  # (n_users,) t̄_u in days, mean time of training events
    user_factors: NDArray[np.float64]  # (n_users, k) p_u
    item_bias: NDArray[np.float64]  # (n_items,) b_i
    item_factors: NDArray[np.float64]  # (n_items, k) q_i
    user_count: NDArray[np.int64]  # (n_users,) training events per user
    item_count: NDArray[np.int64]  # (n_items,) training events per movie
    beta: float  # exponent of dev_u(t)

    def dev(self, user: NDArray[np.integer], t_seconds: NDArray[np.integer]) -> NDArray[np.float64]:
        """dev_u(t) = sign(t - t̄_u) |t - t̄_u|^beta, t in days. (M,) float64."""
        delta = np.asarray(t_seconds, dtype=np.float64) / _DAY - self.user_tmean[user]
        return np.sign(delta) * np.abs(delta) ** self.beta

    def score(
        self, user: NDArray[np.integer], item: NDArray[np.integer], t: NDArray[np.integer]
    ) -> NDArray[np.float64]:
        """r̂ = mu + b_u + α_u dev_u(t) + b_i + p_u · q_i for known user and movie codes. (M,)"""
        user = np.asarray(user, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        out = self.mu + self.user_bias[user] + self.item_bias[item]
        if np.any(self.user_drift):
            out = out + self.user_drift[user] * self.dev(user, t)
        return out + row_dots(self.user_factors, user, self.item_factors, item)


def fit_als(
    store: EventStore,
    n_items: int,
    *,
    factors: int,
    reg: float,
    reg_bias: float,
    epochs: int,
    seed: int,
    init_std: float = 0.1,
    drift: bool = False,
    beta: float = 0.4,
    reg_drift: float = 10.0,
    session_gap: float | None = None,
    reg_session: float = 3.0,
    on_epoch: Callable[[int, ALSParams], bool] | None = None,
    init: ALSParams | None = None,
) -> ALSParams:
    """Train (temporal) biased MF on ``store`` by ALS for ``epochs`` sweeps.

    With ``drift`` the user side also learns ``α_u`` on ``dev_u(t)`` (regularised by
    ``reg_drift``). With ``session_gap`` (seconds) every run of a user's events with gaps
    ``<= session_gap`` is a session with its own bias ``b_s`` (damping ``reg_session``),
    solved after each sweep; the session biases absorb short-term mood during training and are
    not part of the returned parameters (a predictor re-estimates them from the history).
    ``on_epoch(epoch, params)`` is called after every sweep (1-based); returning True stops.
    ``init`` (a fit with the same ``factors`` and movie codes) replaces the seeded initial
    movie parameters ``[b_i, q_i]`` (a warm start; the first sweep solves the users from
    them). Raises ValueError when the data is empty or the parameter matrices would not fit
    in memory (lower ``factors``).
    """
    n_users = store.n_users
    check_param_memory("factors", factors, n_users + n_items, copies=4)
    user = store.user().astype(np.int64)
    item = store.item.astype(np.int64)
    rating = store.rating.astype(np.float64)
    if rating.size == 0:
        raise ValueError("cannot fit on an empty training set (no training events)")
    mu = float(rating.mean())
    ug, ig = _Groups.of(user, n_users), _Groups.of(item, n_items)
    ucount, icount = ug.counts, ig.counts
    t_days = store.timestamp.astype(np.float64) / _DAY
    tmean = np.bincount(user, weights=t_days, minlength=n_users) / np.maximum(ucount, 1)
    if drift:
        delta = t_days - tmean[user]
        dev = np.sign(delta) * np.abs(delta) ** beta
    else:
        dev = np.zeros(0)
    if session_gap is not None:
        new = np.ones(rating.size, dtype=bool)
        new[1:] = (user[1:] != user[:-1]) | (np.diff(store.timestamp) > session_gap)
        session = np.cumsum(new) - 1
        n_sessions = int(session[-1]) + 1
        s_count = np.bincount(session, minlength=n_sessions)
    s_bias = np.zeros(rating.size)  # b_s of each event's session

    rng = np.random.default_rng(seed)
    q = np.zeros((n_items, factors + 1))  # [b_i, q_i]
    q[:, 1:] = rng.normal(0.0, init_std, size=(n_items, factors))
    if init is not None:
        if init.item_factors.shape != (n_items, factors):
            raise ValueError(
                f"fit_als: init has factors of shape {init.item_factors.shape}, "
                f"expected ({n_items}, {factors})"
            )
        q[:, 0] = init.item_bias
        q[:, 1:] = init.item_factors
    q[icount == 0] = 0.0
    du = factors + 1 + int(drift)
    p = np.zeros((n_users, du))  # [b_u, (α_u), p_u]
    off = 1 + int(drift)
    ridge_u = np.empty((n_users, du))
    ridge_u[:, 0] = reg_bias
    if drift:
        ridge_u[:, 1] = reg_drift
    ridge_u[:, off:] = reg * ucount[:, None]
    ridge_i = np.empty((n_items, factors + 1))
    ridge_i[:, 0] = reg_bias
    ridge_i[:, 1:] = reg * icount[:, None]
    # a tiny floor keeps every system positive definite when a regulariser is zero
    np.maximum(ridge_u, 1e-9, out=ridge_u)
    np.maximum(ridge_i, 1e-9, out=ridge_i)

    def user_design(rows: NDArray[np.int64]) -> NDArray[np.float64]:
        x = np.empty((rows.size, du))
        x[:, 0] = 1.0
        if drift:
            x[:, 1] = dev[rows]
        x[:, off:] = q[item[rows], 1:]
        return x

    def item_design(rows: NDArray[np.int64]) -> NDArray[np.float64]:
        x = np.empty((rows.size, factors + 1))
        x[:, 0] = 1.0
        x[:, 1:] = p[user[rows], off:]
        return x

    def params() -> ALSParams:
        return ALSParams(
            mu=mu,
            user_bias=p[:, 0].copy(),
            user_drift=p[:, 1].copy() if drift else np.zeros(n_users),
            user_tmean=tmean,
            user_factors=p[:, off:].copy(),
            item_bias=q[:, 0].copy(),
            item_factors=q[:, 1:].copy(),
            user_count=ucount,
            item_count=icount,
            beta=float(beta),
        )

    for epoch in range(1, epochs + 1):
        solve_grouped(ug, user_design, rating - mu - q[item, 0] - s_bias, ridge_u, p)
        user_part = p[user, 0] + (p[user, 1] * dev if drift else 0.0)
        solve_grouped(ig, item_design, rating - mu - user_part - s_bias, ridge_i, q)
        if session_gap is not None:
            fit = mu + user_part + q[item, 0]
            fit += row_dots(p[:, off:], user, q[:, 1:], item)
            resid = np.bincount(session, weights=rating - fit, minlength=n_sessions)
            s_bias = (resid / (s_count + reg_session))[session]
        if on_epoch is not None and on_epoch(epoch, params()):
            break
    return params()


# --------------------------------------------------------------------------- predictor


@model_options
class MF(FactorModel[ALSParams]):
    """Biased matrix factorisation by ALS: ``r̂ = mu + b_u + b_i + p_u · q_i``.

    Learns per-user and per-movie parameters (ids). Options (keyword-only):

    - ``factors`` (int >= 1) latent dimension; ``None``: tuned over (8, 32, 64);
    - ``reg`` (> 0) count-weighted L2 on the factors; ``None``: tuned over
      (0.05, 0.1, 0.3, 1.0);
    - ``reg_bias`` (>= 0) damping of ``b_u`` and ``b_i`` (default 5);
    - ``epochs`` (int >= 1) ALS sweeps; ``None``: the best sweep on validation, up to
      ``max_epochs`` (default 20);
    - ``refit`` (default True) retrain on training + validation events before test;
    - ``seed`` (int >= 0) for the initial movie factors and the tuning subsample; ``None``:
      the run's seed;
    - ``tune_events`` (int >= 1, default 300,000): tune on everything up to this many
      fitting events, else on a seeded user subsample of about this many (see the module
      docstring).

    See the module docstring for the objective, the solver, tuning and the fallbacks.
    """

    name = "mf"

    factor_grid = _FACTOR_GRID
    reg_grid = _REG_GRID
    refit_epochs = _REFIT_SWEEPS
    epoch_word = "sweeps"

    reg: float | None = option(
        None, Interval(0.0, closed="neither"), help="count-weighted L2 on the factors; None: tuned"
    )

    # hooks -------------------------------------------------------------------------------
    def _solver(self) -> Callable[..., ALSParams]:
        return fit_als

    def _val_score(self, params: ALSParams, val: Queries) -> float:
        """Validation RMSE of a parameter set (the tuning criterion)."""
        pred, _ = self._predict_params(params, val.batch)
        return rmse(self.scale_.clip(pred), val.rating)

    # prediction ----------------------------------------------------------------------------
    def _predict_params(
        self, params: ALSParams, batch: HistoryBatch
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """MF prediction for every query and the fallback mask, from ``params``."""
        user = batch.user.astype(np.int64)
        known_u = known(params.user_count, user)
        known_i = params.item_count[batch.target_item] > 0
        u = np.where(known_u, user, 0)
        i = np.where(known_i, batch.target_item, 0)
        pred = params.score(u, i, batch.target_time)
        # unknown movie: drop b_i and p_u · q_i
        pred = np.where(
            known_i,
            pred,
            pred
            - params.item_bias[i]
            - np.einsum("bk,bk->b", params.user_factors[u], params.item_factors[i]),
        )
        if not known_u.all():
            # unknown user: b_u from the history (damped mean residual against mu + b_i)
            b_u = damped_user_bias(batch, params.mu, params.item_bias, self.reg_bias)
            cold = params.mu + b_u + np.where(known_i, params.item_bias[i], 0.0)
            pred = np.where(known_u, pred, cold)
        return pred, ~(known_u & known_i)

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        return self._predict_params(self.params_, batch)
