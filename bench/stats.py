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
from dataclasses import asdict, dataclass, field
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
    "holm",
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
VERDICTS = {
    "better": "better",
    "worse": "worse",
    "no clear difference": "~",
    "too few queries": "too few queries",
}


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval, on the rating scale."""

    estimate: float
    low: float
    high: float
    method: str  # "bca" | "percentile" | "basic" | "normal" | "seeds+bootstrap" | "degenerate"

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
    sums: NDArray[np.float64],
    sizes: NDArray[np.float64] | None,
    n_resamples: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """(R, C) pooled column means over R multinomial resamples of the G units: ``sums``
    (G, C) are the units' column sums, ``sizes`` (G,) their query counts (None: one query
    each). Each batch draws (b, G) unit indices, counts them per resample (one ``bincount``
    per row, so the counts stay in cache) and applies the counts to every column at once."""
    g = sums.shape[0]
    batch = resample_batch(g, n_resamples)
    out = np.empty((n_resamples, sums.shape[1]), dtype=np.float64)
    counts = np.empty((batch, g), dtype=np.float64)
    for lo in range(0, n_resamples, batch):
        b = min(batch, n_resamples - lo)
        idx = rng.integers(0, g, size=(b, g), dtype=np.int32)  # (b, G) resampled units
        for i in range(b):
            counts[i] = np.bincount(idx[i], minlength=g)
        out[lo : lo + b] = counts[:b] @ sums
        if sizes is not None:
            out[lo : lo + b] /= (counts[:b] @ sizes)[:, None]
    if sizes is None:
        out /= g
    return out


def _normal_means(
    sums: NDArray[np.float64],
    sizes: NDArray[np.float64] | None,
    n_resamples: int,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """(R, C) draws of the Gaussian limit of the bootstrap distribution of the pooled
    column means: the units' mean sums (and mean size) are drawn as ``mean + N(0, Σ / G)``
    with Σ the plug-in (ddof=0) covariance over the G units, then divided (ratio means)."""
    g = sums.shape[0]
    cols = sums if sizes is None else np.column_stack([sums, sizes])
    mean = cols.mean(axis=0)
    centred = cols - mean
    cov = centred.T @ centred / g  # (C, C)
    vals, vecs = np.linalg.eigh(cov)
    # directions without variance (a model against itself, a constant per-query margin)
    # come out of eigh as rounding noise: zero them so that those statistics stay exact
    vals = np.where(vals > _NULL_RTOL * max(float(vals.max(initial=0.0)), 0.0), vals, 0.0)
    root = vecs * np.sqrt(vals)  # (C, C): root @ root.T == cov
    z = rng.standard_normal((n_resamples, cols.shape[1]))
    draws = mean + (z @ root.T) / np.sqrt(g)
    if sizes is None:
        return draws
    return draws[:, :-1] / draws[:, -1:]


def _p_values(
    theta: NDArray[np.float64], dist: NDArray[np.float64], method: str
) -> NDArray[np.float64]:
    """Two-sided p-values of "the statistic is 0" from its bootstrap distribution ``dist``
    (R, S): the share of resamples on the far side of 0, doubled, with the +1 of Davison &
    Hinkley (1997, eq. 4.11) for exact resamples; the Gaussian tail for "normal" draws.
    A distribution without spread gives 1 at 0 and 0 elsewhere."""
    r = dist.shape[0]
    sd = dist.std(axis=0)
    scale = np.maximum(1.0, np.abs(dist).max(axis=0))
    out = np.empty(theta.size, dtype=np.float64)
    for j in range(theta.size):
        if np.ptp(dist[:, j]) <= _DEGENERATE_RTOL * scale[j]:
            out[j] = 1.0 if abs(theta[j]) <= _DEGENERATE_RTOL * scale[j] else 0.0
        elif method == "normal":
            out[j] = 2.0 * _STD_NORMAL.cdf(-abs(theta[j]) / sd[j])
        else:
            below = (1 + int((dist[:, j] <= 0).sum())) / (r + 1)
            above = (1 + int((dist[:, j] >= 0).sum())) / (r + 1)
            out[j] = min(1.0, 2.0 * min(below, above))
    return out


def holm(p: ArrayLike) -> NDArray[np.float64]:
    """Holm's step-down adjustment of a family of p-values (Holm 1979): the i-th smallest
    becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``. Controls the family-wise error rate
    under any dependence between the tests."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    m = p.size
    stepped = np.minimum(1.0, (m - np.arange(m)) * p[order])
    out = np.empty_like(p)
    out[order] = np.maximum.accumulate(stepped)
    return out


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
        for bad_j in np.flatnonzero(bad):
            methods[int(bad_j)] = "percentile"
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

    metrics: dict[str, dict[str, Interval]]  # model or seed group -> metric -> Interval
    diffs: dict[tuple[str, str], dict[str, Interval]]  # (a, b) -> metric -> a - b
    method: str  # the resolved method (an Interval may say "degenerate" or fall back)
    n: int  # test queries
    n_units: int = 0  # resampled units: users when ``units`` was given, else queries
    p_values: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    p_adjusted: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # Holm
    verdicts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    design_effect: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> metric

    def difference(self, pair: tuple[str, str]) -> dict[str, dict[str, Any]]:
        """The JSON record of one paired difference: per metric its interval, p-value,
        Holm-adjusted p-value and verdict (what results files and compare tables carry)."""
        return {
            k: {
                **iv.to_dict(),
                "p_value": self.p_values[pair][k],
                "p_adjusted": self.p_adjusted[pair][k],
                "verdict": self.verdicts[pair][k],
            }
            for k, iv in self.diffs[pair].items()
        }


