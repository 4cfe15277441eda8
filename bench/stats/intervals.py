"""Confidence intervals (BCa, percentile, basic) and p-values from a bootstrap distribution,
Holm's adjustment, and the verdict a difference interval is read as."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Bootstrap distributions whose range is below this (relative to max(1, |value|)) are
# degenerate: rounding noise of a constant statistic, not sampling variability.
DEGENERATE_RTOL = 1e-12
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


def bootstrap_intervals(
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
        if spread[j] <= DEGENERATE_RTOL * scale[j]:
            out.append(Interval(est, est, est, "degenerate"))
            continue
        # the 'linear' quantile of numpy (and of scipy.stats.bootstrap)
        lo, hi = np.quantile(ranked[:, j], levels[j])
        if methods[j] == "basic":
            lo, hi = 2 * est - hi, 2 * est - lo
        out.append(Interval(est, float(lo), float(hi), methods[j]))
    return out


def bootstrap_p_values(
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
        if np.ptp(dist[:, j]) <= DEGENERATE_RTOL * scale[j]:
            out[j] = 1.0 if abs(theta[j]) <= DEGENERATE_RTOL * scale[j] else 0.0
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
