"""SVD++ (Koren, KDD 2008): biased MF whose user vector adds an implicit-feedback term.

Model, with learned per-user and per-movie parameters::

    r̂_ui = mu + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)

``N(u)`` is the set of movies the user has rated (whatever the ratings): each movie ``j``
carries a second factor vector ``y_j`` and the user is described partly by what they chose
to watch. ``mu`` is the mean training rating (fixed).

**Which N(u).** Training follows the standard formulation: for every training event of user
``u``, ``N(u)`` is the user's whole fitting store (``TrainSet.events``), the rated set of the
paper. At predict time ``N(u)`` is the query's own history (every earlier event of the user,
given by the ``HistoryBatch``), which is exactly SVD++'s intent and keeps the model blind to
the future. For a validation query the two coincide (its history is the user's fitting
store), and so they do for a test query after the refit on ``TrainSet.val_events()``.
History movies never seen in training count in ``|N(u)|`` with ``y_j = 0``.

**Objective**, over the training events ``(u, i, r)``::

    Σ (r - r̂_ui)² + reg · Σ (‖p_u‖² + ‖q_i‖² + ‖y_i‖²) + reg_bias · (Σ_u b_u² + Σ_i b_i²)

The factor penalty is summed per event (weighted by the user's/movie's event count, as in
SGD recipes and ``mf``'s ALS-WR; since ``N(u)`` is the rated set, ``y_i`` is weighted like
``q_i``), so ``reg`` is on the per-rating scale. The biases get a constant damping
``reg_bias`` per user and per movie, as in ``mf`` and the ``bias`` baseline.

**Solver.** Mini-batch Adam in torch on the CPU, one batch = a group of whole users (about
``batch_events`` events): the users are shuffled each epoch with a local ``torch.Generator``,
and a batch computes the implicit sums of its users once,
``z_u = |N(u)|^-1/2 Σ_j y_j`` via ``index_add_`` over its events, then the loss of all their
events (divided by the batch's event count; a movie's bias penalty is spread over its events
as ``reg_bias · b_i² / n_i`` so that one epoch adds up to the objective above). One epoch is
one pass over the events for the loss and one for the implicit sums: linear in the number
of ratings. Two choices make Adam behave on this model:

- the biases start at the damped baseline estimates of ``bias`` (``b_i`` then ``b_u``, one
  pass, damping ``reg_bias``), so that the early epochs fit factors instead of slowly
  building biases;
- the implicit factors learn at ``lr / sqrt(median |N(u)|)``: Adam moves every ``y_j`` of a
  user by about ``lr`` in a coherent direction, which moves ``z_u`` by about
  ``lr · |N(u)|^1/2``; without the scaling heavy users' ``z_u`` overshoot (on
  ml-latest-small the validation error climbed from the second epoch on).

**Dense or lazy Adam** (``optimizer``). Dense Adam (``torch.optim.Adam``) steps every
parameter row at every batch, so a step costs the whole model: at the notebook's full scale
(200,948 users, 54,216 movies, 64 factors: 20M parameters) that was 80% of the fit, and an
epoch of 3,300 batches took minutes. Lazy Adam (``torch.optim.SparseAdam``, gathers with
sparse gradients) updates only the rows a batch touches, with their own moments, so an
epoch costs in proportion to its events. The rows a batch does not touch then keep still
instead of coasting on their momentum. ``"auto"`` (the default) takes dense Adam while the
parameter rows (users + 2 × movies) are at most ``LAZY_ROWS_PER_BATCH`` (8) batches of
``batch_events`` events, which keeps every notebook-sized fit exactly as before. Above that,
lazy Adam is used. The choice is recorded in the fit's settings (``optimizer``). On
ml-latest-small's validation queries lazy Adam scored 0.8680 and dense Adam 0.8707; on the
synthetic tenth scale, 0.9608 and 0.9623.

Initial ``p_u``, ``q_i`` are ``N(0, init_std²)`` from the generator; ``y_j`` starts at 0. The
same seed gives bit-identical parameters on the CPU (for a given thread count): the randomness
is all in the local generator, and every gather is an ``index_select`` (whose gradient is the
deterministic ``index_add_``) rather than advanced indexing, whose multi-threaded CPU
backward accumulates in a varying order.
Fitting runs in float32; prediction in float64 from copies of the parameters.

**Tuning** on validation RMSE: ``factors`` and ``reg`` left as ``None`` are chosen over a
small grid; ``epochs`` left as ``None`` is the best epoch up to ``max_epochs``. As in ``mf``
(the rule of ``predictors.tuning``): up to ``tune_events`` fitting events (default 300,000)
every setting is trained from the seed on all events (a run stops when 3 epochs bring no
improvement) and, with ``refit``, the model is trained again from the same seed on the
training events plus the validation targets (``TrainSet.val_events()``). Above, the grid
runs on a seeded user subsample of about ``tune_events`` events, walked as in ``mf`` (``reg``
warm-started at the smallest ``factors``, then larger ``factors`` while they gain 1e-4); one
fit on all training events then starts from the chosen subsample model (users and movies it
saw; the others from the seed) and stops at the first epoch that gains less than
1e-4 on all validation queries; the refit continues from it for one epoch on training +
validation events. The fit report's ``val_rmse`` (also in its settings) is the fitted
model's validation RMSE on all validation queries, measured before the refit; the settings
also record the seed, the tuning data, the grid, the final fit's curve and the seconds of
each part.

**Fallbacks** (flagged): a movie without training events gets ``b_i = 0``, ``q_i = 0``
(no factor term); a user without training events gets ``p_u = 0`` and ``b_u`` from the
query's history as in ``bias`` (damped mean residual against ``mu + b_i``, damping
``reg_bias``); the implicit term still applies to such a user, since it needs only the
history.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from predictors.contract import Capabilities, FitReport
from predictors.mf import check_param_memory
from predictors.numerics import damped_user_bias, known, rmse
from predictors.options import Integer, Interval, model_options, option
from predictors.tuning import FactorModel
from predictors.types import EventStore, HistoryBatch, Queries, TrainSet, gather_ranges

__all__ = ["SVDpp", "SVDppParams", "fit_svdpp", "implicit_sums"]

_FACTOR_GRID = (16, 64)
_REG_GRID = (0.03, 0.1, 0.3)
_SUM_ELEMENTS = 1 << 22  # bound on gathered (history row, factor) elements in implicit_sums
_REFIT_EPOCHS = 1  # large data: epochs of the warm refit on training + validation events
# optimizer "auto": dense Adam while the parameter rows (users + 2 x movies) are at most this
# many batches of events, lazy Adam above (a dense step then costs more than the batch)
LAZY_ROWS_PER_BATCH = 8


@dataclass(frozen=True)
class SVDppParams:
    """Fitted SVD++ parameters (float64 copies). Movies without training events have zero
    rows in ``item_bias``, ``item_factors`` and ``item_implicit``."""

    mu: float
    user_bias: NDArray[np.float64]  # (n_users,) b_u
    user_factors: NDArray[np.float64]  # (n_users, k) p_u
    item_bias: NDArray[np.float64]  # (n_items,) b_i
    item_factors: NDArray[np.float64]  # (n_items, k) q_i
    item_implicit: NDArray[np.float64]  # (n_items, k) y_j
    user_count: NDArray[np.int64]  # (n_users,) training events per user
    item_count: NDArray[np.int64]  # (n_items,) training events per movie


def implicit_sums(batch: HistoryBatch, y: NDArray[np.floating]) -> NDArray[np.float64]:
    """(B, k) float64 ``|N|^-1/2 Σ_{j ∈ N} y_j`` with ``N`` the history of each query; a zero
    row for an empty history. ``y`` is the (n_items, k) implicit factor matrix. Histories are
    gathered in chunks of queries of at most about 2^22 (history row, factor) elements, so
    memory does not grow with the batch."""
    b, k = len(batch), y.shape[1]
    n = batch.hist_lengths()
    sums = np.zeros((b, k))
    if batch.hist_item.size == 0:
        return sums
    y64 = np.asarray(y, np.float64)
    off = batch.hist_offsets
    step = max(1, _SUM_ELEMENTS // max(k, 1))  # history rows per chunk
    lo = 0
    while lo < b:
        # queries lo..hi-1 hold at most `step` history rows (at least one query)
        hi = max(lo + 1, int(np.searchsorted(off, off[lo] + step, side="right")) - 1)
        hi = min(hi, b)
        rows = np.concatenate([y64[batch.hist_item[off[lo] : off[hi]]], np.zeros((1, k))])
        # reduceat returns rows[start] for an empty range: those are masked out below
        sums[lo:hi] = np.add.reduceat(rows, off[lo:hi] - off[lo], axis=0)
        lo = hi
    scale = np.where(n > 0, 1.0 / np.sqrt(np.maximum(n, 1)), 0.0)
    return sums * scale[:, None]


def fit_svdpp(
    store: EventStore,
    n_items: int,
    *,
    factors: int,
    reg: float,
    reg_bias: float,
    epochs: int,
    lr: float,
    batch_events: int,
    seed: int,
    init_std: float = 0.05,
    on_epoch: Callable[[int, SVDppParams], bool] | None = None,
    init: SVDppParams | None = None,
    optimizer: str = "adam",
) -> SVDppParams:
    """Train SVD++ on ``store`` by mini-batch Adam for ``epochs`` epochs (see the module
    docstring). ``on_epoch(epoch, params)`` is called after every epoch (1-based); returning
    True stops. ``init`` (a fit with the same ``factors`` and codes) is a warm start: users
    and movies it has events for start from its parameters, the others as without it.
    Raises ValueError on an empty store or when the parameters would not fit in memory
    (lower ``factors``)."""
    import torch

    from predictors.torch.device import owned

    n_users = store.n_users
    if store.n_events == 0:
        raise ValueError("cannot fit on an empty training set (no training events)")
    check_param_memory("factors", factors, n_users + 2 * n_items, copies=4)
    ucount = store.lengths().astype(np.int64)
    icount = np.bincount(store.item, minlength=n_items).astype(np.int64)
    mu = float(np.mean(store.rating, dtype=np.float64))
    starts = store.user_offsets[:-1]
    active = np.flatnonzero(ucount > 0)

    item = owned(store.item.astype(np.int64))
    resid = owned((store.rating.astype(np.float64) - mu).astype(np.float32))
    inv_icount = owned((1.0 / np.maximum(icount, 1)).astype(np.float32))
    inv_sqrt = owned((1.0 / np.sqrt(np.maximum(ucount, 1))).astype(np.float32))

    gen = torch.Generator().manual_seed(int(seed))
    p = (torch.randn(n_users, factors, generator=gen) * init_std).requires_grad_()
    q = (torch.randn(n_items, factors, generator=gen) * init_std).requires_grad_()
    y = torch.zeros(n_items, factors, requires_grad=True)
    # biases start at the damped baseline estimates (one pass, as in ``bias``)
    r0 = store.rating.astype(np.float64) - mu
    bi0 = np.bincount(store.item, weights=r0, minlength=n_items) / (icount + reg_bias + 1e-12)
    bu0 = np.add.reduceat(np.append(r0 - bi0[store.item], 0.0), starts) * (ucount > 0)
    bu0 = bu0 / (ucount + reg_bias + 1e-12)
    if init is not None:
        if init.item_factors.shape != (n_items, factors):
            raise ValueError(
                f"fit_svdpp: init has factors of shape {init.item_factors.shape}, "
                f"expected ({n_items}, {factors})"
            )
        ku, ki = init.user_count > 0, init.item_count > 0
        bu0, bi0 = np.where(ku, init.user_bias, bu0), np.where(ki, init.item_bias, bi0)
        with torch.no_grad():
            for t, a, known in (
                (p, init.user_factors, ku),
                (q, init.item_factors, ki),
                (y, init.item_implicit, ki),
            ):
                rows = torch.from_numpy(np.flatnonzero(known))
                t[rows] = torch.from_numpy(a[known].astype(np.float32))
    bu = owned(bu0.astype(np.float32)).requires_grad_()
    bi = owned(bi0.astype(np.float32)).requires_grad_()
    # a coherent Adam step of size lr on every y_j moves z_u by lr * |N(u)|^1/2: scale the
    # implicit factors' rate down by the typical |N(u)|^1/2 so that z_u moves like p_u
    lr_y = lr / float(np.sqrt(np.median(ucount[active])))
    lazy = optimizer == "lazy-adam"
    if lazy:
        # gathers with sparse gradients: each step touches only its batch's rows
        bu = bu.detach().reshape(-1, 1).requires_grad_()
        bi = bi.detach().reshape(-1, 1).requires_grad_()
        groups = [{"params": [p, q, bu, bi]}, {"params": [y], "lr": lr_y}]
        opt: Any = torch.optim.SparseAdam(groups, lr=lr)  # type: ignore[arg-type]
        emb = torch.nn.functional.embedding

        def rows_of(t: Any, idx: Any) -> Any:
            return emb(idx, t, sparse=True)

        def bias_of(t: Any, idx: Any) -> Any:  # the (n, 1) bias columns, as (len(idx),)
            return emb(idx, t, sparse=True)[:, 0]
    else:
        opt = torch.optim.Adam([{"params": [p, q, bu, bi]}, {"params": [y], "lr": lr_y}], lr=lr)  # type: ignore[arg-type]

        def rows_of(t: Any, idx: Any) -> Any:
            return t.index_select(0, idx)

        bias_of = rows_of

    def params() -> SVDppParams:
        with torch.no_grad():
            out = [
                t.detach().numpy().reshape(t.shape[0], -1).astype(np.float64)
                for t in (bu, p, bi, q, y)
            ]
            out[0], out[2] = out[0][:, 0], out[2][:, 0]
        for a in out[2:]:
            a[icount == 0] = 0.0
        return SVDppParams(mu, *out, user_count=ucount, item_count=icount)  # type: ignore[arg-type, misc]

    for epoch in range(1, epochs + 1):
        order = active[torch.randperm(active.size, generator=gen).numpy()]  # (U,) users
        ev, off = gather_ranges(starts[order], starts[order] + ucount[order])
        # cut the shuffled users into groups of about batch_events events (whole users)
        cuts = np.searchsorted(off, np.arange(batch_events, ev.size, batch_events))
        bounds = np.unique(np.concatenate([[0], cuts, [order.size]]))
        ev_t = torch.from_numpy(ev)
        for lo, hi in itertools.pairwise(bounds):
            users = torch.from_numpy(order[lo:hi])  # (b,)
            lens = torch.from_numpy(ucount[order[lo:hi]])  # (b,)
            rows = ev_t[int(off[lo]) : int(off[hi])]  # (e,) event rows
            local = torch.repeat_interleave(torch.arange(hi - lo), lens)  # (e,) user slot
            it = item[rows]  # (e,)
            y_e = rows_of(y, it)  # (e, k)
            z = torch.zeros(hi - lo, factors).index_add_(0, local, y_e)  # (b, k)
            pu = rows_of(p, users)  # (b, k)
            vec = pu + z * inv_sqrt[users, None]  # (b, k)
            q_e = rows_of(q, it)  # (e, k)
            bu_b = bias_of(bu, users)  # (b,)
            bi_e = bias_of(bi, it)  # (e,)
            vec_e = vec.index_select(0, local)  # (e, k)
            pred = bu_b.index_select(0, local) + bi_e + (q_e * vec_e).sum(1)  # (e,)
            err = resid[rows] - pred
            lens_f = lens.to(torch.float32)
            loss = (
                (err * err).sum()
                + reg * ((lens_f * (pu * pu).sum(1)).sum() + (q_e * q_e).sum() + (y_e * y_e).sum())
                + reg_bias * ((bu_b * bu_b).sum() + (bi_e * bi_e * inv_icount[it]).sum())
            ) / rows.numel()
            opt.zero_grad(set_to_none=lazy)
            loss.backward()
            opt.step()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"svdpp: non-finite training loss at epoch {epoch}")
        if on_epoch is not None and on_epoch(epoch, params()):
            break
    return params()


# --------------------------------------------------------------------------- predictor


def predict_params(
    params: SVDppParams, batch: HistoryBatch, damping: float
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """SVD++ prediction (B,) float64 for every query from ``params``, and the fallback mask
    (B,) bool. ``damping`` is the damping of a history-estimated ``b_u`` (unknown users)."""
    user = batch.user.astype(np.int64)
    known_u = known(params.user_count, user)
    known_i = params.item_count[batch.target_item] > 0
    u = np.where(known_u, user, 0)
    i = batch.target_item.astype(np.int64)  # unseen movies have zero b_i, q_i rows
    vec = params.user_factors[u] * known_u[:, None] + implicit_sums(batch, params.item_implicit)
    pred = params.mu + params.item_bias[i] + np.einsum("bk,bk->b", params.item_factors[i], vec)
    b_u = params.user_bias[u]
    if not known_u.all():
        # unknown user: b_u from the history (damped mean residual against mu + b_i)
        cold = damped_user_bias(batch, params.mu, params.item_bias, damping)
        b_u = np.where(known_u, b_u, cold)
    return pred + b_u, ~(known_u & known_i)


@model_options
class SVDpp(FactorModel[SVDppParams]):
    """SVD++: ``r̂ = mu + b_u + b_i + q_i · (p_u + |N(u)|^-1/2 Σ_{j ∈ N(u)} y_j)``.

    Learns per-user and per-movie parameters (ids); the implicit term is computed from the
    query's own history. Options (keyword-only):

    - ``factors`` (int >= 1) latent dimension; ``None``: tuned over (16, 64);
    - ``reg`` (>= 0) per-event L2 on ``p_u``, ``q_i``, ``y_i``; ``None``: tuned over
      (0.03, 0.1, 0.3);
    - ``reg_bias`` (>= 0, default 5) damping of ``b_u`` and ``b_i`` (once per user/movie);
    - ``epochs`` (int >= 1) training epochs; ``None``: the best epoch on validation, up to
      ``max_epochs`` (default 40);
    - ``lr`` (> 0, default 0.005) Adam learning rate; ``batch_events`` (int >= 1, default
      4096) events per mini-batch (whole users); ``init_std`` (> 0, default 0.05);
    - ``refit`` (default True) retrain on training + validation events before test;
    - ``seed`` (int >= 0) for initialisation, shuffling and the tuning subsample; ``None``:
      the train set's seed;
    - ``tune_events`` (int >= 1, default 300,000): tune on everything up to this many
      fitting events, else on a seeded user subsample of about this many (see the module
      docstring);
    - ``optimizer`` (``"auto"``, ``"adam"`` or ``"lazy-adam"``): dense or lazy Adam;
      ``"auto"`` picks by size (see the module docstring).

    See the module docstring for N(u), the objective, the solver, tuning and the fallbacks.
    """

    name = "svdpp"
    capabilities: ClassVar[Capabilities] = Capabilities(seeded=True, torch=True)

    factor_grid = _FACTOR_GRID
    reg_grid = _REG_GRID
    refit_epochs = _REFIT_EPOCHS

    max_epochs: int = 40
    lr: float = option(0.005, Interval(0.0, closed="neither"), help="Adam learning rate")
    batch_events: int = option(4096, Integer(1), help="events per mini-batch (whole users)")
    init_std: float = option(
        0.05, Interval(0.0, closed="neither"), help="standard deviation of the initial factors"
    )
    optimizer: str = option(
        "auto", "adam", "lazy-adam", help="dense or lazy Adam; auto: by size (optimizer_for)"
    )

    def optimizer_for(self, n_users: int, n_items: int) -> str:
        """The optimizer of a fit with ``n_users`` and ``n_items`` parameter rows: the option,
        or for ``"auto"`` dense Adam while the parameter rows are at most
        ``LAZY_ROWS_PER_BATCH`` batches of events, else lazy Adam (see the module docstring)."""
        if self.optimizer != "auto":
            return self.optimizer
        rows = n_users + 2 * n_items
        return "adam" if rows <= LAZY_ROWS_PER_BATCH * int(self.batch_events) else "lazy-adam"

    def _fit(self, train: TrainSet) -> FitReport:
        self.optimizer_ = self.optimizer_for(train.events.n_users, train.n_items)
        return super()._fit(train)

    def _extra_info(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer_}

    def _solver(self) -> Callable[..., SVDppParams]:
        return fit_svdpp

    def _solver_options(self) -> dict[str, Any]:
        return {
            "lr": float(self.lr),
            "batch_events": int(self.batch_events),
            "init_std": float(self.init_std),
            "optimizer": self.optimizer_,
        }

    def _val_score(self, params: SVDppParams, val: Queries) -> float:
        pred, _ = predict_params(params, val.batch, float(self.reg_bias))
        return rmse(self.scale_.clip(pred), val.rating)

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        return predict_params(self.params_, batch, float(self.reg_bias))
