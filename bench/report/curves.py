"""Learning curves (``learning-curves[-N].png``): per epoch-trained model, validation
metrics and train loss per epoch, the kept epoch marked, seeds overlaid in one panel."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray

from bench import stats
from bench.report.context import ReportContext
from bench.report.style import Plot, new_figure, shade
from bench.results import ModelRecord
from bench.runkey import RunKey

__all__ = ["CURVES_PER_FIGURE", "learning_figures"]

CURVES_PER_FIGURE = 6  # learning-curve panels per PNG (2 rows x 3)
# per metric of METRIC_TABLE: line style and marker (size) of its validation curve
_CURVE_STYLES = (("-o", 3.0, 1.6), ("--s", 2.5, 1.2), ("-.^", 2.5, 1.2), (":D", 2.5, 1.2))


def _curve_groups(ctx: ReportContext) -> dict[RunKey, list[ModelRecord]]:
    groups: dict[RunKey, list[ModelRecord]] = {}
    for m in ctx.doc.models:
        if m.learning_curve:
            groups.setdefault(m.group, []).append(m)
    return groups


def _col(curve: list[dict[str, Any]], name: str) -> NDArray[np.float64]:
    return np.array(
        [np.nan if r.get(name) is None else float(r[name]) for r in curve], dtype=np.float64
    )


def learning_figures(ctx: ReportContext) -> list[Plot]:
    """One panel per learned model (seeds overlaid), up to ``CURVES_PER_FIGURE`` per figure.
    ``data``: one row per epoch of each drawn run: group, key, epoch, ``val_<metric>`` for
    every metric of ``METRIC_TABLE``, train_loss, best (the epoch marked as kept)."""
    groups = _curve_groups(ctx)
    labels = list(groups)
    primary = stats.METRIC_TABLE[0]
    figs: list[Plot] = []
    for page in range(0, len(labels), CURVES_PER_FIGURE):
        chunk = labels[page : page + CURVES_PER_FIGURE]
        cols = min(3, len(chunk))
        rows = math.ceil(len(chunk) / cols)
        fig = new_figure(4.0 * cols, 0.7 + 3.2 * rows)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax in axes[len(chunk) :]:
            ax.set_visible(False)
        frames: list[pd.DataFrame] = []
        for ax, label in zip(axes, chunk, strict=False):
            runs = groups[label]
            color = ctx.colors.get(runs[0].key, "0.2")
            ax2 = ax.twinx()
            any_val = False
            for i, m in enumerate(runs):
                curve = m.learning_curve or []
                tone = shade(color, i, len(runs))
                ep = _col(curve, "epoch")
                ep = np.where(np.isnan(ep), np.arange(1, len(curve) + 1), ep)
                vals = {
                    f"val_{mt.name}": _col(curve, f"val_{mt.name}") for mt in stats.METRIC_TABLE
                }
                vr = vals[f"val_{primary.name}"]
                tl = _col(curve, "train_loss")
                seed = m.key.seed if m.key.seed is not None else (m.seed or 0)
                best = None
                if np.isfinite(vr).any():
                    any_val = True
                    for j, (mt, (fmt, ms, lw)) in enumerate(
                        zip(stats.METRIC_TABLE, _CURVE_STYLES, strict=False)
                    ):
                        tag = f"seed {seed}" if j == 0 and len(runs) > 1 else None
                        ax.plot(
                            ep, vals[f"val_{mt.name}"], fmt, color=tone, ms=ms, lw=lw, label=tag
                        )
                    best = m.fit_info.get("best_epoch")
                    if best is None or best not in set(ep.tolist()):
                        best = ep[int(np.nanargmin(vr))]
                    k = int(np.flatnonzero(ep == best)[0])
                    ax.axvline(best, color=tone, lw=0.8, ls=":")
                    ax.plot([best], [vr[k]], marker="*", ms=13, color=tone, mec="black", mew=0.6)
                if np.isfinite(tl).any():
                    ax2.plot(ep, tl, ":", color=tone, lw=1.4, alpha=0.9)
                kept = np.zeros(ep.shape, dtype=bool) if best is None else ep == best
                frames.append(
                    pd.DataFrame(
                        {"group": label, "key": m.key, "epoch": ep, **vals}
                        | {"train_loss": tl, "best": kept}
                    )
                )
            ax.set_title(str(label), fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel(f"validation error ({ctx.unit})" if any_val else "")
            ax2.set_ylabel("train loss (MSE, model scale)", fontsize=8, color="0.35")
            ax2.tick_params(axis="y", labelsize=8, colors="0.35")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
            if len(runs) > 1:
                ax.legend(fontsize=7, loc="upper right", title="seeds", title_fontsize=7)
        fig.legend(
            handles=[
                *(
                    Line2D(
                        [],
                        [],
                        color="0.2",
                        ls=fmt[:-1],
                        marker=fmt[-1],
                        ms=ms,
                        label=f"validation {mt.label}",
                    )
                    for mt, (fmt, ms, _) in zip(stats.METRIC_TABLE, _CURVE_STYLES, strict=False)
                ),
                Line2D([], [], color="0.2", ls=":", label="train loss (right axis)"),
                Line2D(
                    [],
                    [],
                    color="0.2",
                    marker="*",
                    ms=11,
                    mec="black",
                    ls="",
                    label="best epoch (kept)",
                ),
            ],
            loc="outside lower center",
            ncols=4,
            fontsize=8,
            frameon=False,
        )
        fig.suptitle("Learning curves (colour = model; lighter shades = further seeds)")
        figs.append(Plot(fig, pd.concat(frames, ignore_index=True)))
    return figs
