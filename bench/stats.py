"""Test-set statistics: pooled RMSE/MAE, their bootstrap CIs, paired differences, seed spread.

Decisions (see DESIGN.md, Statistics):

- Metrics are pooled over test queries (one per user) on the original rating scale.
- CIs resample test queries with ``scipy.stats.bootstrap``. The bootstrap resamples
  *query indices* (one-sample bootstrap of ``arange(n)``) and the statistic gathers the
  per-query errors at those indices, computing both metrics in one vectorised call. The
  resamples therefore depend only on ``(n, n_resamples, seed)``: every model scored on the
  same queries with the same seed is resampled identically, and a paired difference uses
  the same resampled queries for both models.
- Method ``"auto"``: BCa for ``n <= BCA_MAX_N`` (its jackknife costs O(n^2)), percentile
  above. Batches are sized so that resample arrays stay under ``RESAMPLE_BUDGET_BYTES``.
- A bootstrap distribution without spread (one query, all errors equal, a model against
  itself, a constant per-query margin) gives the point estimate as both bounds, with method
  ``"degenerate"``, instead of scipy's NaN.
- Seed-to-seed spread (training randomness) is reported by ``seed_spread``, separately.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import stats as sps

from bench.errors import ConfigError

__all__ = [
    "BCA_MAX_N",
    "METHODS",
    "METRICS",
    "RESAMPLE_BUDGET_BYTES",
    "Interval",
    "mae",
    "metric_cis",
    "paired_diff_cis",
    "resample_batch",
    "rmse",
    "seed_spread",
    "verdict",
]

METRICS = ("rmse", "mae")  # order of the rows of every vector-valued statistic below
METHODS = ("auto", "bca", "percentile", "basic")
BCA_MAX_N = 5_000  # "auto" uses BCa up to this many queries, percentile above
RESAMPLE_BUDGET_BYTES = 64 * 2**20  # target for live resample arrays per batch
# Live bytes per resampled element: scipy's int64 index draw + its int32 gather of our query
# indices, then those + one float64 error gather inside the statistic. Measured peaks with
# tracemalloc: ~70 MB at n = 200,000 (percentile), ~90 MB at n = 5,000 (BCa jackknife).
_BYTES_PER_ELEMENT = 16
# Bootstrap distributions whose range is below this (relative to max(1, |value|)) are
# degenerate: rounding noise of a constant statistic, not sampling variability.
_DEGENERATE_RTOL = 1e-12


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, on the rating scale."""

    estimate: float
    low: float
    high: float
    method: str  # "bca" | "percentile" | "basic" | "degenerate"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- validation


def _as_1d(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per test query), got shape {arr.shape}")
    return arr


def _errors(truth: ArrayLike, pred: ArrayLike, pred_name: str = "pred") -> NDArray[np.float64]:
    """Per-query errors ``pred - truth`` as float64, shape (n,); raises ValueError on bad input."""
    t = _as_1d("truth", truth)
    p = _as_1d(pred_name, pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: truth has shape {t.shape}, {pred_name} has {p.shape}")
    if t.size == 0:
        raise ValueError("no test queries: truth and predictions are empty")
    bad = ~np.isfinite(p)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{pred_name} has {int(bad.sum())} missing or non-finite predictions "
            f"(first at query {first}: {p[first]}); a missing prediction is never averaged away"
        )
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(f"truth has {int(bad.sum())} non-finite ratings")
    return p - t


