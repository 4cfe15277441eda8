"""The resampling engine: the resampled units' column sums, and the (R, C) pooled column
means drawn from them, exactly (multinomial counts) or from the Gaussian limit.

The resamples depend only on ``(units, n_resamples, seed)``, never on the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bench.errors import ConfigError

METHODS = ("auto", "bca", "percentile", "basic", "normal")
BCA_MAX_N = 5_000  # "auto" uses BCa up to this many queries
EXACT_MAX_N = 50_000  # "auto" resamples exactly up to this many queries, normal above
RESAMPLE_BUDGET_BYTES = 64 * 2**20  # target for live resample arrays per batch
# Live bytes per resampled element: the int32 draws and the float64 counts.
_BYTES_PER_ELEMENT = 12
# Covariance eigenvalues below this fraction of the largest are null directions ("normal").
_NULL_RTOL = 1e-10


@dataclass(frozen=True)
class UnitSums:
    """The per-query loss columns summed per resampled unit (a user, or each query)."""

    sums: NDArray[np.float64]  # (G, C) column sums of each unit
    sizes: NDArray[np.float64] | None  # (G,) queries of each unit; None: one query each


def check_options(n_resamples: int, confidence: float, method: str) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown CI method {method!r}; known: {', '.join(METHODS)}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), got {confidence}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ConfigError(f"n_resamples must be a positive integer, got {n_resamples}")


def resample_batch(n: int, n_resamples: int) -> int:
    """Exact resamples per batch so that one batch holds at most ~RESAMPLE_BUDGET_BYTES.

    A function of (n, n_resamples) only, never of the data: the random stream, hence the
    resampled queries, are then identical for every model scored on the same n queries.
    """
    return int(max(1, min(n_resamples, RESAMPLE_BUDGET_BYTES // (_BYTES_PER_ELEMENT * n))))


def resolve_method(method: str, n: int) -> str:
    if method == "auto":
        if n <= BCA_MAX_N:
            return "bca"
        return "percentile" if n <= EXACT_MAX_N else "normal"
    return method


def exact_means(units: UnitSums, n_resamples: int, rng: np.random.Generator) -> NDArray[np.float64]:
    """(R, C) pooled column means over R multinomial resamples of the G units: ``sums``
    (G, C) are the units' column sums, ``sizes`` (G,) their query counts (None: one query
    each). Each batch draws (b, G) unit indices, counts them per resample (one ``bincount``
    per row, so the counts stay in cache) and applies the counts to every column at once."""
    sums, sizes = units.sums, units.sizes
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


def normal_means(
    units: UnitSums, n_resamples: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """(R, C) draws of the Gaussian limit of the bootstrap distribution of the pooled
    column means: the units' mean sums (and mean size) are drawn as ``mean + N(0, Σ / G)``
    with Σ the plug-in (ddof=0) covariance over the G units, then divided (ratio means)."""
    sums, sizes = units.sums, units.sizes
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


def unit_sums(cols: NDArray[np.float64], units: ArrayLike | None) -> UnitSums:
    """Per-unit column sums (G, C) and query counts (G,), or the columns themselves and None
    when every query is its own unit."""
    if units is None:
        return UnitSums(cols, None)
    u = np.asarray(units)
    if u.shape != (cols.shape[0],):
        raise ValueError(f"units must have one entry per test query, got shape {u.shape}")
    _, code = np.unique(u, return_inverse=True)
    g = int(code.max()) + 1 if code.size else 0
    if g == cols.shape[0]:  # one query per unit: the plain bootstrap, without the ratio
        return UnitSums(cols, None)
    sums = np.empty((g, cols.shape[1]), dtype=np.float64)
    for c in range(cols.shape[1]):
        sums[:, c] = np.bincount(code, weights=cols[:, c], minlength=g)
    return UnitSums(sums, np.bincount(code, minlength=g).astype(np.float64))


def design_effects(cols: NDArray[np.float64], units: UnitSums) -> NDArray[np.float64]:
    """(C,) variance of each pooled column mean under resampling of units over its variance
    under resampling of queries (Kish's design effect; 1 without clusters)."""
    n = cols.shape[0]
    sums, sizes = units.sums, units.sizes
    if sizes is None:
        return np.ones(cols.shape[1])
    mean = cols.mean(axis=0)
    var_iid = cols.var(axis=0) / n
    resid = sums - sizes[:, None] * mean  # linearised ratio estimator
    var_unit = (resid**2).sum(axis=0) / n**2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(var_iid > 0, var_unit / var_iid, 1.0)
