"""Test-set statistics: pooled metrics, their bootstrap CIs, paired differences, seed spread.

Decisions (docs/statistics.md has the reasoning and the measured costs):

- Metrics are pooled over test queries (one per user) on the original rating scale. Every
  metric is ``finish(mean(loss(pred - truth)))``: RMSE is ``sqrt`` of the mean squared error,
  MAE the mean absolute error. ``METRIC_TABLE`` lists them; statistics, the runner, compare
  and report iterate it, so a new metric of that form is one row there.
- **One resampling for every model.** ``evaluate`` takes every model's predictions at once,
  stacks their per-query losses into one (n, columns) matrix and resamples the test queries
  once: each batch of resamples is a matrix of multinomial counts (resample x query) applied
  to all columns with one matrix product. Every model, metric and paired difference is
  therefore read off the same resamples, and a model adds one column, not a bootstrap.
  The resamples depend only on ``(n, n_resamples, seed)``, never on the data.
- Intervals (``method``): ``"bca"``, ``"percentile"`` and ``"basic"`` on exact multinomial
  resamples, as ``scipy.stats.bootstrap`` defines them (the tests check agreement within
  Monte-Carlo error). BCa's jackknife is exact and O(n) here: every statistic is a smooth
  function of column means, so the leave-one-out means are ``(S - x_i) / (n - 1)``.
  ``"normal"`` is the percentile interval of the bootstrap distribution's Gaussian limit: the
  resampled column means are drawn as ``mean + N(0, Σ/n)`` (Σ the plug-in covariance of the
  columns, so pairing is kept), then passed through the same ``finish`` and differences. The
  bootstrap distribution of a mean differs from that limit by O(1/sqrt(n)) in skewness,
  far below the Monte-Carlo error of 2,000 resamples once n is in the tens of thousands,
  and it costs O(n · columns²) instead of O(n · n_resamples).
- ``"auto"``: BCa for ``n <= BCA_MAX_N``, exact percentile for ``n <= EXACT_MAX_N``, normal
  above. Exact batches are sized so that live arrays stay under ``RESAMPLE_BUDGET_BYTES``.
- A bootstrap distribution without spread (one query, all errors equal, a model against
  itself, a constant per-query margin) gives the point estimate as both bounds, with method
  ``"degenerate"``.
- Seed-to-seed spread (training randomness) is reported by ``seed_spread``, separately.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bench.errors import ConfigError

__all__ = [
    "BCA_MAX_N",
    "EXACT_MAX_N",
    "METHODS",
    "METRICS",
    "METRIC_TABLE",
    "RESAMPLE_BUDGET_BYTES",
    "VERDICTS",
    "Evaluation",
    "Interval",
    "Metric",
    "evaluate",
    "mae",
    "metric_cis",
    "paired_diff_cis",
    "resample_batch",
    "rmse",
    "seed_spread",
    "verdict",
]


@dataclass(frozen=True)
class Metric:
    """A pooled metric ``finish(mean(loss(pred - truth)))`` over test queries."""

    name: str
    label: str  # for tables and figures
    loss: Callable[[NDArray[np.float64]], NDArray[np.float64]]  # (n,) errors -> (n,) losses
    finish: Callable[[NDArray[np.float64]], NDArray[np.float64]]  # mean loss -> metric
    lower_is_better: bool = True


def _identity(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return x


def _sqrt(x: NDArray[np.float64]) -> NDArray[np.float64]:
    return np.sqrt(np.maximum(x, 0.0))


METRIC_TABLE: tuple[Metric, ...] = (
    Metric("rmse", "RMSE", np.square, _sqrt),
    Metric("mae", "MAE", np.abs, _identity),
)
METRICS = tuple(m.name for m in METRIC_TABLE)  # the order of every per-metric result
METHODS = ("auto", "bca", "percentile", "basic", "normal")
BCA_MAX_N = 5_000  # "auto" uses BCa up to this many queries
EXACT_MAX_N = 50_000  # "auto" resamples exactly up to this many queries, normal above
RESAMPLE_BUDGET_BYTES = 64 * 2**20  # target for live resample arrays per batch
# Live bytes per resampled element: the int32 draws and the float64 counts.
_BYTES_PER_ELEMENT = 12
# Bootstrap distributions whose range is below this (relative to max(1, |value|)) are
# degenerate: rounding noise of a constant statistic, not sampling variability.
_DEGENERATE_RTOL = 1e-12
# Covariance eigenvalues below this fraction of the largest are null directions ("normal").
_NULL_RTOL = 1e-10
# The words a difference interval is read as (``verdict``), and their short marks.
VERDICTS = {"better": "better", "worse": "worse", "no clear difference": "~"}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, on the rating scale."""

    estimate: float
    low: float
    high: float
    method: str  # "bca" | "percentile" | "basic" | "normal" | "degenerate"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _as_1d(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per test query), got shape {arr.shape}")
    return arr