def _check_options(n_resamples: int, confidence: float, method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown CI method {method!r}; known: {', '.join(METHODS)}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive integer, got {n_resamples}")


# --------------------------------------------------------------------------- point metrics


def rmse(truth: ArrayLike, pred: ArrayLike) -> float:
    """Pooled root mean squared error ``sqrt(mean((pred - truth)^2))`` over (n,) queries.

    Raises ValueError on a shape mismatch, empty input or any NaN/inf.
    """
    e = _errors(truth, pred)
    return float(np.sqrt(np.mean(e * e)))


def mae(truth: ArrayLike, pred: ArrayLike) -> float:
    """Pooled mean absolute error ``mean(|pred - truth|)`` over (n,) queries.

    Raises ValueError on a shape mismatch, empty input or any NaN/inf.
    """
    return float(np.mean(np.abs(_errors(truth, pred))))


# --------------------------------------------------------------------------- bootstrap core


def resample_batch(n: int, n_resamples: int) -> int:
    """Resamples per vectorised call so that one batch holds at most ~RESAMPLE_BUDGET_BYTES.

    A function of (n, n_resamples) only, never of the data: the random stream, hence the
    resampled queries, are then identical for every model scored on the same n queries.
    """
    return int(max(1, min(n_resamples, RESAMPLE_BUDGET_BYTES // (_BYTES_PER_ELEMENT * n))))


def _resolve_method(method: str, n: int) -> str:
    if method == "auto":
        return "bca" if n <= BCA_MAX_N else "percentile"
    return method


def _bootstrap(
    statistic: Callable[..., NDArray[np.float64]],
    estimates: NDArray[np.float64],
    n: int,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
    method: str,
) -> dict[str, Interval]:
    """Bootstrap CIs for a vector statistic of resampled query indices, one row per metric.

    ``statistic(idx, axis=-1)`` maps an integer index array (..., m) to (len(METRICS), ...);
    ``estimates`` (len(METRICS),) is its value on all n queries.
    """
    if n == 1:  # nothing to resample; scipy refuses one observation
        return {
            k: Interval(float(v), float(v), float(v), "degenerate")
            for k, v in zip(METRICS, estimates, strict=True)
        }
    chosen = _resolve_method(method, n)
    # Resample query indices: int32 keeps the gathered resamples half the size of int64.
    queries = np.arange(n, dtype=np.int32)
    kwargs = dict(
        statistic=statistic,
        vectorized=True,
        paired=False,  # one sample (the indices); pairing is done by gathering with them
        axis=-1,
        confidence_level=confidence,
        batch=resample_batch(n, n_resamples),
    )
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # Degenerate distributions make BCa warn and return NaN; handled below.
        warnings.simplefilter("ignore", sps.DegenerateDataWarning)
        res = sps.bootstrap(
            (queries,),
            n_resamples=n_resamples,
            method=chosen,
            rng=np.random.default_rng(seed),
            **kwargs,
        )
        low = np.array(res.confidence_interval.low, dtype=np.float64, ndmin=1)
        high = np.array(res.confidence_interval.high, dtype=np.float64, ndmin=1)
        methods = [chosen] * len(METRICS)
        if chosen == "bca" and (np.isnan(low).any() or np.isnan(high).any()):
            # BCa fails (NaN) when the jackknife has no spread though the bootstrap has:
            # fall back to percentile on the same bootstrap distribution (no new resamples).
            pct = sps.bootstrap(
                (queries,),
                n_resamples=0,
                bootstrap_result=res,
                method="percentile",
                rng=np.random.default_rng(seed),
                **kwargs,
            )
            for j in np.flatnonzero(np.isnan(low) | np.isnan(high)):
                low[j] = np.atleast_1d(pct.confidence_interval.low)[j]
                high[j] = np.atleast_1d(pct.confidence_interval.high)[j]
                methods[j] = "percentile"
    dist = np.atleast_2d(res.bootstrap_distribution)  # (len(METRICS), n_resamples)
    spread = np.ptp(dist, axis=-1)
    scale = np.maximum(1.0, np.max(np.abs(dist), axis=-1))
    out = {}
    for j, key in enumerate(METRICS):  # type: ignore[assignment]
        est = float(estimates[j])
        if spread[j] <= _DEGENERATE_RTOL * scale[j]:
            out[key] = Interval(est, est, est, "degenerate")
        else:
            out[key] = Interval(est, float(low[j]), float(high[j]), methods[j])
    return out


# --------------------------------------------------------------------------- public CIs


def metric_cis(
    truth: ArrayLike,
    pred: ArrayLike,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
) -> dict[str, Interval]:
    """Bootstrap CIs of pooled RMSE and MAE, resampling the (n,) test queries.

    Returns ``{"rmse": Interval, "mae": Interval}``. ``method`` is "auto" (BCa when
    n <= BCA_MAX_N, percentile otherwise), "bca", "percentile" or "basic". Same (n, seed)
    gives the same resampled queries for every model. Raises ValueError on bad arrays,
    ConfigError on bad options.
    """
    _check_options(n_resamples, confidence, method)
    e = _errors(truth, pred)
    sq = e * e  # (n,) float64
    ab = np.abs(e)  # (n,) float64

    def statistic(idx: NDArray[np.int32], axis: int = -1) -> NDArray[np.float64]:
        # idx (..., m) int32 query indices -> (2, ...): RMSE and MAE of each resample
        return np.stack([np.sqrt(sq[idx].mean(axis=axis)), ab[idx].mean(axis=axis)])

    estimates = np.array([np.sqrt(sq.mean()), ab.mean()])
    return _bootstrap(
        statistic,
        estimates,
        e.size,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )


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
    """Paired-bootstrap CIs of metric(a) - metric(b) for RMSE and MAE over (n,) queries.

    Both models are scored on the same resampled queries in every resample, so the
    between-query variance cancels. A negative upper bound means a is really better
    (lower error); see ``verdict``. Returns ``{"rmse": Interval, "mae": Interval}``.
    Raises ValueError on bad arrays (either model), ConfigError on bad options.
    """
    _check_options(n_resamples, confidence, method)
    ea = _errors(truth, pred_a, "pred_a")
    eb = _errors(truth, pred_b, "pred_b")
    sq_a = ea * ea  # (n,) float64
    sq_b = eb * eb  # (n,) float64
    d_abs = np.abs(ea) - np.abs(eb)  # (n,) float64; MAE is linear, so its diff is a mean

    def statistic(idx: NDArray[np.int32], axis: int = -1) -> NDArray[np.float64]:
        # idx (..., m) int32 query indices -> (2, ...): RMSE(a) - RMSE(b), MAE(a) - MAE(b)
        rmse_a = np.sqrt(sq_a[idx].mean(axis=axis))
        rmse_b = np.sqrt(sq_b[idx].mean(axis=axis))
        return np.stack([rmse_a - rmse_b, d_abs[idx].mean(axis=axis)])

    estimates = np.array([np.sqrt(sq_a.mean()) - np.sqrt(sq_b.mean()), d_abs.mean()])
    return _bootstrap(
        statistic,
        estimates,
        ea.size,
        n_resamples=n_resamples,
        confidence=confidence,
        seed=seed,
        method=method,
    )


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