def _unit_sums(
    cols: NDArray[np.float64], units: ArrayLike | None
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
    """Per-unit column sums (G, C) and query counts (G,), or the columns themselves and None
    when every query is its own unit."""
    if units is None:
        return cols, None
    u = np.asarray(units)
    if u.shape != (cols.shape[0],):
        raise ValueError(f"units must have one entry per test query, got shape {u.shape}")
    _, code = np.unique(u, return_inverse=True)
    g = int(code.max()) + 1 if code.size else 0
    if g == cols.shape[0]:  # one query per unit: the plain bootstrap, without the ratio
        return cols, None
    sums = np.empty((g, cols.shape[1]), dtype=np.float64)
    for c in range(cols.shape[1]):
        sums[:, c] = np.bincount(code, weights=cols[:, c], minlength=g)
    return sums, np.bincount(code, minlength=g).astype(np.float64)


def _design_effects(
    cols: NDArray[np.float64], sums: NDArray[np.float64], sizes: NDArray[np.float64] | None
) -> NDArray[np.float64]:
    """(C,) variance of each pooled column mean under resampling of units over its variance
    under resampling of queries (Kish's design effect; 1 without clusters)."""
    n = cols.shape[0]
    if sizes is None:
        return np.ones(cols.shape[1])
    mean = cols.mean(axis=0)
    var_iid = cols.var(axis=0) / n
    resid = sums - sizes[:, None] * mean  # linearised ratio estimator
    var_unit = (resid**2).sum(axis=0) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var_iid > 0, var_unit / var_iid, 1.0)


def _with_seeds(
    theta: float, boot_sd: float, seed_sets: list[NDArray[np.float64]], confidence: float
) -> tuple[Interval, float]:
    """An interval and p-value for a seed-averaged statistic: the test-set variance (the
    bootstrap sd of the average) plus, for each side that has several seeds, the variance
    of the mean of its S seeds (``seed_sets``: each side's per-seed values), with
    Welch-Satterthwaite degrees of freedom for the t quantile."""
    from scipy import stats as sps  # only runs with several seeds import it

    parts = [float(v.var(ddof=1)) / v.size for v in seed_sets if v.size > 1]
    dfs = [v.size - 1 for v in seed_sets if v.size > 1]
    v_seed = sum(parts)
    v_test = boot_sd**2
    se = math.sqrt(v_test + v_seed)
    if se == 0.0:
        return Interval(theta, theta, theta, "degenerate"), (1.0 if theta == 0 else 0.0)
    den = sum(v**2 / d for v, d in zip(parts, dfs, strict=True))
    df = math.inf if den == 0.0 else (v_test + v_seed) ** 2 / den
    q = float(sps.t.ppf(0.5 + confidence / 2, df))
    p = float(2 * sps.t.sf(abs(theta) / se, df))
    return Interval(theta, theta - q * se, theta + q * se, "seeds+bootstrap"), p


