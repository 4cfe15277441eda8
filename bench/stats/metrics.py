"""The metric table (``finish(mean(loss(pred - truth)))`` per metric), the checks every
prediction array passes, and the point metrics ``rmse`` and ``mae``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bench._checks import flagged


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


def _as_1d(name: str, values: ArrayLike) -> NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one value per test query), got shape {arr.shape}")
    return arr


def check_truth(truth: ArrayLike) -> NDArray[np.float64]:
    t = _as_1d("truth", truth)
    if t.size == 0:
        raise ValueError("no test queries: truth and predictions are empty")
    bad = ~np.isfinite(t)
    if bad.any():
        raise ValueError(f"truth has {int(bad.sum())} non-finite ratings")
    return t


def errors(t: NDArray[np.float64], pred: ArrayLike, pred_name: str) -> NDArray[np.float64]:
    """Per-query errors ``pred - truth`` as float64, shape (n,); raises ValueError on bad input."""
    p = _as_1d(pred_name, pred)
    if t.shape != p.shape:
        raise ValueError(f"shape mismatch: truth has shape {t.shape}, {pred_name} has {p.shape}")
    if p.size == 0:
        raise ValueError("no test queries: truth and predictions are empty")
    bad = flagged(~np.isfinite(p))
    if bad:
        raise ValueError(
            f"{pred_name} has {bad.count} missing or non-finite predictions "
            f"(first at query {bad.first}: {p[bad.first]}); a missing prediction is never "
            "averaged away"
        )
    return p - t


def _point(metric: str, truth: ArrayLike, pred: ArrayLike) -> float:
    m = METRIC_TABLE[METRICS.index(metric)]
    e = errors(check_truth(truth), pred, "pred")
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
