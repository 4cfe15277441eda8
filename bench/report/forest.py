"""Forest plots: each model's metrics with their CIs and its paired difference to the
reference (``forest.png``), and one metric per model across runs (``bench compare``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from bench.compare import PRIMARY, VERDICT_STYLES, Comparison
from bench.fileio import atomic_write
from bench.report.context import ReportContext
from bench.report.style import (
    DPI,
    RUN_MARKERS,
    Plot,
    display_name,
    estimate,
    metric_marks,
    model_colors,
    new_figure,
    unit,
)
from bench.results import ModelRecord, ResultsDoc, read_results
from bench.runkey import RunKey

__all__ = ["compare_figure", "compare_plot", "forest_figure"]


def _ci_point(
    ax: Any, e: float, lo: float, hi: float, y: float, marker: str, color: Any, face: Any
) -> None:
    """One estimate with its CI as a horizontal error bar (``face`` fills the marker)."""
    ax.errorbar(
        e, y, xerr=[[e - lo], [hi - e]], fmt=marker, color=color, mfc=face, ms=6, capsize=3, lw=1.5
    )


def forest_figure(ctx: ReportContext) -> Plot | None:
    """Metrics with CIs per model (best ``PRIMARY`` on top) | paired difference to the
    reference. ``data``: one row per drawn interval: key, panel ("metric" | "difference"),
    metric, estimate, low, high, y (the row), verdict (differences)."""
    models = sorted(ctx.ok, key=lambda m: m.metrics[PRIMARY.name]["estimate"])
    if not models:
        return None
    n = len(models)
    fig = new_figure(11.5, 1.6 + 0.42 * n)
    ax_abs, ax_diff = fig.subplots(1, 2, sharey=True, width_ratios=[1.1, 1])
    ys = np.arange(n)[::-1].astype(float)
    ref = ctx.reference
    marks = metric_marks()
    rows: list[dict[str, Any]] = []
    for y, m in zip(ys, models, strict=True):
        c = ctx.colors[m.key]
        for metric, dy, marker, filled in marks:
            iv = estimate(m.metrics.get(metric.name))
            if iv is None:
                continue
            _ci_point(ax_abs, *iv, y + dy, marker, c, c if filled else "white")
            rows.append(_row(m, "metric", metric.name, iv, y + dy, None))
        if str(m.key) == ref:
            ax_diff.plot([0], [y], marker="|", color=c, ms=12, mew=2)
            ax_diff.annotate(
                "reference",
                (0, y),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                color="0.3",
            )
            continue
        for metric, dy, marker, filled in marks:
            d = m.vs_reference.get(metric.name)
            iv = estimate(d)
            if iv is None:
                continue
            _ci_point(ax_diff, *iv, y + dy, marker, c, c if filled else "white")
            v = (d or {}).get("verdict")
            rows.append(_row(m, "difference", metric.name, iv, y + dy, v))
            if v:
                style = VERDICT_STYLES.get(v)
                ax_diff.annotate(
                    f"{metric.label} {style.figure if style else v}",
                    (1.0, y + dy),
                    xycoords=("axes fraction", "data"),
                    xytext=(-4, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=7.5,
                    color=(style and style.color) or "0.45",
                    fontweight="bold" if style and style.color else None,
                )
    ax_abs.set_yticks(ys, [display_name(m.key, ref) for m in models])
    ax_abs.set_ylim(-0.7, n - 0.3)
    ax_abs.set_xlabel(f"error ({ctx.unit}), 95% bootstrap CI")
    names = " and ".join(metric.label for metric, *_ in marks)
    ax_abs.set_title(f"{names} per model (sorted by {PRIMARY.label}, best on top)")
    ax_abs.grid(axis="x", alpha=0.3)
    ax_abs.legend(
        handles=[
            Line2D(
                [],
                [],
                marker=marker,
                color="0.2",
                ls="",
                label=metric.label,
                mfc=None if filled else "white",
            )
            for metric, _, marker, filled in marks
        ],
        loc="best",
        fontsize=8,
    )
    ax_diff.axvline(0, color="0.3", lw=1, ls="--")
    ax_diff.set_xlabel(f"model − {ref or 'reference'} ({ctx.unit}); < 0 is better")
    ax_diff.set_title(f"Paired difference to {ref or 'the reference'}, with verdicts")
    ax_diff.grid(axis="x", alpha=0.3)
    lo, hi = ax_diff.get_xlim()
    span = hi - lo
    ax_diff.set_xlim(lo, hi + 0.3 * span)  # room for the verdict labels
    ax_diff.tick_params(axis="y", left=False)
    return Plot(fig, pd.DataFrame(rows, columns=_COLUMNS))


_COLUMNS = ["key", "panel", "metric", "estimate", "low", "high", "y", "verdict"]


def _row(
    m: ModelRecord,
    panel: str,
    metric: str,
    iv: tuple[float, float, float],
    y: float,
    verdict: str | None,
) -> dict[str, Any]:
    return dict(zip(_COLUMNS, (m.key, panel, metric, *iv, y, verdict), strict=True))


def compare_plot(docs: Sequence[ResultsDoc], comparison: Comparison) -> Plot:
    """Per-model ``PRIMARY`` with 95% CIs in each run (marker = run), labelled with the
    paired cross-run verdicts of ``comparison``. ``data``: one row per drawn interval:
    run, key, estimate, low, high, y; then one row per label: run, key, tag."""
    names = [f"#{i + 1}" for i in range(len(docs))] if len(docs) > 1 else [docs[0].path.stem]
    keys: list[RunKey] = list(dict.fromkeys(m.key for d in docs for m in d.models))
    colors = model_colors(keys)

    def rank(key: RunKey) -> tuple[int, float]:
        """Sort by the metric in the first run that scored the model."""
        for i, d in enumerate(docs):
            m = d.model(key)
            if m is not None and m.scored:
                return i, float(m.metrics[PRIMARY.name]["estimate"])
        return len(docs), 0.0

    keys.sort(key=rank)
    metric_unit = unit(docs[0].scale[1])
    n, r = len(keys), len(docs)
    fig = new_figure(10.5, 1.8 + 0.45 * n * max(1.0, r / 2))
    ax = fig.subplots()
    ys = np.arange(n)[::-1].astype(float)
    offs = (np.arange(r) - (r - 1) / 2) * (0.6 / max(r, 1))
    verdicts = {(c.key, c.other_run): c.diff for c in comparison.cross}
    rows: list[dict[str, Any]] = []
    for y, key in zip(ys, keys, strict=True):
        for i, (name, d) in enumerate(zip(names, docs, strict=True)):
            m = d.model(key)
            iv = estimate((m.metrics if m else {}).get(PRIMARY.name))
            if iv is None:
                continue
            e, lo, hi = iv
            ax.errorbar(
                e,
                y - offs[i],
                xerr=[[e - lo], [hi - e]],
                fmt=RUN_MARKERS[i % len(RUN_MARKERS)],
                color=colors[key],
                mfc=colors[key] if i == 0 else "white",
                ms=6,
                capsize=3,
                lw=1.4,
            )
            rows.append({"run": name, "key": key, "estimate": e, "low": lo, "high": hi, "y": y})
        tags: list[tuple[str, str, str]] = []  # (run, label, colour)
        for i, (name, d) in enumerate(zip(names, docs, strict=True)):
            m = d.model(key)
            if m is not None and not m.finished:
                tags.append((name, f"{name}: {m.status}", "#cf222e"))
                continue
            dv = verdicts.get((key, name)) if i > 0 else None
            if dv and dv.get("verdict"):
                style = VERDICT_STYLES.get(dv["verdict"])
                text = style.figure if style else dv["verdict"]
                color = (style and style.color) or "0.35"
                tags.append((name, f"{name}: {text} ({dv['estimate']:+.3f})", color))
        for j, (_, text, color) in enumerate(reversed(tags)):
            ax.annotate(
                text,
                (1.0, y),
                xycoords=("axes fraction", "data"),
                xytext=(-4, 9 * j - 4.5 * (len(tags) - 1)),
                textcoords="offset points",
                ha="right",
                va="center",
                fontsize=7.5,
                color=color,
            )
        rows += [{"run": run, "key": key, "tag": text} for run, text, _ in tags]
    ax.set_yticks(ys, [str(k) for k in keys])
    ax.set_ylim(-0.7, n - 0.3)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + (0.45 if r > 1 else 0.05) * (hi - lo))
    ax.set_xlabel(f"test {PRIMARY.label} ({metric_unit}), 95% bootstrap CI")
    ax.set_title(
        f"{PRIMARY.label} per model across runs · {docs[0].dataset.get('name')} · split "
        f"{docs[0].split_hash}"
        + (f"\nright: paired Δ{PRIMARY.label} vs #1 and verdict" if r > 1 else "")
    )
    ax.grid(axis="x", alpha=0.3)
    fig.legend(
        handles=[
            Line2D(
                [],
                [],
                marker=RUN_MARKERS[i % len(RUN_MARKERS)],
                color="0.25",
                ls="",
                mfc="0.25" if i == 0 else "white",
                label=f"{names[i]} = {docs[i].path.name}",
            )
            for i in range(r)
        ],
        loc="outside lower center",
        ncols=min(r, 3),
        fontsize=8,
        frameon=False,
    )
    return Plot(fig, pd.DataFrame(rows))


def compare_figure(
    paths: Sequence[Path], out_png: Path, *, comparison: Comparison | None = None
) -> Path:
    """``compare_plot`` of results files ``paths``, for ``bench compare``.

    ``comparison`` is a ``bench.compare.Comparison`` of the same ``paths`` (built when None).
    Written atomically; returns ``out_png``. Raises ``ResultsError`` when a file is
    unreadable or the runs are not comparable.
    """
    from bench.compare import build_comparison

    paths = [Path(p) for p in paths]
    docs = [read_results(p, predictions=False) for p in paths]
    if comparison is None:
        comparison = build_comparison(paths)
    fig = compare_plot(docs, comparison).figure
    out_png = Path(out_png)
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return out_png
