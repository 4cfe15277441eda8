"""Training-seed spread: a seed-averaged statistic's interval (test-set plus between-seed
variance) and the spread of one metric across seeds."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bench.stats.intervals import Interval


def with_seeds(
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