def evaluate(
    truth: ArrayLike,
    preds: Mapping[str, ArrayLike],
    *,
    pairs: Sequence[tuple[str, str]] = (),
    units: ArrayLike | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
    min_units: int = 1,
) -> Evaluation:
    """CIs of every metric of every model in ``preds`` ({name: (n,) predictions}) and of the
    paired differences ``metric(a) - metric(b)`` for each (a, b) in ``pairs``, all read off one
    resampling of the test units (see the module docstring for the methods).

    - ``units`` (n,): the unit each query belongs to (its user). Units are resampled whole
      (a cluster bootstrap), as a user's several test targets are correlated; the design
      effect of each model's metrics is reported. None: every query is its own unit.
    - ``groups``: {name: [member, ...]} seeds of one model; the group's statistic is the
      mean over its members, its interval adds the between-seed variance (``_with_seeds``).
      A pair may name a group.
    - p-values of every pair are Holm-adjusted per metric across ``pairs`` (the family);
      ``verdicts`` read the adjusted p-value at 1 - ``confidence``, and say "too few
      queries" when there are fewer than ``min_units`` units.

    Raises ValueError on bad arrays (naming the model) or an unknown pair member,
    ConfigError on bad options.
    """
    _check_options(n_resamples, confidence, method)
    t = _check_truth(truth)
    names = list(preds)
    groups = {g: list(ms) for g, ms in (groups or {}).items()}
    for g, members in groups.items():
        if not members or any(m not in preds for m in members):
            raise ValueError(f"seed group {g!r} names models without predictions: {members}")
    for pair in pairs:
        for side in pair:
            if side not in preds and side not in groups:
                raise ValueError(f"paired difference names {side!r}, which has no predictions")
    n_met = len(METRIC_TABLE)
    n = t.size
    # (n, K * n_met) per-query losses: column k * n_met + j is metric j of model k
    cols = np.empty((n, len(names) * n_met), dtype=np.float64)
    for k, name in enumerate(names):
        e = _errors(t, preds[name], name)
        for j, m in enumerate(METRIC_TABLE):
            cols[:, k * n_met + j] = m.loss(e)
    sums, sizes = _unit_sums(cols, units)
    g = sums.shape[0]
    chosen = _resolve_method(method, g)
    rng = np.random.default_rng(seed)

    def member_stats(means: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(means)
        for j, m in enumerate(METRIC_TABLE):
            out[..., j::n_met] = m.finish(means[..., j::n_met])
        return out

    def block(per_model: NDArray[np.float64], key: str) -> NDArray[np.float64]:
        # (..., n_met) the statistics of a model, or the mean of a seed group's members
        if key in groups:
            idx = [names.index(m) * n_met for m in groups[key]]
            return np.mean([per_model[..., i : i + n_met] for i in idx], axis=0)
        i = names.index(key) * n_met
        return per_model[..., i : i + n_met]

    keys = names + list(groups)

    def stats_of(means: NDArray[np.float64]) -> NDArray[np.float64]:
        # (..., K * n_met) pooled column means -> (..., S) statistics: every metric of
        # every model and group, then every pair's differences
        per_model = member_stats(means)
        parts = [block(per_model, k) for k in keys]
        parts += [block(per_model, a) - block(per_model, b) for a, b in pairs]
        return np.concatenate(parts, axis=-1)

    total = sums.sum(axis=0)
    n_queries = float(n if sizes is None else sizes.sum())
    theta = stats_of(total / n_queries)
    jack = None
    if g == 1:  # nothing to resample: every interval is the point (degenerate)
        dist = np.repeat(theta[None, :], 2, axis=0)
        chosen = "percentile"
    else:
        draw = _normal_means if chosen == "normal" else _exact_means
        dist = stats_of(draw(sums, sizes, n_resamples, rng))
        if chosen == "bca":  # (G, S) leave-one-unit-out statistics
            if sizes is None:
                jack = stats_of((total - sums) / (n_queries - 1.0))
            else:
                jack = stats_of((total - sums) / (n_queries - sizes)[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ivs = _intervals(theta, dist, jack, confidence, chosen)
        p_all = _p_values(theta, dist, chosen)

    # seed groups: the test-set spread of the seed average plus the between-seed spread
    per_seed_full = member_stats(total / n_queries)
    boot_sd = dist.std(axis=0)
    n_keys = len(keys)
    for s_idx in range(dist.shape[1]):
        k_or_p = s_idx // n_met
        j = s_idx % n_met
        b: str | None
        if k_or_p < n_keys:
            a, b = keys[k_or_p], None
        else:
            a, b = pairs[k_or_p - n_keys]
        if a not in groups and (b is None or b not in groups):
            continue
        # each side's per-seed values of this statistic (metric j)
        sets = [
            np.array([block(per_seed_full, m)[j] for m in groups.get(side, [side])])
            for side in ([a] if b is None else [a, b])
        ]
        ivs[s_idx], p_all[s_idx] = _with_seeds(
            float(theta[s_idx]), float(boot_sd[s_idx]), sets, confidence
        )

    metrics = {
        key: {m.name: ivs[k * n_met + j] for j, m in enumerate(METRIC_TABLE)}
        for k, key in enumerate(keys)
    }
    base = n_keys * n_met
    diffs: dict[tuple[str, str], dict[str, Interval]] = {}
    p_values: dict[tuple[str, str], dict[str, float]] = {}
    for p_i, pair in enumerate(pairs):
        sl = range(base + p_i * n_met, base + (p_i + 1) * n_met)
        diffs[pair] = {m.name: ivs[i] for m, i in zip(METRIC_TABLE, sl, strict=True)}
        p_values[pair] = {m.name: float(p_all[i]) for m, i in zip(METRIC_TABLE, sl, strict=True)}
    p_adjusted: dict[tuple[str, str], dict[str, float]] = {pair: {} for pair in pairs}
    for m in METRIC_TABLE:
        adj = holm([p_values[pair][m.name] for pair in pairs])
        for pair, v in zip(pairs, adj, strict=True):
            p_adjusted[pair][m.name] = float(v)
    alpha = 1.0 - confidence
    verdicts = {
        pair: {
            k: verdict(diffs[pair][k], p_adjusted[pair][k], alpha=alpha, enough=g >= min_units)
            for k in METRICS
        }
        for pair in pairs
    }
    deff = _design_effects(cols, sums, sizes)
    design_effect = {
        name: {m.name: float(deff[k * n_met + j]) for j, m in enumerate(METRIC_TABLE)}
        for k, name in enumerate(names)
    }
    return Evaluation(
        metrics=metrics,
        diffs=diffs,
        method=chosen,
        n=n,
        n_units=g,
        p_values=p_values,
        p_adjusted=p_adjusted,
        verdicts=verdicts,
        design_effect=design_effect,
    )


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


def verdict(
    interval: Interval,
    p_adjusted: float | None = None,
    *,
    alpha: float = 0.05,
    enough: bool = True,
) -> str:
    """Read a difference (a - b, lower is better). Without enough test units: "too few
    queries". With a (multiplicity-adjusted) p-value: "better" or "worse" by the sign of the
    estimate when it is below ``alpha``. Without one, the interval alone: "better" if its
    upper bound is below 0, "worse" if its lower bound is above 0. Else "no clear
    difference"."""
    if not enough:
        return "too few queries"
    if p_adjusted is not None:
        if p_adjusted < alpha and interval.estimate != 0:
            return "better" if interval.estimate < 0 else "worse"
        return "no clear difference"
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
