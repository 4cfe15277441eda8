"""Per-model small multiples over the test queries: predicted vs actual
(``pred-vs-actual.png``) and the distribution of errors (``error-hist.png``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from bench import stats
from bench.report.context import ReportContext
from bench.report.style import Plot, new_figure, point
from bench.results import ModelRecord
from bench.runkey import RunKey

__all__ = [
    "MAX_PANELS",
    "SCATTER_POINTS",
    "error_hist_figure",
    "panel_models",
    "pred_vs_actual_figure",
]

MAX_PANELS = 12  # per-model small multiples (scatter, histograms)
SCATTER_POINTS = 4000  # points drawn per predicted-vs-actual panel (subsampled, fixed seed)


def panel_models(ctx: ReportContext) -> tuple[list[ModelRecord], str | None]:
    """Models for the small multiples: every ok model with predictions; the first seed of
    each model when there are more than ``MAX_PANELS``; at most ``MAX_PANELS``."""
    models = [m for m in ctx.ok if ctx.has_pred(m)]
    note = None
    if len(models) > MAX_PANELS:
        seen: set[RunKey] = set()
        firsts = []
        for m in models:
            if m.group not in seen:
                seen.add(m.group)
                firsts.append(m)
        if len(firsts) < len(models):
            note = "per-model figures show the first seed of each model"
        models = firsts
    if len(models) > MAX_PANELS:
        note = f"per-model figures show the first {MAX_PANELS} of {len(models)} models"
        models = models[:MAX_PANELS]
    return models, note


def _grid(n: int, panel: float, extra_h: float = 0.6) -> tuple[Figure, list[Any]]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = new_figure(panel * cols + 0.6, panel * rows + extra_h)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _grid_step(ctx: ReportContext) -> float:
    return ctx.step if ctx.step else (ctx.high - ctx.low) / 20


def pred_vs_actual_figure(ctx: ReportContext, models: list[ModelRecord], seed: int) -> Plot | None:
    """A jittered scatter per model of a seeded sample of queries, with the mean prediction
    per actual rating. ``data``: one row per drawn dot: key, query (sidecar row), actual,
    x (jittered actual), predicted."""
    if not models or ctx.frame is None:
        return None
    primary = stats.METRIC_TABLE[0]
    truth = ctx.truth
    step = _grid_step(ctx)
    rng = np.random.default_rng(seed)
    n = truth.shape[0]
    take = np.sort(rng.choice(n, size=min(n, SCATTER_POINTS), replace=False))
    jitter = rng.uniform(-0.32, 0.32, size=take.shape[0]) * step
    levels, inv = np.unique(truth, return_inverse=True)
    discrete = levels.shape[0] <= 40
    fig, axes = _grid(len(models), 3.0)
    lim = (ctx.low - 0.6 * step, ctx.high + 0.6 * step)
    frames = []
    for ax, m in zip(axes, models, strict=True):
        p = ctx.pred(m)
        ax.scatter(
            truth[take] + jitter,
            p[take],
            s=4,
            alpha=0.35,
            color=ctx.colors[m.key],
            linewidths=0,
            rasterized=True,
        )
        frames.append(
            pd.DataFrame(
                {
                    "key": m.key,
                    "query": take,
                    "actual": truth[take],
                    "x": truth[take] + jitter,
                    "predicted": p[take],
                }
            )
        )
        ax.plot(lim, lim, ls="--", color="0.4", lw=1)
        if discrete:
            means = np.bincount(inv, weights=p) / np.maximum(np.bincount(inv), 1)
            ax.plot(levels, means, "-o", color="black", ms=3.5, mfc="white", lw=1.2)
        ax.set_title(f"{m.key}\n{primary.label} {point(primary, truth, p):.3f}", fontsize=9)
        ax.set_xlim(lim)
        ax.set_ylim(lim)
        ax.grid(alpha=0.3)
    fig.supxlabel(f"actual rating ({ctx.unit}; jittered)")
    fig.supylabel(f"predicted rating ({ctx.unit})")
    shown = f"{take.shape[0]:,} of {n:,}" if take.shape[0] < n else f"all {n:,}"
    fig.suptitle(f"Predicted vs actual ({shown} test queries)")
    axes[0].legend(
        handles=[
            Line2D([], [], ls="--", color="0.4", label="y = x (perfect)"),
            Line2D(
                [],
                [],
                ls="-",
                marker="o",
                color="black",
                mfc="white",
                ms=3.5,
                label="mean prediction\nper actual rating",
            ),
        ],
        loc="upper left",
        fontsize=7,
        framealpha=0.9,
    )
    return Plot(fig, pd.concat(frames, ignore_index=True))


def error_hist_figure(ctx: ReportContext, models: list[ModelRecord]) -> Plot | None:
    """Histograms of predicted − actual on shared bins centred on multiples of the rating
    step (tails clipped into the end bins). ``data``: one row per bar: key, low, high
    (the bin's edges), count."""
    if not models or ctx.frame is None:
        return None
    truth = ctx.truth
    errs = {m.key: ctx.pred(m) - truth for m in models}
    step = _grid_step(ctx)
    big = max(float(np.quantile(np.abs(e), 0.999)) for e in errs.values())
    half = min(ctx.high - ctx.low, max(step, math.ceil(big / step) * step))
    edges = np.arange(-half - step / 2, half + step / 2 + 1e-9, step)  # 0 is a bin centre
    fig, axes = _grid(len(models), 3.0)
    frames = []
    for ax, m in zip(axes, models, strict=True):
        e = errs[m.key]
        counts, _, _ = ax.hist(
            np.clip(e, edges[0], edges[-1]),
            bins=edges,
            color=ctx.colors[m.key],
            alpha=0.85,
            edgecolor="white",
            linewidth=0.5,
        )
        frames.append(
            pd.DataFrame({"key": m.key, "low": edges[:-1], "high": edges[1:], "count": counts})
        )
        ax.axvline(0, color="0.2", ls="--", lw=1)
        ax.set_title(f"{m.key}\nmean {e.mean():+.2f}, sd {e.std():.2f}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.supxlabel(f"prediction error: predicted − actual ({ctx.unit})")
    fig.supylabel("test queries")
    fig.suptitle(f"Error distribution (shared bins of {step:g} {ctx.unit}; tails clipped)")
    return Plot(fig, pd.concat(frames, ignore_index=True))