def _check_truth(truth: ArrayLike) -> NDArray[np.float64]:
    t = _as_1d("truth", truth)
    if t.size == 0:
        raise ValueError("no test queries: truth and predictions are empty")
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(f"truth has {int(bad.sum())} non-finite ratings")
    return t


def _errors(t: NDArray[np.float64], pred: ArrayLike, pred_name: str) -> NDArray[np.float64]:
    """Per-query errors ``pred - truth`` as float64, shape (n,); raises ValueError on bad input."""
    p = _as_1d(pred_name, pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: truth has shape {t.shape}, {pred_name} has {p.shape}")
    if p.size == 0:
        raise ValueError("no test queries: truth and predictions are empty")
    bad = ~np.isfinite(p)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{pred_name} has {int(bad.sum())} missing or non-finite predictions "
            f"(first at query {first}: {p[first]}); a missing prediction is never averaged away"
        )
    return p - t


def _check_options(n_resamples: int, confidence: float, method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown CI method {method!r}; known: {', '.join(METHODS)}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive integer, got {n_resamples}")


# --------------------------------------------------------------------------- point metrics


def _point(metric: str, truth: ArrayLike, pred: ArrayLike) -> float:
    m = METRIC_TABLE[METRICS.index(metric)]
    e = _errors(_check_truth(truth), pred, "pred")
    return float(m.finish(np.asarray(np.mean(m.loss(e)))))


def rmse(truth: ArrayLike, pred: ArrayLike) -> float:
    """Pooled root mean squared error ``sqrt(mean((pred - truth)^2))`` over (n,) queries.

    Raises ValueError on a shape mismatch, empty input or any NaN/inf.
    """
    return _point("rmse", truth, pred)


def mae(truth: ArrayLike, pred: ArrayLike) -> float:
    """Pooled mean absolute error ``mean(|pred - truth|)`` over (n,) queries.

    Raises ValueError on a shape mismatch, empty input or any NaN/inf.
    """
    return _point("mae", truth, pred)


# --------------------------------------------------------------------------- resampling


def resample_batch(n: int, n_resamples: int) -> int:
    """Exact resamples per batch so that one batch holds at most ~RESAMPLE_BUDGET_BYTES.

    A function of (n, n_resamples) only, never of the data: the random stream, hence the
    resampled queries, are then identical for every model scored on the same n queries.
    """
    return int(max(1, min(n_resamples, RESAMPLE_BUDGET_BYTES // (_BYTES_PER_ELEMENT * n))))


def _resolve_method(method: str, n: int) -> str:
    if method == "auto":
        if n <= BCA_MAX_N:
            return "bca"
        return "percentile" if n <= EXACT_MAX_N else "normal"
    return method


def _exact_means(
    cols: NDArray[np.float64], n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """(R, C) column means of ``cols`` (n, C) over R multinomial resamples of its rows: each
    batch draws (b, n) query indices, counts them per resample (one ``bincount`` per row, so
    the counts stay in cache) and applies the (b, n) counts to every column at once."""
    n = cols.shape[0]
    batch = resample_batch(n, n_resamples)
    out = np.empty((n_resamples, cols.shape[1]), dtype=np.float64)
    counts = np.empty((batch, n), dtype=np.float64)
    for lo in range(0, n_resamples, batch):
        b = min(batch, n_resamples - lo)
        idx = rng.integers(0, n, size=(b, n), dtype=np.int32)  # (b, n) resampled queries
        for i in range(b):
            counts[i] = np.bincount(idx[i], minlength=n)
        out[lo : lo + b] = counts[:b] @ cols
    out /= n
    return out


def _normal_means(
    cols: NDArray[np.float64], n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """(R, C) draws of the Gaussian limit of the bootstrap distribution of the column means:
    ``mean + N(0, Σ / n)`` with Σ the plug-in (ddof=0) covariance of the (n, C) columns."""
    n = cols.shape[0]
    mean = cols.mean(axis=0)
    centred = cols - mean
    cov = centred.T @ centred / n  # (C, C)
    vals, vecs = np.linalg.eigh(cov)
    # directions without variance (a model against itself, a constant per-query margin)
    # come out of eigh as rounding noise: zero them so that those statistics stay exact
    vals = np.where(vals > _NULL_RTOL * max(float(vals.max(initial=0.0)), 0.0), vals, 0.0)
    root = vecs * np.sqrt(vals)  # (C, C): root @ root.T == cov
    z = rng.standard_normal((n_resamples, cols.shape[1]))
    return mean + (z @ root.T) / np.sqrt(n)


# --------------------------------------------------------------------------- intervals


_STD_NORMAL = NormalDist()


def _bca_levels(frac: float, a_hat: float, alpha: float) -> tuple[float, float]:
    """BCa's adjusted quantile levels (Efron & Tibshirani, eq. 14.10) from the share of
    resamples below the estimate and the acceleration; NaN where they are undefined."""
    if not (0.0 < frac < 1.0 and math.isfinite(a_hat)):
        return math.nan, math.nan
    z0 = _STD_NORMAL.inv_cdf(frac)
    out = []
    for z in (_STD_NORMAL.inv_cdf(alpha), -_STD_NORMAL.inv_cdf(alpha)):
        num = z0 + z
        den = 1.0 - a_hat * num
        out.append(_STD_NORMAL.cdf(z0 + num / den) if den != 0 else math.nan)
    return out[0], out[1]


def _intervals(
    theta: NDArray[np.float64],
    dist: NDArray[np.float64],
    jack: NDArray[np.float64] | None,
    confidence: float,
    method: str,
) -> list[Interval]:
    """One Interval per statistic: ``theta`` (S,) estimates, ``dist`` (R, S) their bootstrap
    distribution, ``jack`` (n, S) leave-one-out values (BCa only)."""
    alpha = (1.0 - confidence) / 2.0
    r = dist.shape[0]
    levels = np.tile([alpha, 1.0 - alpha], (theta.size, 1))  # (S, 2)
    methods = [method] * theta.size
    if method == "bca":
        assert jack is not None
        frac = ((dist < theta).sum(axis=0) + (dist <= theta).sum(axis=0)) / (2.0 * r)
        u = jack.mean(axis=0) - jack  # (n, S), scipy's U_i up to the factor (n - 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            a_hat = (u**3).sum(axis=0) / (6.0 * ((u**2).sum(axis=0)) ** 1.5)
        for i in range(theta.size):
            levels[i] = _bca_levels(float(frac[i]), float(a_hat[i]), alpha)
        bad = ~np.isfinite(levels).all(axis=1)
        # BCa fails (NaN) when the jackknife has no spread though the bootstrap has: take
        # the percentile interval of the same bootstrap distribution instead.
        levels[bad] = [alpha, 1.0 - alpha]
        for j in np.flatnonzero(bad):
            methods[j] = "percentile"
    ranked = np.sort(dist, axis=0)
    out = []
    spread = ranked[-1] - ranked[0]
    scale = np.maximum(1.0, np.max(np.abs(ranked), axis=0))
    for j in range(theta.size):
        est = float(theta[j])
        if spread[j] <= _DEGENERATE_RTOL * scale[j]:
            out.append(Interval(est, est, est, "degenerate"))
            continue
        # the 'linear' quantile of numpy (and of scipy.stats.bootstrap)
        lo, hi = np.quantile(ranked[:, j], levels[j])
        if methods[j] == "basic":
            lo, hi = 2 * est - hi, 2 * est - lo
        out.append(Interval(est, float(lo), float(hi), methods[j]))
    return out


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Evaluation:
    """Every model's metrics and every asked-for paired difference, from one resampling."""

    metrics: dict[str, dict[str, Interval]]  # model -> metric -> Interval
    diffs: dict[tuple[str, str], dict[str, Interval]]  # (a, b) -> metric -> a - b
    method: str  # the resolved method (an Interval may say "degenerate" or fall back)
    n: int  # test queries


def evaluate(
    truth: ArrayLike,
    preds: Mapping[str, ArrayLike],
    *,
    pairs: Sequence[tuple[str, str]] = (),
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
) -> Evaluation:
    """CIs of every metric of every model in ``preds`` ({name: (n,) predictions}) and of the
    paired differences ``metric(a) - metric(b)`` for each (a, b) in ``pairs``, all read off one
    resampling of the (n,) test queries (see the module docstring for the methods).

    Raises ValueError on bad arrays (naming the model) or an unknown pair member,
    ConfigError on bad options.
    """
    _check_options(n_resamples, confidence, method)
    t = _check_truth(truth)
    names = list(preds)
    for a, b in pairs:
        for k in (a, b):
            if k not in preds:
                raise ValueError(f"paired difference names {k!r}, which has no predictions")
    n_met = len(METRIC_TABLE)
    n = t.size
    # (n, K * n_met) per-query losses: column k * n_met + j is metric j of model k
    cols = np.empty((n, len(names) * n_met), dtype=np.float64)
    for k, name in enumerate(names):
        e = _errors(t, preds[name], name)
        for j, m in enumerate(METRIC_TABLE):
            cols[:, k * n_met + j] = m.loss(e)
    chosen = _resolve_method(method, n)
    rng = np.random.default_rng(seed)

    def stats_of(means: NDArray[np.float64]) -> NDArray[np.float64]:
        # (..., K * n_met) column means -> (..., S) statistics: every metric of every
        # model, then every pair's differences
        per_model = np.empty_like(means)
        for j, m in enumerate(METRIC_TABLE):
            per_model[..., j::n_met] = m.finish(means[..., j::n_met])
        parts = [per_model]
        for a, b in pairs:
            ia, ib = names.index(a) * n_met, names.index(b) * n_met
            parts.append(per_model[..., ia : ia + n_met] - per_model[..., ib : ib + n_met])
        return np.concatenate(parts, axis=-1)

    total = cols.sum(axis=0)
    theta = stats_of(total / n)
    jack = None
    if n == 1:  # nothing to resample: every interval is the point (degenerate)
        dist = np.repeat(theta[None, :], 2, axis=0)
        chosen = "percentile"
    else:
        if chosen == "normal":
            means = _normal_means(cols, n_resamples, rng)
        else:
            means = _exact_means(cols, n_resamples, rng)
        dist = stats_of(means)
        if chosen == "bca":
            jack = stats_of((total - cols) / (n - 1))  # (n, S) leave-one-out statistics
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ivs = _intervals(theta, dist, jack, confidence, chosen)
    metrics = {
        name: {m.name: ivs[k * n_met + j] for j, m in enumerate(METRIC_TABLE)}
        for k, name in enumerate(names)
    }
    base = len(names) * n_met
    diffs = {
        pair: {m.name: ivs[base + p * n_met + j] for j, m in enumerate(METRIC_TABLE)}
        for p, pair in enumerate(pairs)
    }
    return Evaluation(metrics=metrics, diffs=diffs, method=chosen, n=n)


def metric_cis(
    truth: ArrayLike,
    pred: ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
) -> dict[str, Interval]:
    """Bootstrap CIs of every metric (``{"rmse": Interval, "mae": Interval}``) of one model
    over its (n,) test queries; ``evaluate`` with one model. Same (n, seed) gives the same
    resampled queries for every model. Raises ValueError on bad arrays, ConfigError on bad
    options."""
    ev = evaluate(
        truth,
        {"pred": pred},
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )
    return ev.metrics["pred"]


def paired_diff_cis(
    truth: ArrayLike,
    pred_a: ArrayLike,
    pred_b: ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
) -> dict[str, Interval]:
    """Paired-bootstrap CIs of metric(a) - metric(b) over (n,) queries; ``evaluate`` with
    one pair. Both models are scored on the same resampled queries in every resample, so the
    between-query variance cancels. A negative upper bound means a is really better (lower
    error); see ``verdict``. Raises ValueError on bad arrays (either model), ConfigError on
    bad options."""
    ev = evaluate(
        truth,
        {"pred_a": pred_a, "pred_b": pred_b},
        pairs=[("pred_a", "pred_b")],
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )
    return ev.diffs[("pred_a", "pred_b")]


def verdict(interval: Interval) -> str:
    """Read a difference interval (a - b, lower is better): "better" if its upper bound is
    below 0, "worse" if its lower bound is above 0, else "no clear difference"."""
    if interval.high < 0:
        return "better"
    if interval.low > 0:
        return "worse"
    return "no clear difference"


# --------------------------------------------------------------------------- seeds


def seed_spread(values: ArrayLike) -> dict[str, float | int]:
    """Spread of one metric across training seeds: mean, std (ddof=1; 0 for one seed),
    min, max and n. Separate from the test-set CI. Raises ValueError on empty or non-finite."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise ValueError("seed_spread needs at least one value")
    if not np.isfinite(v).all():
        raise ValueError(f"seed_spread got non-finite values: {v.tolist()}")
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "n": int(v.size),
    }
