"""Choosing hyper-parameters on validation, cheaply: the grid search shared by ``mf``,
``mf-temporal`` and ``svdpp``, and the seeded subsamples the classic models tune on.

**The subsample rule.** Tuning runs many fits, so it runs on everything only while the data
is small: a model whose fitting store holds at most ``tune_events`` events (an option of each
model; default ``TUNE_EVENTS`` = 300,000, three times ml-latest-small) tunes on all of it.
Above that, it tunes on a seeded subsample of whole users (``tuning_subset``): the users are
shuffled with ``np.random.default_rng(seed)`` and taken in that order while their events add
up to at most ``tune_events``; the subsample keeps those users' fitting events, training
targets and validation queries, and every user and movie code. The same seed gives the same
subsample. The model is then fitted once on all training events with the chosen setting (see
each model for how it picks the number of sweeps there and how it refits). Models that only
score queries while tuning (``knn``) subsample validation queries instead
(``query_subset``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from predictors.base import BasePredictor
from predictors.contract import Capabilities, FitReport
from predictors.options import (
    Boolean,
    Integer,
    Interval,
    Validated,
    model_options,
    option,
    option_error,
)
from predictors.types import EventStore, Queries, TrainSet, gather_ranges

__all__ = [
    "TUNE_EVENTS",
    "FactorModel",
    "GridChoice",
    "Selection",
    "Stopped",
    "Tuning",
    "early_stopped",
    "grid_search",
    "query_subset",
    "select_and_fit",
    "tuning_subset",
]

TUNE_EVENTS = 300_000  # at most this many fitting events: tune on everything
_TOL = 1e-4  # large data: an epoch that gains less validation RMSE than this does not count


@dataclass(frozen=True)
class Tuning:
    """What a model tunes on: ``train`` itself (small data) or a seeded user subsample."""

    train: TrainSet
    subsampled: bool
    info: dict[str, Any]  # JSON-able: the rule, the subsample's size and seed


def _check_budget(key: str, value: int) -> None:
    msg = option_error(key, value, (Integer(1),), {})
    if msg is not None:
        raise ValueError(msg)


def tuning_subset(train: TrainSet, *, max_events: int, seed: int) -> Tuning:
    """``train`` when its store holds at most ``max_events`` events, else the seeded user
    subsample of the module docstring (at least one user). User and item codes are kept
    (users outside the subsample have no events), so parameters fitted on the subsample
    index like parameters fitted on ``train``. Vectorised; the arrays are new copies."""
    _check_budget("tune_events", max_events)
    ev = train.events
    n_val = len(train.val.batch)
    if ev.n_events <= max_events:
        info = {"on": "all", "users": int(np.count_nonzero(ev.lengths())), "events": ev.n_events}
        return Tuning(train, False, {**info, "val_queries": n_val, "max_events": max_events})
    lens = ev.lengths()
    users = np.flatnonzero(lens > 0)
    users = users[np.random.default_rng(seed).permutation(users.size)]
    n_take = max(1, int(np.searchsorted(np.cumsum(lens[users]), max_events, side="right")))
    keep = np.zeros(ev.n_users, dtype=bool)
    keep[users[:n_take]] = True
    new_lens = np.where(keep, lens, 0)
    offsets = np.zeros(ev.n_users + 1, dtype=np.int64)
    np.cumsum(new_lens, out=offsets[1:])
    chosen = np.flatnonzero(keep)
    rows, _ = gather_ranges(ev.user_offsets[chosen], ev.user_offsets[chosen + 1])
    store = EventStore(
        user_offsets=offsets,
        item=ev.item[rows],
        rating=ev.rating[rows],
        timestamp=ev.timestamp[rows],
    )
    t_keep = keep[train.train_user]
    t_user = train.train_user[t_keep]
    t_pos = train.train_pos[t_keep] - ev.user_offsets[t_user] + offsets[t_user]
    v_rows = np.flatnonzero(keep[train.val.batch.user])
    val = Queries(batch=train.val.batch.take(v_rows), rating=train.val.rating[v_rows])
    sub = dataclasses.replace(
        train, events=store, train_user=t_user, train_pos=t_pos, val=val, meta=dict(train.meta)
    )
    info = {
        "on": "user subsample",
        "users": int(chosen.size),
        "events": store.n_events,
        "val_queries": int(v_rows.size),
        "seed": int(seed),
        "max_events": int(max_events),
        "of_users": int(users.size),
        "of_events": ev.n_events,
    }
    return Tuning(sub, True, info)


def query_subset(val: Queries, *, max_queries: int, seed: int) -> tuple[Queries, dict[str, Any]]:
    """``val`` when it has at most ``max_queries`` queries, else a seeded random subset of
    ``max_queries`` of them (in their original order), with a JSON-able description."""
    _check_budget("tune_queries", max_queries)
    n = len(val.batch)
    if n <= max_queries:
        return val, {"on": "all", "val_queries": n, "max_queries": max_queries}
    rows: NDArray[np.int64] = np.sort(
        np.random.default_rng(seed).choice(n, size=max_queries, replace=False)
    )
    sub = Queries(batch=val.batch.take(rows), rating=val.rating[rows])
    info = {
        "on": "query subsample",
        "val_queries": int(max_queries),
        "of_queries": n,
        "seed": int(seed),
        "max_queries": int(max_queries),
    }
    return sub, info


P = TypeVar("P")


@dataclass
class GridChoice(Generic[P]):
    factors: int
    reg: float
    epochs: int
    val_rmse: float | None  # None when there were no validation queries to score
    params: P  # the parameters of the chosen epoch
    grid: list[dict[str, Any]]  # per setting, the validation RMSE of every epoch


def grid_search(
    train: Callable[[int, float, int, Callable[[int, P], bool], P | None], P],
    score: Callable[[P], float],
    factors: Sequence[int],
    regs: Sequence[float],
    *,
    max_epochs: int,
    fixed_epochs: int | None,
    tune: bool,
    patience: int = 3,
    warm: bool = False,
    tol: float = 0.0,
) -> GridChoice[P]:
    """Train every (factors, reg) setting, scoring the parameters after each epoch on
    validation, and keep the best epoch of the best setting.

    ``train(factors, reg, epochs, on_epoch, init)`` returns the final parameters and calls
    ``on_epoch(epoch, params)`` after each epoch; ``on_epoch`` returns True to stop early
    (after ``patience`` epochs that do not improve the setting's best by more than ``tol``,
    only when ``fixed_epochs`` is None).
    ``score(params)`` is the validation RMSE. With ``tune`` False (no validation queries)
    only the first setting is trained, for ``fixed_epochs`` or ``max_epochs`` epochs.

    With ``warm`` (large data) the grid is walked cheapest first: the regularisation path at
    the smallest ``factors``, from the strongest ``reg`` down, each setting starting from the
    final parameters of the previous one (``init``; None for the first), so later settings
    converge in a few epochs and their recorded epochs count from the warm start; then each
    larger ``factors`` in turn along the same path, down to the ``reg`` chosen so far.
    The walk stops at the first larger ``factors`` that does not improve the best validation
    RMSE by more than ``tol``, and that setting is not chosen (a gain under ``tol`` does not
    pay for the larger final fit); the settings not tried are listed as skipped. Otherwise
    (small data) every setting of the full grid starts from ``init`` None (the model's
    seeded initialisation).
    """
    n_epochs = max_epochs if fixed_epochs is None else int(fixed_epochs)
    if not tune:
        factors, regs = factors[:1], regs[:1]
    best: dict[str, Any] = {
        "val_rmse": np.inf,
        "factors": factors[0],
        "reg": regs[0],
        "epochs": n_epochs,
        "params": None,
    }
    grid: list[dict[str, Any]] = []
    params: P | None = None
    if warm:
        factors, regs = sorted(factors), sorted(regs, reverse=True)
    for i_f, f in enumerate(factors):
        # warm: a larger factors walks the same path down to the chosen reg (a cold start
        # at a weak reg would overfit before it converges)
        f_regs = [r for r in regs if r >= best["reg"]] if warm and i_f else regs
        before = dict(best)
        init: P | None = None
        for reg in f_regs:
            curve: list[float] = []
            gain = [0]  # the last epoch that improved the setting's best by more than tol

            def on_epoch(
                epoch: int,
                prm: P,
                curve: list[float] = curve,
                gain: list[int] = gain,
                f: int = f,
                reg: float = reg,
            ) -> bool:
                if not tune:
                    return False
                s = score(prm)
                if not curve or s < min(curve) - tol:
                    gain[0] = epoch
                curve.append(s)
                if s < best["val_rmse"]:
                    best.update(val_rmse=s, factors=f, reg=reg, epochs=epoch, params=prm)
                return fixed_epochs is None and epoch - gain[0] > patience

            started_warm = init is not None
            params = train(f, reg, n_epochs, on_epoch, init)
            if warm:
                init = params
            row = {"factors": f, "reg": reg, "val_rmse": [round(c, 5) for c in curve]}
            grid.append({**row, "warm_start": True} if started_warm else row)
        if warm and tune and i_f and not best["val_rmse"] < before["val_rmse"] - tol:
            # a larger model that gains less than tol: keep the smaller one, stop growing
            best.clear()
            best.update(before)
            grid[-1]["outcome"] = f"gain under {tol:g}: the smaller factors kept"
            skip = f"factors={f} gained under {tol:g}"
            grid.extend(
                {"factors": g, "reg": float(best["reg"]), "skipped": skip}
                for g in factors[i_f + 1 :]
            )
            break
    if best["params"] is None:  # nothing scored: the (only) trained setting
        best["params"] = params
    return GridChoice(
        factors=int(best["factors"]),
        reg=float(best["reg"]),
        epochs=n_epochs if fixed_epochs is not None else int(best["epochs"]),
        val_rmse=None if not np.isfinite(best["val_rmse"]) else float(best["val_rmse"]),
        params=best["params"],
        grid=grid,
    )


@dataclass
class Stopped(Generic[P]):
    """The best epoch of one early-stopped training run."""

    params: P
    epochs: int
    val_rmse: float
    curve: list[float]  # validation RMSE after every epoch that ran


def early_stopped(
    train: Callable[[int, Callable[[int, P], bool]], P],
    score: Callable[[P], float],
    *,
    max_epochs: int,
    patience: int = 1,
    tol: float = 1e-4,
) -> Stopped[P]:
    """Run ``train(max_epochs, on_epoch)`` once, scoring every epoch on validation, and keep
    the best epoch's parameters. Stops after ``patience`` epochs that do not improve the best
    validation RMSE by more than ``tol``."""
    curve: list[float] = []
    best: dict[str, Any] = {"val_rmse": np.inf, "epochs": 0, "params": None, "since": 0}

    def on_epoch(epoch: int, prm: P) -> bool:
        s = score(prm)
        curve.append(s)
        if s < best["val_rmse"] - tol:
            best.update(val_rmse=s, epochs=epoch, params=prm, since=0)
        else:
            if s < best["val_rmse"]:  # a tiny gain: keep the better parameters
                best.update(val_rmse=s, epochs=epoch, params=prm)
            best["since"] += 1
        return bool(best["since"] >= patience)

    last = train(max_epochs, on_epoch)
    params = last if best["params"] is None else best["params"]
    curve_r = [round(c, 5) for c in curve]
    return Stopped(params, int(best["epochs"]), float(best["val_rmse"]), curve_r)


@dataclass
class Selection(Generic[P]):
    """The outcome of ``select_and_fit``: the chosen setting, the parameters fitted on all
    training events with it (before any refit), and how to refit."""

    factors: int
    reg: float
    epochs: int  # epochs (sweeps) of the chosen fit
    params: P
    tune_val: Queries  # the validation queries further tuning (e.g. an offset) should use
    refit_epochs: int  # epochs of the refit on training + validation events
    refit_init: P | None  # None: the refit starts from the seed; else continues from this
    info: dict[str, Any]  # JSON-able: tuning data, grid, final fit
    timings: dict[str, float]


def select_and_fit(
    train: TrainSet,
    fit: Callable[[TrainSet, int, float, int, Callable[[int, P], bool] | None, P | None], P],
    score: Callable[[P, Queries], float],
    factors: Sequence[int],
    regs: Sequence[float],
    *,
    max_epochs: int,
    fixed_epochs: int | None,
    tune_events: int,
    seed: int,
    patience: int = 3,
    refit_epochs: int = 1,
) -> Selection[P]:
    """Choose (factors, reg, epochs) on validation and fit on all training events.

    ``fit(data, factors, reg, epochs, on_epoch, init)`` trains on ``data.events`` (see
    ``grid_search`` for ``on_epoch``; ``init`` a warm start or None); ``score(params,
    queries)`` is the validation RMSE. Small data (see ``tuning_subset``): the whole grid,
    each setting from the seed with early stopping (``patience``), on all events; the refit
    retrains from the seed for the chosen epochs. Large data: the grid on the seeded user
    subsample, walked cheapest first (the ``reg`` path, warm-started, at the smallest
    ``factors``, then larger ``factors`` down to the chosen ``reg`` while they gain; patience
    1, gains under 1e-4 do not count; skipped when only one setting is free), then one fit on
    all events starting from the chosen subsample model, its epochs chosen on all validation
    queries (stopping at the first epoch that gains < 1e-4, or exactly ``fixed_epochs``); the
    refit continues from that fit for ``refit_epochs``.
    """
    t0 = time.perf_counter()
    has_val = len(train.val.batch) > 0
    tuning = (
        tuning_subset(train, max_events=tune_events, seed=seed)
        if has_val
        else Tuning(train, False, {"on": "nothing: no validation queries"})
    )
    info: dict[str, Any] = {"tuning": tuning.info}
    timings: dict[str, float] = {}
    small, data = not tuning.subsampled, tuning.train
    init: P | None = None
    if small or len(factors) * len(regs) > 1:
        choice = grid_search(
            lambda f, reg, n, on_epoch, init: fit(data, f, reg, n, on_epoch, init),
            lambda params: score(params, data.val),
            factors,
            regs,
            max_epochs=max_epochs,
            fixed_epochs=fixed_epochs if small else None,
            tune=has_val,
            patience=patience if small else 1,
            warm=not small,
            tol=0.0 if small else _TOL,
        )
        info["grid"] = choice.grid
        if small:
            timings["tuning_s"] = time.perf_counter() - t0
            return Selection(
                choice.factors,
                choice.reg,
                choice.epochs,
                choice.params,
                train.val,
                choice.epochs,
                None,
                info,
                timings,
            )
        factors, regs, init = (choice.factors,), (choice.reg,), choice.params
        info["tuning"]["val_rmse"] = choice.val_rmse
    timings["tuning_s"] = time.perf_counter() - t0
    t1 = time.perf_counter()
    f, reg = int(factors[0]), float(regs[0])
    stop = early_stopped(
        lambda n, on_epoch: fit(train, f, reg, n, on_epoch, init),
        lambda params: score(params, train.val),
        max_epochs=max_epochs if fixed_epochs is None else int(fixed_epochs),
        patience=1 if fixed_epochs is None else int(fixed_epochs),
        tol=_TOL if fixed_epochs is None else -np.inf,
    )
    info["final_fit"] = {
        "events": train.events.n_events,
        "warm_start": init is not None,
        "val_rmse_per_epoch": stop.curve,
    }
    timings["final_fit_s"] = time.perf_counter() - t1
    return Selection(
        f, reg, stop.epochs, stop.params, data.val, refit_epochs, stop.params, info, timings
    )


# --------------------------------------------------------------------------- tuned factor models


@model_options
class FactorModel(Validated, BasePredictor, Generic[P]):
    """The options and the fit that ``mf``, ``mf-temporal`` and ``svdpp`` share: a latent
    factor model whose ``factors``/``reg``/epochs are chosen by ``select_and_fit`` and which
    then refits on the training events plus the validation targets.

    Options: ``factors`` (int >= 1; None: tuned over ``factor_grid``), ``reg`` (None: tuned
    over ``reg_grid``), ``reg_bias`` (>= 0) damping of the biases, ``epochs`` (int >= 1;
    None: the best epoch up to ``max_epochs``), ``refit``, ``seed`` (int >= 0; None: the
    run's seed, ``train.context.seed``), ``tune_events`` (int >= 1; see the module
    docstring). A subclass redeclares a field to change its default (or with ``option`` to
    change what it accepts); it implements ``_solver`` and ``_val_score``.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(seeded=True)
    factor_grid: ClassVar[tuple[int, ...]]
    reg_grid: ClassVar[tuple[float, ...]]
    refit_epochs: ClassVar[int] = 1  # large data: epochs of the warm refit
    epoch_word: ClassVar[str] = "epochs"  # what the refit record calls them

    factors: int | None = option(None, Integer(1), help="latent dimension; None: tuned")
    reg: float | None = option(None, Interval(0.0), help="L2 on the factors; None: tuned")
    reg_bias: float = option(5.0, Interval(0.0), help="damping of the user and item biases")
    epochs: int | None = option(
        None, Integer(1), help="training epochs; None: the best on validation, to max_epochs"
    )
    max_epochs: int = option(20, Integer(1), help="most epochs tried when epochs is None")
    refit: bool = option(True, Boolean(), help="refit on training + validation events")
    seed: int | None = option(None, Integer(0), help="seed of the fit; None: the run's seed")
    tune_events: int = option(
        TUNE_EVENTS, Integer(1), help="tune on all events up to this many, else a subsample"
    )

    # hooks ---------------------------------------------------------------------------------
    def _solver(self) -> Callable[..., P]:  # pragma: no cover - abstract
        """The fitting function: ``solver(store, n_items, *, factors, reg, reg_bias, epochs,
        seed, on_epoch, init, **self._solver_options())`` -> parameters."""
        raise NotImplementedError

    def _solver_options(self) -> dict[str, Any]:
        """The model's own keyword arguments to its solver."""
        return {}

    def _train(
        self,
        store: EventStore,
        n_items: int,
        factors: int,
        reg: float,
        epochs: int,
        on_epoch: Callable[[int, P], bool] | None = None,
        init: P | None = None,
    ) -> P:
        """Fit the parameters on ``store`` from ``self.seed_`` (or warm from ``init``)."""
        return self._solver()(
            store,
            n_items,
            factors=factors,
            reg=reg,
            reg_bias=float(self.reg_bias),
            epochs=epochs,
            seed=self.seed_,
            on_epoch=on_epoch,
            init=init,
            **self._solver_options(),
        )

    def _val_score(self, params: P, val: Queries) -> float:  # pragma: no cover - abstract
        """Validation RMSE of a parameter set (the tuning criterion)."""
        raise NotImplementedError

    def _after_tuning(self, params: P, val: Queries) -> None:
        """Called with the fitted (not yet refit) parameters and the validation queries to
        tune on; mf-temporal tunes its offset."""

    def _extra_info(self) -> dict[str, Any]:
        return {}

    # the fit -------------------------------------------------------------------------------
    def _fit(self, train: TrainSet) -> FitReport:
        t0 = time.perf_counter()
        self.seed_ = int(train.context.seed if self.seed is None else self.seed)
        has_val = len(train.val.batch) > 0
        sel = select_and_fit(
            train,
            lambda data, f, reg, n, on_epoch, init: self._train(
                data.events, train.n_items, f, reg, n, on_epoch, init
            ),
            self._val_score,
            self.factor_grid if self.factors is None else (int(self.factors),),
            self.reg_grid if self.reg is None else (float(self.reg),),
            max_epochs=self.max_epochs,
            fixed_epochs=self.epochs,
            tune_events=int(self.tune_events),
            seed=self.seed_,
            refit_epochs=self.refit_epochs,
        )
        self.factors_, self.reg_, self.epochs_ = sel.factors, sel.reg, sel.epochs
        t1 = time.perf_counter()
        self._after_tuning(sel.params, sel.tune_val)
        val_rmse = self._val_score(sel.params, train.val) if has_val else None
        sel.timings["after_tuning_s"] = time.perf_counter() - t1
        params = sel.params
        refit = bool(self.refit and has_val)
        if refit:
            # small data: retrained from the seed; large data: continued from the fit
            t1 = time.perf_counter()
            store = train.val_events()
            params = self._train(
                store,
                train.n_items,
                self.factors_,
                self.reg_,
                sel.refit_epochs,
                None,
                sel.refit_init,
            )
            sel.info["refit"] = {
                "events": store.n_events,
                self.epoch_word: sel.refit_epochs,
                "warm_start": sel.refit_init is not None,
            }
            sel.timings["refit_s"] = time.perf_counter() - t1
        self.params_ = params
        sel.timings["total_s"] = time.perf_counter() - t0
        settings = {
            "factors": self.factors_,
            "reg": self.reg_,
            "epochs": self.epochs_,
            "seed": self.seed_,
            "val_rmse": val_rmse,
            **self._extra_info(),
            **sel.info,
            "timings": {k: round(v, 3) for k, v in sel.timings.items()},
        }
        return FitReport(settings=settings, refit=refit, val_rmse=val_rmse)
