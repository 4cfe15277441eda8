"""Where each model wins (``buckets.png`` and its tables): the primary metric by the user's
history length and by the target movie's training popularity, absolute and as the paired
difference to the reference, with percentile-bootstrap CIs per bucket."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from numpy.typing import NDArray
from tabulate import tabulate

from bench import stats
from bench.report.context import ReportContext
from bench.report.style import Plot, new_figure
from bench.results import ModelRecord
from bench.runkey import RunKey

__all__ = [
    "BUCKET_RESAMPLES",
    "HISTORY_EDGES",
    "MIN_BUCKET",
    "POPULARITY_EDGES",
    "BucketStats",
    "Buckets",
    "bucket_figure",
    "bucket_sets",
    "bucket_stats",
    "bucket_table",
    "bucketise",
]

BUCKET_RESAMPLES = 200  # enough for a figure, a small cost next to the run
MIN_BUCKET = 5  # buckets with fewer test queries are merged into their neighbour
HISTORY_EDGES = (0, 10, 20, 50, 100, 200, 500, 1000)  # lower bounds, history length (events)
POPULARITY_EDGES = (0, 1, 5, 20, 100, 500, 2000)  # lower bounds, training ratings of the movie
PRIMARY = stats.METRIC_TABLE[0]


@dataclass
class Buckets:
    title: str
    xlabel: str
    labels: list[str]  # (B,)
    index: NDArray[np.int64]  # (K,) bucket of each test query
    counts: NDArray[np.int64]  # (B,)


def bucketise(
    values: NDArray[np.int64], edges: Sequence[int], cold: bool
) -> tuple[list[str], NDArray[np.int64], NDArray[np.int64]]:
    """Bucket ``values`` by lower bounds ``edges``; drop empty buckets and merge buckets with
    fewer than ``MIN_BUCKET`` queries into the previous one."""
    lows = list(edges)
    idx = np.searchsorted(np.asarray(lows), values, side="right") - 1
    counts = np.bincount(idx, minlength=len(lows))
    # merge small buckets downward (into the previous non-empty one), then relabel
    bounds: list[list[int]] = []  # [lo, hi_exclusive]
    members: list[list[int]] = []
    for b, lo in enumerate(lows):
        hi = lows[b + 1] if b + 1 < len(lows) else None
        if counts[b] == 0:
            continue
        if bounds and (counts[b] < MIN_BUCKET or sum(counts[j] for j in members[-1]) < MIN_BUCKET):
            members[-1].append(b)
            bounds[-1][1] = -1 if hi is None else hi
        else:
            members.append([b])
            bounds.append([lo, -1 if hi is None else hi])
    remap = np.zeros(len(lows), dtype=np.int64)
    labels = []
    for new, (group, (lo, hi)) in enumerate(zip(members, bounds, strict=True)):
        remap[group] = new
        if hi == -1:
            text = f"{lo}+"
        elif hi - 1 == lo:
            text = f"{lo}"
        else:
            text = f"{lo}–{hi - 1}"
        if cold and lo == 0 and hi == 1:
            text = "0 (cold)"
        labels.append(text)
    new_idx = remap[idx]
    return labels, new_idx, np.bincount(new_idx, minlength=len(labels)).astype(np.int64)


def bucket_sets(ctx: ReportContext) -> list[Buckets]:
    assert ctx.data is not None
    out = []
    for title, xlabel, values, edges, cold in (
        (
            "by history length",
            "events in the user's history before the target",
            ctx.data.hist_len,
            HISTORY_EDGES,
            False,
        ),
        (
            "by movie popularity",
            "training ratings of the target movie (0 = cold item)",
            ctx.data.popularity,
            POPULARITY_EDGES,
            True,
        ),
    ):
        labels, idx, counts = bucketise(values, edges, cold)
        out.append(Buckets(title, xlabel, labels, idx, counts))
    return out


@dataclass
class BucketStats:
    metric: dict[RunKey, NDArray[np.float64]]  # model key -> (B, 3) estimate, low, high
    diff: dict[RunKey, NDArray[np.float64]]  # model key -> (B, 3) model − reference


def bucket_stats(
    ctx: ReportContext, b: Buckets, models: list[ModelRecord], seed: int
) -> BucketStats:
    """``PRIMARY`` with its CI per bucket and model, and its paired difference to the
    reference (NaN rows for empty buckets, or without a reference with predictions)."""
    truth = ctx.truth
    ref = ctx.ref_model
    kw: dict[str, Any] = {"n_resamples": BUCKET_RESAMPLES, "seed": seed, "method": "percentile"}
    rm: dict[RunKey, NDArray[np.float64]] = {}
    df: dict[RunKey, NDArray[np.float64]] = {}
    for m in models:
        p = ctx.pred(m)
        r = np.full((len(b.labels), 3), np.nan)
        d = np.full((len(b.labels), 3), np.nan)
        for j in range(len(b.labels)):
            sel = b.index == j
            if not sel.any():
                continue
            iv = stats.metric_cis(truth[sel], p[sel], **kw)[PRIMARY.name]
            r[j] = (iv.estimate, iv.low, iv.high)
            if ref is not None:
                if m.key == ref.key:
                    d[j] = 0.0
                else:
                    ref_p = ctx.pred(ref)[sel]
                    dv = stats.paired_diff_cis(truth[sel], p[sel], ref_p, **kw)[PRIMARY.name]
                    d[j] = (dv.estimate, dv.low, dv.high)
        rm[m.key] = r
        df[m.key] = d
    return BucketStats(rm, df)


def bucket_figure(
    ctx: ReportContext, sets: list[Buckets], bstats: list[BucketStats], models: list[ModelRecord]
) -> Plot:
    """Rows: ``PRIMARY`` per bucket, then (with a reference) the paired difference; one
    column per bucketing. ``data``: one row per drawn point: bucketing (its title), bucket,
    n, key, panel ("metric" | "difference"), estimate, low, high."""
    has_ref = ctx.ref_model is not None
    rows = 2 if has_ref else 1
    fig = new_figure(12, 0.9 + 3.4 * rows)
    axes = np.atleast_2d(fig.subplots(rows, 2, squeeze=False))
    width = 0.7
    off = (np.arange(len(models)) - (len(models) - 1) / 2) * (width / max(len(models), 1))
    drawn: list[pd.DataFrame] = []
    for col, (b, st) in enumerate(zip(sets, bstats, strict=True)):
        x = np.arange(len(b.labels))
        ticks = [f"{lab}\nn={c:,}" for lab, c in zip(b.labels, b.counts, strict=True)]
        for row in range(rows):
            ax = axes[row, col]
            data = st.metric if row == 0 else st.diff
            for i, m in enumerate(models):
                v = data[m.key]
                if row == 1 and str(m.key) == ctx.reference:
                    continue
                yerr = np.vstack([v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]])
                bars = ax.errorbar(
                    x + off[i],
                    v[:, 0],
                    yerr=yerr,
                    fmt="-o",
                    color=ctx.colors[m.key],
                    ms=4,
                    lw=1.3,
                    capsize=2,
                    elinewidth=0.9,
                    label=str(m.key),
                )
                if len(models) > 6:  # keep the lines legible when the CI bars crowd
                    for part in bars[2]:
                        part.set_alpha(0.45)
                drawn.append(
                    pd.DataFrame(
                        {
                            "bucketing": b.title,
                            "bucket": b.labels,
                            "n": b.counts,
                            "key": m.key,
                            "panel": "metric" if row == 0 else "difference",
                            "estimate": v[:, 0],
                            "low": v[:, 1],
                            "high": v[:, 2],
                        }
                    )
                )
            ax.set_xticks(x, ticks, fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(f"{PRIMARY.label} {b.title}")
                ax.set_ylabel(f"{PRIMARY.label} ({ctx.unit}), 95% CI")
            else:
                ax.axhline(0, color="0.3", ls="--", lw=1)
                ax.set_title(f"{PRIMARY.label} − {ctx.reference} {b.title} (< 0: model wins)")
                ax.set_ylabel(f"Δ{PRIMARY.label} ({ctx.unit}), paired 95% CI")
            if row == rows - 1:
                ax.set_xlabel(b.xlabel)
    handles = [
        Line2D([], [], color=ctx.colors[m.key], marker="o", ms=4, label=str(m.key)) for m in models
    ]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(models), 6),
        fontsize=8,
        frameon=False,
    )
    return Plot(fig, pd.concat(drawn, ignore_index=True))


def bucket_table(b: Buckets, st: BucketStats, models: list[ModelRecord]) -> str:
    """Markdown: ``PRIMARY`` per bucket (rows) and model (columns), the best in bold."""
    names = [str(m.key) for m in models]
    head = [b.title.removeprefix("by ").capitalize(), "n", *names, "best"]
    body = []
    for j, lab in enumerate(b.labels):
        vals = {
            str(m.key): st.metric[m.key][j, 0]
            for m in models
            if np.isfinite(st.metric[m.key][j, 0])
        }
        best = min(vals, key=vals.__getitem__) if vals else None
        cells = [
            "–" if k not in vals else (f"**{vals[k]:.3f}**" if k == best else f"{vals[k]:.3f}")
            for k in names
        ]
        body.append([lab, f"{int(b.counts[j]):,}", *cells, best or "–"])
    return tabulate(body, headers=head, tablefmt="github", disable_numparse=True)
