"""What every report figure shares: sizes, the colour of each model, markers per metric,
the Agg-backed figure factory, and ``Plot`` (a figure with the frame of what it plots)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from numpy.typing import NDArray

from bench import stats
from bench.runkey import RunKey

__all__ = [
    "DPI",
    "METRIC_MARKERS",
    "RUN_MARKERS",
    "Plot",
    "display_name",
    "estimate",
    "metric_marks",
    "model_colors",
    "new_figure",
    "point",
    "save",
    "shade",
    "unit",
]

DPI = 120
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
METRIC_MARKERS = ("o", "s", "^", "D", "v")  # per metric of METRIC_TABLE, in its order


@dataclass(frozen=True)
class Plot:
    """A figure and the values it draws, one row per plotted element (the columns are
    documented by the function that made it): tests and readers check the numbers there."""

    figure: Figure
    data: pd.DataFrame


def _palette() -> list[str]:
    tab10 = [to_hex(c) for c in colormaps["tab10"].colors]  # type: ignore[attr-defined]
    tab20 = [to_hex(c) for c in colormaps["tab20"].colors]  # type: ignore[attr-defined]
    return tab10 + tab20[1::2] + [to_hex(c) for c in colormaps["Dark2"].colors]  # type: ignore[attr-defined]


def model_colors(keys: Sequence[RunKey]) -> dict[RunKey, str]:
    """Key -> hex colour. Colours go to seed groups (``RunKey.group``: the model on its
    embedding) in order of first appearance in ``keys``: tab10, then the light tab20
    shades, then Dark2, then repeating. The mapping depends only on that order, so every
    figure of a report (and a report rebuilt from the same file) uses the same colour for
    the same model, and its seeds share it."""
    pal = _palette()
    by_group: dict[RunKey, str] = {}
    out: dict[RunKey, str] = {}
    for k in keys:
        if k.group not in by_group:
            by_group[k.group] = pal[len(by_group) % len(pal)]
        out[k] = by_group[k.group]
    return out


def shade(color: str, i: int, n: int) -> str:
    """The i-th of n shades of ``color`` (0 = the colour itself, later ones lighter)."""
    if n <= 1 or i == 0:
        return color
    t = 0.55 * i / (n - 1)
    r, g, b = to_rgb(color)
    return to_hex((r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t))


def metric_marks() -> list[tuple[stats.Metric, float, str, bool]]:
    """Per metric of ``METRIC_TABLE``: (metric, vertical offset in a model's row, marker,
    filled). RMSE: filled circles above the row's centre; MAE: open squares below."""
    n = len(stats.METRIC_TABLE)
    offsets = (np.arange(n) - (n - 1) / 2) * -(0.3 if n <= 2 else 0.6 / (n - 1))
    return [
        (m, float(dy), METRIC_MARKERS[j % len(METRIC_MARKERS)], j == 0)
        for j, (m, dy) in enumerate(zip(stats.METRIC_TABLE, offsets, strict=True))
    ]


def point(metric: stats.Metric, truth: NDArray[np.float64], pred: NDArray[np.float64]) -> float:
    """``metric`` pooled over the (n,) queries: ``finish(mean(loss(pred - truth)))``."""
    return float(metric.finish(np.asarray(np.mean(metric.loss(pred - truth)))))


def unit(high: float) -> str:
    return "stars" if high <= 5 else "rating points"


def new_figure(width: float, height: float) -> Figure:
    """A figure on its own Agg canvas (never pyplot: headless, no global state)."""
    fig = Figure(figsize=(min(width, 12.0), min(height, 8.0)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI)


def estimate(d: dict[str, Any] | None) -> tuple[float, float, float] | None:
    """(estimate, low, high) of an interval record; a missing bound is the estimate."""
    if not d or d.get("estimate") is None:
        return None
    low = d.get("low")
    high = d.get("high")
    e = float(d["estimate"])
    return e, float(low if low is not None else e), float(high if high is not None else e)


def display_name(key: RunKey, reference: str | None) -> str:
    return f"{key} (reference)" if str(key) == reference else str(key)
