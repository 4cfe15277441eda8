"""Reports from a results file: PNG figures plus a Markdown page (``report.md``) embedding them.

``write_report`` reads one results JSON (and its predictions sidecar when present) and writes a
folder with:

- ``forest.png``: RMSE and MAE per model with 95% bootstrap CIs (sorted by RMSE), and the
  paired difference to the reference model with its CI and verdict;
- ``learning-curves[-N].png``: per epoch-trained model, train loss and validation RMSE/MAE,
  best epoch marked, seeds (keys ``label@seed``) overlaid in one panel;
- ``pred-vs-actual.png`` and ``error-hist.png``: jittered predicted-vs-actual scatter with the
  mean prediction per actual rating, and error histograms on shared bins;
- ``buckets.png``: RMSE by history length and by the target movie's training popularity,
  absolute and as the paired difference to the reference;
- ``ablation.png``: model x embedding RMSE heat-map, when keys carry a ``/EMB`` suffix;
- the main table (``bench.compare``), per-bucket tables, prediction examples with titles,
  and a "what's missing" section.

Decisions:

- Figures are built on ``matplotlib.figure.Figure`` objects rendered by the Agg canvas, never
  through ``pyplot``: headless by construction, no global figure state to leak, and importing
  this module does not switch the backend of a notebook that imports it.
- One colour per model *label* (the key without ``@seed``), assigned in the order the models
  appear in the results file (``model_colors``): the same model has the same colour in every
  figure; seeds of one model share it (lighter shades when overlaid).
- History length and popularity need the data: it is reloaded from ``dataset.source`` (never
  downloaded here), the dataset and split hashes are checked against the results, and any
  failure becomes a note in the report, never an exception.
- Per-bucket CIs use ``bench.stats`` percentile bootstraps with ``BUCKET_RESAMPLES`` resamples:
  enough for a figure, a small cost next to the run.
- The report folder is built in a temp folder beside the destination and renamed into place;
  an existing folder is never overwritten (the report goes to ``NAME-2``, ``NAME-3``...).
"""

from __future__ import annotations

import datetime as dt
import errno
import math
import os
import re
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from numpy.typing import NDArray
from tabulate import tabulate

from bench import stats
from bench.results import atomic_write, load_results, read_predictions

__all__ = [
    "BUCKET_RESAMPLES",
    "KeyParts",
    "compare_figure",
    "model_colors",
    "parse_key",
    "write_report",
]

DPI = 120
MAX_PANELS = 12  # per-model small multiples (scatter, histograms)
CURVES_PER_FIGURE = 6  # learning-curve panels per PNG (2 rows x 3)
SCATTER_POINTS = 4000  # points drawn per predicted-vs-actual panel (subsampled, fixed seed)
BUCKET_RESAMPLES = 200
MIN_BUCKET = 5  # buckets with fewer test queries are merged into their neighbour
HISTORY_EDGES = (0, 10, 20, 50, 100, 200, 500, 1000)  # lower bounds, history length (events)
POPULARITY_EDGES = (0, 1, 5, 20, 100, 500, 2000)  # lower bounds, training ratings of the movie
RUN_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_VERDICT_TEXT = {"no clear difference": "~ (unclear)"}


# --------------------------------------------------------------------------- keys, colours


@dataclass(frozen=True)
class KeyParts:
    """A model key ``label[/EMB][@seed]`` taken apart."""

    key: str
    label: str  # the key without ``@seed`` (colour and learning-curve panel identity)
    base: str  # the label without ``/EMB``
    embedding: str | None
    seed: int | None


_SEED_RE = re.compile(r"^(?P<label>.+)@(?P<seed>-?\d+)$")


def parse_key(key: str) -> KeyParts:
    """Split a results model key. ``knn:k=20/genre@1`` -> label ``knn:k=20/genre``, base
    ``knn:k=20``, embedding ``genre``, seed 1. A ``/`` part that holds ``:`` or ``=`` is an
    option value, not an embedding."""
    m = _SEED_RE.match(key)
    label, seed = (m["label"], int(m["seed"])) if m else (key, None)
    base, emb = label, None
    if "/" in label:
        head, tail = label.rsplit("/", 1)
        if head and tail and not any(c in tail for c in ":=@"):
            base, emb = head, tail
    return KeyParts(key=key, label=label, base=base, embedding=emb, seed=seed)


def _palette() -> list[str]:
    tab10 = [to_hex(c) for c in colormaps["tab10"].colors]  # type: ignore[attr-defined]
    tab20 = [to_hex(c) for c in colormaps["tab20"].colors]  # type: ignore[attr-defined]
    return tab10 + tab20[1::2] + [to_hex(c) for c in colormaps["Dark2"].colors]  # type: ignore[attr-defined]


def model_colors(keys: Sequence[str]) -> dict[str, str]:
    """Key -> hex colour. Colours go to model labels (keys without ``@seed``) in order of first
    appearance in ``keys``: tab10, then the light tab20 shades, then Dark2, then repeating.
    The mapping depends only on that order, so every figure of a report (and a report
    rebuilt from the same file) uses the same colour for the same model."""
    pal = _palette()
    by_label: dict[str, str] = {}
    out: dict[str, str] = {}
    for k in keys:
        label = parse_key(k).label
        if label not in by_label:
            by_label[label] = pal[len(by_label) % len(pal)]
        out[k] = by_label[label]
    return out


def _shade(color: str, i: int, n: int) -> str:
    """The i-th of n shades of ``color`` (0 = the colour itself, later ones lighter)."""
    if n <= 1 or i == 0:
        return color
    t = 0.55 * i / (n - 1)
    r, g, b = to_rgb(color)
    return to_hex((r + (1 - r) * t, g + (1 - g) * t, b + (1 - b) * t))


# --------------------------------------------------------------------------- context


@dataclass
class _Data:
    """What the reloaded data adds, aligned row by row with the predictions sidecar."""

    hist_len: NDArray[np.int64]  # (K,) events before each test target
    popularity: NDArray[np.int64]  # (K,) training ratings of each target movie
    test_pos: NDArray[np.int64]  # (K,) row of each test target in ``item``/``rating``
    user_start: NDArray[np.int64]  # (K,) first row of each test user
    item_id: NDArray[np.int64]  # (N,) original movie id of every event
    rating: NDArray[np.float32]  # (N,) rating of every event
    timestamp: NDArray[np.int64]  # (N,) seconds
    titles: dict[int, str] | None


@dataclass
class _Ctx:
    path: Path
    doc: dict[str, Any]
    frame: pd.DataFrame | None
    low: float
    high: float
    step: float | None
    unit: str
    colors: dict[str, str]
    reference: str | None
    ok: list[dict[str, Any]]  # models with status ok and metrics
    data: _Data | None = None
    missing: list[str] = field(default_factory=list)

    def has_pred(self, key: str) -> bool:
        return self.frame is not None and f"pred:{key}" in self.frame.columns

    def pred(self, key: str) -> NDArray[np.float64]:
        assert self.frame is not None
        return self.frame[f"pred:{key}"].to_numpy(np.float64)

    @property
    def truth(self) -> NDArray[np.float64]:
        assert self.frame is not None
        return self.frame["truth"].to_numpy(np.float64)


def _unit(high: float) -> str:
    return "stars" if high <= 5 else "rating points"


def _describe_source(src: dict[str, Any]) -> str:
    kind = src.get("kind")
    if kind == "catalog":
        return f"catalog dataset '{src.get('dataset')}'"
    if kind == "file":
        return f"ratings file '{Path(str(src.get('ratings'))).name}'"
    if kind == "synthetic":
        return "synthetic generator"
    return "an unrecorded source"


def _find_file(name: str | None, results_path: Path) -> Path | None:
    if not name:
        return None
    p = Path(name)
    if p.exists() or p.is_absolute():
        return p
    beside = results_path.parent / p
    return beside if beside.exists() else p


def _reload(ctx: _Ctx, data_dir: Path | None) -> str | None:
    """Reload the data and split of the run into ``ctx.data``. Returns why not, or None."""
    from bench.loading import DataSource, load_source
    from bench.split import SplitParams, make_split

    doc = ctx.doc
    if ctx.frame is None:
        return "no predictions sidecar to align the data with"
    src = (doc.get("dataset") or {}).get("source") or {}
    kind = src.get("kind")
    scale = (ctx.low, ctx.high, ctx.step)
    if kind == "catalog":
        source = DataSource(
            dataset=src.get("dataset"), data_dir=data_dir, download=False, rating_scale=scale
        )
    elif kind == "file":
        source = DataSource(
            dataset=None,
            ratings=_find_file(src.get("ratings"), ctx.path),
            catalog=_find_file(src.get("catalog"), ctx.path),
            columns=dict(src.get("columns") or {}),
            rating_scale=scale,
        )
    elif kind == "synthetic":
        source = DataSource(dataset="synthetic", synthetic=dict(src.get("options") or {}))
    else:
        return "the results do not record where the data came from (dataset.source)"
    what = _describe_source(src)
    try:
        loaded = load_source(source)
    except Exception as e:  # a report never crashes on data it cannot get back
        hint = " (pass --data-dir)" if kind == "catalog" else ""
        return f"could not reload the {what}{hint}: {type(e).__name__}: {e}"
    inter = loaded.interactions
    if inter.hash != doc["dataset"].get("hash"):
        return (
            f"the {what} has changed since the run (data hash {inter.hash}, "
            f"results {doc['dataset'].get('hash')})"
        )
    try:
        split = make_split(inter, SplitParams(**doc["split"]["params"]))
    except Exception as e:
        return f"could not rebuild the split: {type(e).__name__}: {e}"
    if split.hash != doc["split"].get("hash"):
        return f"the rebuilt split {split.hash} differs from the run's {doc['split'].get('hash')}"
    users = inter.user_ids[split.test_user]
    movies = inter.item_ids[inter.item[split.test_pos]]
    frame = ctx.frame
    same = (
        len(frame) == len(users)
        and np.array_equal(frame["user_id"].to_numpy(np.int64), users)
        and np.array_equal(frame["movie_id"].to_numpy(np.int64), movies)
    )
    order = np.arange(len(users))
    if not same:
        keyed = pd.DataFrame({"user_id": users, "movie_id": movies, "row": order})
        m = frame[["user_id", "movie_id"]].merge(keyed, how="left", on=["user_id", "movie_id"])
        if len(m) != len(frame) or m["row"].isna().any():
            return "the predictions sidecar does not match the rebuilt split's test queries"
        order = m["row"].to_numpy(np.int64)
    test_pos = split.test_pos[order]
    start = inter.user_offsets[:-1][split.test_user[order]]
    fit_items = split.fit_store(inter).item
    counts = np.bincount(fit_items, minlength=inter.n_items).astype(np.int64)
    titles = loaded.catalog.titles_by_id() if loaded.catalog is not None else None
    ctx.data = _Data(
        hist_len=(test_pos - start).astype(np.int64),
        popularity=counts[inter.item[test_pos]],
        test_pos=test_pos.astype(np.int64),
        user_start=start.astype(np.int64),
        item_id=inter.item_ids[inter.item],
        rating=inter.rating,
        timestamp=inter.timestamp,
        titles=titles,
    )
    return None


def _context(results_path: Path) -> _Ctx:
    doc = load_results(results_path)
    notes: list[str] = []
    try:
        frame = read_predictions(results_path, doc)
    except Exception as e:
        frame = None
        notes.append(f"the predictions sidecar is unreadable ({e})")
    sc = doc["dataset"].get("scale") or {}
    low, high = float(sc.get("low", 0.5)), float(sc.get("high", 5.0))
    step = sc.get("step")
    keys = [m["key"] for m in doc["models"]]
    ok = [m for m in doc["models"] if m.get("status") == "ok" and m.get("metrics")]
    return _Ctx(
        path=results_path,
        doc=doc,
        frame=frame,
        low=low,
        high=high,
        step=None if step is None else float(step),
        unit=_unit(high),
        colors=model_colors(keys),
        reference=(doc.get("statistics") or {}).get("reference"),
        ok=ok,
        missing=notes,
    )


# --------------------------------------------------------------------------- figure helpers


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(min(width, 12.0), min(height, 8.0)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: Path) -> None:
    fig.savefig(path, format="png", dpi=DPI)


def _est(d: dict[str, Any] | None) -> tuple[float, float, float] | None:
    if not d or d.get("estimate") is None:
        return None
    low = d.get("low")
    high = d.get("high")
    e = float(d["estimate"])
    return e, float(low if low is not None else e), float(high if high is not None else e)


def _display_name(key: str, reference: str | None) -> str:
    return f"{key} (reference)" if key == reference else key


# --------------------------------------------------------------------------- forest


def _ci_point(
    ax: Any, e: float, lo: float, hi: float, y: float, metric: str, color: Any, face: Any
) -> None:
    """One estimate with its CI as a horizontal error bar: circles for RMSE, squares for MAE
    (filled with ``face``)."""
    ax.errorbar(
        e,
        y,
        xerr=[[e - lo], [hi - e]],
        fmt="o" if metric == "rmse" else "s",
        color=color,
        mfc=face,
        ms=6,
        capsize=3,
        lw=1.5,
    )


def forest_figure(ctx: _Ctx) -> Figure | None:
    """RMSE/MAE with CIs per model (best on top) | paired difference to the reference."""
    models = sorted(ctx.ok, key=lambda m: m["metrics"]["rmse"]["estimate"])
    if not models:
        return None
    n = len(models)
    fig = _figure(11.5, 1.6 + 0.42 * n)
    ax_abs, ax_diff = fig.subplots(1, 2, sharey=True, width_ratios=[1.1, 1])
    ys = np.arange(n)[::-1].astype(float)
    ref = ctx.reference
    verdict_color = {"better": "#1a7f37", "worse": "#cf222e"}
    for y, m in zip(ys, models, strict=True):
        c = ctx.colors[m["key"]]
        for metric, dy, face in (("rmse", 0.15, c), ("mae", -0.15, "white")):
            iv = _est(m["metrics"].get(metric))
            if iv is None:
                continue
            e, lo, hi = iv
            _ci_point(ax_abs, e, lo, hi, y + dy, metric, c, face)
        if m["key"] == ref:
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
        vs = m.get("vs_reference") or {}
        for metric, dy, face in (("rmse", 0.15, c), ("mae", -0.15, "white")):
            iv = _est(vs.get(metric))
            if iv is None:
                continue
            e, lo, hi = iv
            _ci_point(ax_diff, e, lo, hi, y + dy, metric, c, face)
            v = (vs.get(metric) or {}).get("verdict")
            if v:
                ax_diff.annotate(
                    f"{metric.upper()} {_VERDICT_TEXT.get(v, v)}",
                    (1.0, y + dy),
                    xycoords=("axes fraction", "data"),
                    xytext=(-4, 0),
                    textcoords="offset points",
                    ha="right",
                    va="center",
                    fontsize=7.5,
                    color=verdict_color.get(v, "0.45"),
                    fontweight="bold" if v in verdict_color else None,
                )
    ax_abs.set_yticks(ys, [_display_name(m["key"], ref) for m in models])
    ax_abs.set_ylim(-0.7, n - 0.3)
    ax_abs.set_xlabel(f"error ({ctx.unit}), 95% bootstrap CI")
    ax_abs.set_title("RMSE and MAE per model (sorted by RMSE, best on top)")
    ax_abs.grid(axis="x", alpha=0.3)
    ax_abs.legend(
        handles=[
            Line2D([], [], marker="o", color="0.2", ls="", label="RMSE"),
            Line2D([], [], marker="s", color="0.2", mfc="white", ls="", label="MAE"),
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
    return fig


# --------------------------------------------------------------------------- learning curves


def _curve_groups(ctx: _Ctx) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for m in ctx.doc["models"]:
        if m.get("learning_curve"):
            groups.setdefault(parse_key(m["key"]).label, []).append(m)
    return groups


def _col(curve: list[dict[str, Any]], name: str) -> NDArray[np.float64]:
    return np.array(
        [np.nan if r.get(name) is None else float(r[name]) for r in curve], dtype=np.float64
    )


def learning_figures(ctx: _Ctx) -> list[Figure]:
    """One panel per learned model (seeds overlaid), up to ``CURVES_PER_FIGURE`` per figure."""
    groups = _curve_groups(ctx)
    labels = list(groups)
    figs: list[Figure] = []
    for page in range(0, len(labels), CURVES_PER_FIGURE):
        chunk = labels[page : page + CURVES_PER_FIGURE]
        cols = min(3, len(chunk))
        rows = math.ceil(len(chunk) / cols)
        fig = _figure(4.0 * cols, 0.7 + 3.2 * rows)
        axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
        for ax in axes[len(chunk) :]:
            ax.set_visible(False)
        for ax, label in zip(axes, chunk, strict=False):
            runs = groups[label]
            color = ctx.colors.get(runs[0]["key"], "0.2")
            ax2 = ax.twinx()
            any_val = False
            for i, m in enumerate(runs):
                curve = m["learning_curve"]
                shade = _shade(color, i, len(runs))
                ep = _col(curve, "epoch")
                ep = np.where(np.isnan(ep), np.arange(1, len(curve) + 1), ep)
                vr, va, tl = (
                    _col(curve, "val_rmse"),
                    _col(curve, "val_mae"),
                    _col(curve, "train_loss"),
                )
                seed = parse_key(m["key"]).seed
                tag = f"seed {seed if seed is not None else m.get('seed', 0)}"
                if np.isfinite(vr).any():
                    any_val = True
                    ax.plot(
                        ep,
                        vr,
                        "-o",
                        color=shade,
                        ms=3,
                        lw=1.6,
                        label=tag if len(runs) > 1 else None,
                    )
                    ax.plot(ep, va, "--s", color=shade, ms=2.5, lw=1.2)
                    best = (m.get("fit_info") or {}).get("best_epoch")
                    if best is None or best not in set(ep.tolist()):
                        best = ep[int(np.nanargmin(vr))]
                    j = int(np.flatnonzero(ep == best)[0])
                    ax.axvline(best, color=shade, lw=0.8, ls=":")
                    ax.plot([best], [vr[j]], marker="*", ms=13, color=shade, mec="black", mew=0.6)
                if np.isfinite(tl).any():
                    ax2.plot(ep, tl, ":", color=shade, lw=1.4, alpha=0.9)
            ax.set_title(label, fontsize=10)
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
                Line2D([], [], color="0.2", ls="-", marker="o", ms=3, label="validation RMSE"),
                Line2D([], [], color="0.2", ls="--", marker="s", ms=2.5, label="validation MAE"),
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
        figs.append(fig)
    return figs


# --------------------------------------------------------------------------- per-model panels


def _panel_keys(ctx: _Ctx) -> tuple[list[str], str | None]:
    """Keys for the small multiples: every ok model with predictions; the first seed of each
    label when there are more than ``MAX_PANELS``; at most ``MAX_PANELS``."""
    keys = [m["key"] for m in ctx.ok if ctx.has_pred(m["key"])]
    note = None
    if len(keys) > MAX_PANELS:
        seen: set[str] = set()
        firsts = []
        for k in keys:
            label = parse_key(k).label
            if label not in seen:
                seen.add(label)
                firsts.append(k)
        if len(firsts) < len(keys):
            note = "per-model figures show the first seed of each model"
        keys = firsts
    if len(keys) > MAX_PANELS:
        note = f"per-model figures show the first {MAX_PANELS} of {len(keys)} models"
        keys = keys[:MAX_PANELS]
    return keys, note


def _grid(n: int, panel: float, extra_h: float = 0.6) -> tuple[Figure, list[Any]]:
    cols = min(4, n)
    rows = math.ceil(n / cols)
    fig = _figure(panel * cols + 0.6, panel * rows + extra_h)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _grid_step(ctx: _Ctx) -> float:
    return ctx.step if ctx.step else (ctx.high - ctx.low) / 20


def pred_vs_actual_figure(ctx: _Ctx, keys: list[str], seed: int) -> Figure | None:
    if not keys or ctx.frame is None:
        return None
    truth = ctx.truth
    step = _grid_step(ctx)
    rng = np.random.default_rng(seed)
    n = truth.shape[0]
    take = np.sort(rng.choice(n, size=min(n, SCATTER_POINTS), replace=False))
    jitter = rng.uniform(-0.32, 0.32, size=take.shape[0]) * step
    levels, inv = np.unique(truth, return_inverse=True)
    discrete = levels.shape[0] <= 40
    fig, axes = _grid(len(keys), 3.0)
    lim = (ctx.low - 0.6 * step, ctx.high + 0.6 * step)
    for ax, key in zip(axes, keys, strict=True):
        p = ctx.pred(key)
        ax.scatter(
            truth[take] + jitter,
            p[take],
            s=4,
            alpha=0.35,
            color=ctx.colors[key],
            linewidths=0,
            rasterized=True,
        )
        ax.plot(lim, lim, ls="--", color="0.4", lw=1)
        if discrete:
            means = np.bincount(inv, weights=p) / np.maximum(np.bincount(inv), 1)
            ax.plot(levels, means, "-o", color="black", ms=3.5, mfc="white", lw=1.2)
        r = stats.rmse(truth, p)
        ax.set_title(f"{key}\nRMSE {r:.3f}", fontsize=9)
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
    return fig


def error_hist_figure(ctx: _Ctx, keys: list[str]) -> Figure | None:
    if not keys or ctx.frame is None:
        return None
    truth = ctx.truth
    errs = {k: ctx.pred(k) - truth for k in keys}
    step = _grid_step(ctx)
    big = max(float(np.quantile(np.abs(e), 0.999)) for e in errs.values())
    half = min(ctx.high - ctx.low, max(step, math.ceil(big / step) * step))
    edges = np.arange(-half - step / 2, half + step / 2 + 1e-9, step)  # 0 is a bin centre
    fig, axes = _grid(len(keys), 3.0)
    for ax, key in zip(axes, keys, strict=True):
        e = errs[key]
        ax.hist(
            np.clip(e, edges[0], edges[-1]),
            bins=edges,
            color=ctx.colors[key],
            alpha=0.85,
            edgecolor="white",
            linewidth=0.5,
        )
        ax.axvline(0, color="0.2", ls="--", lw=1)
        ax.set_title(f"{key}\nmean {e.mean():+.2f}, sd {e.std():.2f}", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.supxlabel(f"prediction error: predicted − actual ({ctx.unit})")
    fig.supylabel("test queries")
    fig.suptitle(f"Error distribution (shared bins of {step:g} {ctx.unit}; tails clipped)")
    return fig


# --------------------------------------------------------------------------- buckets


@dataclass
class _Buckets:
    title: str
    xlabel: str
    labels: list[str]  # (B,)
    index: NDArray[np.int64]  # (K,) bucket of each test query
    counts: NDArray[np.int64]  # (B,)


def _bucketise(
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


def _bucket_sets(ctx: _Ctx) -> list[_Buckets]:
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
        labels, idx, counts = _bucketise(values, edges, cold)
        out.append(_Buckets(title, xlabel, labels, idx, counts))
    return out


@dataclass
class _BucketStats:
    rmse: dict[str, NDArray[np.float64]]  # key -> (B, 3) estimate, low, high
    diff: dict[str, NDArray[np.float64]]  # key -> (B, 3) model − reference RMSE


def _bucket_stats(ctx: _Ctx, b: _Buckets, keys: list[str], seed: int) -> _BucketStats:
    truth = ctx.truth
    ref = ctx.reference if ctx.reference and ctx.has_pred(ctx.reference) else None
    kw: dict[str, Any] = {"n_resamples": BUCKET_RESAMPLES, "seed": seed, "method": "percentile"}
    rm: dict[str, NDArray[np.float64]] = {}
    df: dict[str, NDArray[np.float64]] = {}
    for key in keys:
        p = ctx.pred(key)
        r = np.full((len(b.labels), 3), np.nan)
        d = np.full((len(b.labels), 3), np.nan)
        for j in range(len(b.labels)):
            sel = b.index == j
            if not sel.any():
                continue
            iv = stats.metric_cis(truth[sel], p[sel], **kw)["rmse"]
            r[j] = (iv.estimate, iv.low, iv.high)
            if ref is not None:
                if key == ref:
                    d[j] = 0.0
                else:
                    dv = stats.paired_diff_cis(truth[sel], p[sel], ctx.pred(ref)[sel], **kw)["rmse"]
                    d[j] = (dv.estimate, dv.low, dv.high)
        rm[key] = r
        df[key] = d
    return _BucketStats(rm, df)


def bucket_figure(
    ctx: _Ctx, sets: list[_Buckets], bstats: list[_BucketStats], keys: list[str]
) -> Figure:
    has_ref = ctx.reference is not None and ctx.has_pred(ctx.reference)
    rows = 2 if has_ref else 1
    fig = _figure(12, 0.9 + 3.4 * rows)
    axes = np.atleast_2d(fig.subplots(rows, 2, squeeze=False))
    width = 0.7
    off = (np.arange(len(keys)) - (len(keys) - 1) / 2) * (width / max(len(keys), 1))
    for col, (b, st) in enumerate(zip(sets, bstats, strict=True)):
        x = np.arange(len(b.labels))
        ticks = [f"{lab}\nn={c:,}" for lab, c in zip(b.labels, b.counts, strict=True)]
        for row in range(rows):
            ax = axes[row, col]
            data = st.rmse if row == 0 else st.diff
            for i, key in enumerate(keys):
                v = data[key]
                if row == 1 and key == ctx.reference:
                    continue
                yerr = np.vstack([v[:, 0] - v[:, 1], v[:, 2] - v[:, 0]])
                bars = ax.errorbar(
                    x + off[i],
                    v[:, 0],
                    yerr=yerr,
                    fmt="-o",
                    color=ctx.colors[key],
                    ms=4,
                    lw=1.3,
                    capsize=2,
                    elinewidth=0.9,
                    label=key,
                )
                if len(keys) > 6:  # keep the lines legible when the CI bars crowd
                    for part in bars[2]:
                        part.set_alpha(0.45)
            ax.set_xticks(x, ticks, fontsize=8)
            ax.grid(axis="y", alpha=0.3)
            if row == 0:
                ax.set_title(f"RMSE {b.title}")
                ax.set_ylabel(f"RMSE ({ctx.unit}), 95% CI")
            else:
                ax.axhline(0, color="0.3", ls="--", lw=1)
                ax.set_title(f"RMSE − {ctx.reference} {b.title} (< 0: model wins)")
                ax.set_ylabel(f"ΔRMSE ({ctx.unit}), paired 95% CI")
            if row == rows - 1:
                ax.set_xlabel(b.xlabel)
    handles = [Line2D([], [], color=ctx.colors[k], marker="o", ms=4, label=k) for k in keys]
    fig.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(keys), 6),
        fontsize=8,
        frameon=False,
    )
    return fig


def _bucket_table(b: _Buckets, st: _BucketStats, keys: list[str]) -> str:
    head = [b.title.removeprefix("by ").capitalize(), "n", *keys, "best"]
    body = []
    for j, lab in enumerate(b.labels):
        vals = {k: st.rmse[k][j, 0] for k in keys if np.isfinite(st.rmse[k][j, 0])}
        best = min(vals, key=vals.__getitem__) if vals else None
        cells = [
            "–" if k not in vals else (f"**{vals[k]:.3f}**" if k == best else f"{vals[k]:.3f}")
            for k in keys
        ]
        body.append([lab, f"{int(b.counts[j]):,}", *cells, best or "–"])
    return tabulate(body, headers=head, tablefmt="github", disable_numparse=True)


# --------------------------------------------------------------------------- ablation


def ablation_figure(ctx: _Ctx) -> tuple[Figure, str] | None:
    """Model x embedding heat-map of RMSE (mean over seeds) when there are >= 2 embeddings."""
    cells: dict[tuple[str, str], list[float]] = {}
    for m in ctx.ok:
        kp = parse_key(m["key"])
        if kp.embedding is not None:
            cells.setdefault((kp.base, kp.embedding), []).append(m["metrics"]["rmse"]["estimate"])
    embs = list(dict.fromkeys(e for _, e in cells))
    bases = list(dict.fromkeys(b for b, _ in cells))
    if len(embs) < 2:
        return None
    grid = np.full((len(bases), len(embs)), np.nan)
    spread = np.zeros_like(grid)
    nseed = np.zeros(grid.shape, dtype=int)
    for (b, e), v in cells.items():
        i, j = bases.index(b), embs.index(e)
        grid[i, j] = float(np.mean(v))
        spread[i, j] = float(np.std(v, ddof=1)) if len(v) > 1 else 0.0
        nseed[i, j] = len(v)
    fig = _figure(1.8 + 1.5 * len(embs), 1.4 + 0.7 * len(bases))
    ax = fig.subplots()
    im = ax.imshow(grid, cmap="viridis_r", aspect="auto")
    lo, hi = np.nanmin(grid), np.nanmax(grid)
    for i in range(len(bases)):
        for j in range(len(embs)):
            if not np.isfinite(grid[i, j]):
                ax.text(j, i, "–", ha="center", va="center", color="0.4")
                continue
            txt = f"{grid[i, j]:.3f}"
            if nseed[i, j] > 1:
                txt += f"\n± {spread[i, j]:.3f} ({nseed[i, j]} seeds)"
            dark = hi > lo and (grid[i, j] - lo) / (hi - lo) > 0.5
            ax.text(
                j, i, txt, ha="center", va="center", fontsize=9, color="white" if dark else "black"
            )
    ax.set_xticks(
        range(len(embs)),
        embs,
        rotation=30 if max(map(len, embs)) > 8 else 0,
        ha="right" if max(map(len, embs)) > 8 else "center",
    )
    ax.set_yticks(range(len(bases)), bases)
    ax.set_xlabel("embedding")
    ax.set_ylabel("model")
    ax.set_title("Embedding ablation: test RMSE (lower is better)")
    fig.colorbar(im, ax=ax, label=f"RMSE ({ctx.unit})")
    body = [
        [
            b,
            *[
                "–" if not np.isfinite(grid[i, j]) else f"{grid[i, j]:.4f}"
                for j in range(len(embs))
            ],
        ]
        for i, b in enumerate(bases)
    ]
    table = tabulate(body, headers=["model", *embs], tablefmt="github", disable_numparse=True)
    return fig, table


# --------------------------------------------------------------------------- examples


def _stars(r: float, ctx: _Ctx) -> str:
    if ctx.high <= 5 and ctx.step in (0.5, 1.0) and ctx.low >= 0:
        full = math.floor(r + 1e-6)
        half = (r - full) >= 0.5 - 1e-6
        return f"{'★' * full}{'½' if half else ''} ({r:g})"
    return f"{r:g}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _title(ctx: _Ctx, movie: int) -> str:
    titles = ctx.data.titles if ctx.data is not None else None
    if titles and movie in titles and titles[movie]:
        return _md(str(titles[movie]))
    return f"movie {movie}"


def _examples(ctx: _Ctx, n: int, seed: int) -> list[str]:
    assert ctx.data is not None and ctx.frame is not None
    data, frame = ctx.data, ctx.frame
    k = len(frame)
    if n <= 0 or k == 0:
        return []
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(k, size=min(n, k), replace=False))
    keys = [m["key"] for m in ctx.ok if ctx.has_pred(m["key"])]
    out: list[str] = []
    for i, row in enumerate(rows, 1):
        tp = int(data.test_pos[row])
        start = int(data.user_start[row])
        hist = range(max(start, tp - 5), tp)
        truth = float(frame["truth"].iloc[row])
        when = dt.datetime.fromtimestamp(int(data.timestamp[tp]), dt.UTC).date().isoformat()
        out += [
            f"### Example {i}: user {int(frame['user_id'].iloc[row])} "
            f"({_plural(int(data.hist_len[row]), 'earlier rating')})",
            "",
            "Last five rated movies, oldest first:",
            "",
            tabulate(
                [
                    [
                        dt.datetime.fromtimestamp(int(data.timestamp[j]), dt.UTC)
                        .date()
                        .isoformat(),
                        _title(ctx, int(data.item_id[j])),
                        _stars(float(data.rating[j]), ctx),
                    ]
                    for j in hist
                ],
                headers=["date", "movie", "rating"],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
            f"Target ({when}): **{_title(ctx, int(data.item_id[tp]))}** "
            f"({_plural(int(data.popularity[row]), 'training rating')}); "
            f"actual rating **{_stars(truth, ctx)}**",
            "",
        ]
        body = []
        for key in keys:
            p = float(frame[f"pred:{key}"].iloc[row])
            fb = f"fallback:{key}" in frame.columns and bool(frame[f"fallback:{key}"].iloc[row])
            body.append([key, f"{p:.2f}" + (" (fallback)" if fb else ""), f"{p - truth:+.2f}"])
        out += [
            tabulate(
                body,
                headers=["model", "prediction", "error"],
                tablefmt="github",
                disable_numparse=True,
            ),
            "",
        ]
    return out


# --------------------------------------------------------------------------- the report


def _new_dir_name(dest: Path) -> Path:
    i = 2
    cand = dest
    while cand.exists():
        cand = dest.with_name(f"{dest.name}-{i}")
        i += 1
    return cand


def _publish(tmp: Path, dest: Path) -> Path:
    """Rename ``tmp`` into place at ``dest`` or, when that exists, ``dest-2``, ``dest-3``..."""
    for _ in range(1000):
        cand = _new_dir_name(dest)
        try:
            os.rename(tmp, cand)  # fails if cand appeared meanwhile and is not empty
            return cand
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise FileExistsError(f"{dest}: too many existing reports with this name")


def _missing_section(ctx: _Ctx) -> list[str]:
    doc = ctx.doc
    items = list(ctx.missing)
    if doc.get("status") not in (None, "complete"):
        items.append(f"the run is **{doc.get('status')}** (interrupted): finished models only")
    for m in doc["models"]:
        if m.get("status") != "ok":
            err = _md(str(m.get("error") or "no error recorded"))
            items.append(f"model `{m['key']}` **{m.get('status')}**: {err}")
    no_curve = [m["key"] for m in ctx.ok if not m.get("learning_curve")]
    if no_curve:
        items.append(
            "no learning curve (not trained by epochs, or none recorded): "
            + ", ".join(f"`{k}`" for k in no_curve)
        )
    if ctx.frame is None:
        items.append(
            "no predictions sidecar: no predicted-vs-actual, error histogram, bucket figures "
            "or examples"
        )
    else:
        lost = [m["key"] for m in ctx.ok if not ctx.has_pred(m["key"])]
        if lost:
            items.append("no predictions in the sidecar for " + ", ".join(f"`{k}`" for k in lost))
    return items


def _summary(ctx: _Ctx) -> list[str]:
    doc = ctx.doc
    ds = doc["dataset"]
    sp = doc["split"]
    counts = sp.get("counts") or {}
    git = doc.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    emb = doc.get("embeddings")
    lines = [
        f"- **data**: {ds.get('name')} ({_describe_source(ds.get('source') or {})}), "
        f"{ds.get('n_ratings', 0):,} ratings, {ds.get('n_users', 0):,} users, "
        f"{ds.get('n_items', 0):,} movies, scale {ctx.low:g}–{ctx.high:g}"
        + (f" step {ctx.step:g}" if ctx.step else "")
        + f", hash `{ds.get('hash')}`",
        f"- **split**: `{sp.get('hash')}`, protocol {doc.get('protocol')}, "
        f"{counts.get('train', 0):,} train / {counts.get('val', 0):,} validation / "
        f"{counts.get('test', 0):,} test targets; "
        + ", ".join(f"{k}={v}" for k, v in (sp.get("params") or {}).items()),
        f"- **run**: {doc.get('created')}, status {doc.get('status')}, device "
        f"{doc.get('device')}, seeds {doc.get('seeds')}, commit {commit}",
        f"- **statistics**: {(doc.get('statistics') or {}).get('n_resamples')} bootstrap "
        f"resamples, reference `{ctx.reference}`",
    ]
    if emb:
        cov = emb.get("coverage") or {}
        parts = []
        for name in emb.get("names") or []:
            c = cov.get(name) or {}
            share = c.get("target_share")
            parts.append(
                f"{name} ({c.get('dim', '?')}-d"
                + (f", {100 * share:.1f}% of test targets covered" if share is not None else "")
                + (f", hash `{c['hash']}`" if c.get("hash") else "")
                + ")"
            )
        policy = emb.get("policy")
        missing = emb.get("missing") or {}
        tail = f"; movies without a vector: {policy}" if policy else ""
        if missing.get("ratings"):
            tail += (
                f" ({missing['ratings']:,} ratings of {missing.get('items', 0):,} movies, "
                f"{missing.get('users', 0):,} users affected)"
            )
        if emb.get("skipped_models"):
            tail += f"; skipped for lack of embeddings: {', '.join(emb['skipped_models'])}"
        lines.append(f"- **embeddings**: {', '.join(parts) or 'none'}{tail}")
    return lines


def _build(ctx: _Ctx, tmp: Path, examples: int, seed: int, data_dir: Path | None) -> None:
    from bench.compare import build_comparison, render_markdown

    doc = ctx.doc
    md: list[str] = [
        f"# Report: {doc['dataset'].get('name')} · `{ctx.path.name}`",
        "",
        *_summary(ctx),
        "",
    ]
    try:
        md += [render_markdown(build_comparison([ctx.path])), ""]
    except Exception as e:  # the figures are still worth having
        ctx.missing.append(f"the main table could not be built: {type(e).__name__}: {e}")

    def emit(fig: Figure | None, name: str, alt: str, caption: str) -> None:
        if fig is None:
            return
        _save(fig, tmp / name)
        md.extend([f"![{alt}]({name})", "", caption, ""])

    md += ["## Errors with confidence intervals", ""]
    fig = forest_figure(ctx)
    if fig is None:
        md += ["No model finished: nothing to plot.", ""]
    emit(
        fig,
        "forest.png",
        "RMSE and MAE per model with 95% CIs",
        "Left: test RMSE (filled circles) and MAE (open squares) per model with 95% bootstrap "
        "CIs, best RMSE on top. Right: the paired difference to the reference on the same "
        "users; the verdict is 'better'/'worse' only when the paired p-value, Holm-adjusted "
        "across the comparisons with the reference, is below 0.05.",
    )

    curves = learning_figures(ctx)
    if curves:
        md += ["## Learning curves", ""]
        for i, f in enumerate(curves, 1):
            name = "learning-curves.png" if len(curves) == 1 else f"learning-curves-{i}.png"
            emit(
                f,
                name,
                "learning curves",
                "Validation RMSE (solid) and MAE (dashed) per epoch on the left axis, training "
                "loss (dotted, on the model's own scale) on the right; the star marks the epoch "
                "whose weights were kept.",
            )

    keys, note = _panel_keys(ctx)
    if note:
        ctx.missing.append(note)
    if keys:
        md += ["## Predicted vs actual", ""]
        emit(
            pred_vs_actual_figure(ctx, keys, seed),
            "pred-vs-actual.png",
            "predicted vs actual",
            "Each dot is a test query (actual ratings jittered horizontally). A model that "
            "tracks the truth follows the dashed diagonal; a flat black line means it predicts "
            "close to the mean whatever the truth.",
        )
        md += ["## Error distribution", ""]
        emit(
            error_hist_figure(ctx, keys),
            "error-hist.png",
            "error histograms",
            "Predicted minus actual rating on shared bins; mean (bias) and standard deviation "
            "in each title.",
        )

    reason = _reload(ctx, data_dir)
    if reason is not None:
        ctx.missing.append(
            f"data not reloadable: {reason}. Skipped: error by history length and popularity, "
            "and the prediction examples"
        )
    if ctx.data is not None and keys:
        sets = _bucket_sets(ctx)
        bstats = [_bucket_stats(ctx, b, keys, seed) for b in sets]
        md += ["## Where each model wins", ""]
        emit(
            bucket_figure(ctx, sets, bstats, keys),
            "buckets.png",
            "RMSE by bucket",
            "RMSE per bucket of history length (left) and of the target movie's number of "
            "training ratings (right), with 95% bootstrap CIs; the bottom row is the paired "
            "difference to the reference (below 0: the model beats it there). "
            "n = test queries per bucket.",
        )
        for b, st in zip(sets, bstats, strict=True):
            md += [f"RMSE {b.title} (best in bold):", "", _bucket_table(b, st, keys), ""]

    abl = ablation_figure(ctx)
    if abl is not None:
        md += ["## Embedding ablation", ""]
        emit(
            abl[0],
            "ablation.png",
            "embedding ablation heat-map",
            "Test RMSE of each model with each embedding (mean over seeds).",
        )
        md += [abl[1], ""]

    if ctx.data is not None and examples > 0:
        ex = _examples(ctx, examples, seed)
        if ex:
            md += [f"## Prediction examples (seed {seed})", "", *ex]

    md += ["## What's missing", ""]
    missing = _missing_section(ctx)
    md += [f"- {m}" for m in missing] if missing else ["Nothing: every figure could be drawn."]
    md.append("")
    (tmp / "report.md").write_text("\n".join(md), encoding="utf-8")


def write_report(
    results_path: Path,
    out_dir: Path | None = None,
    *,
    data_dir: Path | None = None,
    examples: int = 5,
    seed: int = 0,
) -> Path:
    """Write a report folder for one results file and return the path of its ``report.md``.

    ``out_dir`` defaults to ``<results stem>-report/`` beside the results file. The folder is
    built in a temp folder beside it and renamed into place; when ``out_dir`` exists, the
    report goes to ``out_dir-2`` (``-3``, ...) instead: nothing is overwritten. ``data_dir``
    is where catalog datasets are looked up to reload the data (never downloaded).
    ``examples`` test queries, drawn with ``seed``, are printed with titles. Raises
    ``ResultsError`` when the results file is unreadable; missing data, sidecar or learning
    curves only remove figures (and are listed in the report).
    """
    results_path = Path(results_path)
    ctx = _context(results_path)
    dest = (
        Path(out_dir)
        if out_dir is not None
        else results_path.with_name(f"{results_path.stem}-report")
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        _build(ctx, tmp, examples, seed, data_dir)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp creates 0700
        final = _publish(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final / "report.md"


# --------------------------------------------------------------------------- compare


def compare_figure(paths: Sequence[Path], out_png: Path, *, comparison: Any = None) -> Path:
    """Per-model test RMSE with 95% CIs in each run (marker = run), for ``bench compare``.

    ``comparison`` is a ``bench.compare.Comparison`` of the same ``paths`` (built when None;
    its paired cross-run verdicts label each model). Written atomically; returns ``out_png``.
    Raises ``ResultsError`` when a file is unreadable or the runs are not comparable.
    """
    from bench.compare import build_comparison

    paths = [Path(p) for p in paths]
    docs = [load_results(p) for p in paths]
    if comparison is None:
        comparison = build_comparison(paths)
    names = [f"#{i + 1}" for i in range(len(docs))] if len(docs) > 1 else [paths[0].stem]
    keys: list[str] = []
    for d in docs:
        for m in d["models"]:
            if m["key"] not in keys:
                keys.append(m["key"])
    colors = model_colors(keys)

    def rank(key: str) -> tuple[int, float]:
        """Sort by RMSE in the first run that scored the model."""
        for i, d in enumerate(docs):
            for m in d["models"]:
                if m["key"] == key and m.get("status") == "ok" and m.get("metrics"):
                    return i, float(m["metrics"]["rmse"]["estimate"])
        return len(docs), 0.0

    keys.sort(key=rank)
    sc = docs[0]["dataset"].get("scale") or {}
    unit = _unit(float(sc.get("high", 5.0)))
    n, r = len(keys), len(docs)
    fig = _figure(10.5, 1.8 + 0.45 * n * max(1.0, r / 2))
    ax = fig.subplots()
    ys = np.arange(n)[::-1].astype(float)
    offs = (np.arange(r) - (r - 1) / 2) * (0.6 / max(r, 1))
    verdicts = {(c.key, c.other_run): c.d_rmse for c in getattr(comparison, "cross", [])}
    for y, key in zip(ys, keys, strict=True):
        for i, d in enumerate(docs):
            m = next((x for x in d["models"] if x["key"] == key), None)
            iv = _est(((m or {}).get("metrics") or {}).get("rmse")) if m else None
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
        tags = []
        for i, (name, d) in enumerate(zip(names, docs, strict=True)):
            m = next((x for x in d["models"] if x["key"] == key), None)
            if m is not None and m.get("status") != "ok":
                tags.append((f"{name}: {m.get('status')}", "#cf222e"))
                continue
            dv = verdicts.get((key, name)) if i > 0 else None
            if dv and dv.get("verdict"):
                v = dv["verdict"]
                tags.append(
                    (
                        f"{name}: {_VERDICT_TEXT.get(v, v)} ({dv['estimate']:+.3f})",
                        {"better": "#1a7f37", "worse": "#cf222e"}.get(v, "0.35"),
                    )
                )
        for j, (text, color) in enumerate(reversed(tags)):
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
    ax.set_yticks(ys, keys)
    ax.set_ylim(-0.7, n - 0.3)
    lo, hi = ax.get_xlim()
    ax.set_xlim(lo, hi + (0.45 if r > 1 else 0.05) * (hi - lo))
    ax.set_xlabel(f"test RMSE ({unit}), 95% bootstrap CI")
    ax.set_title(
        f"RMSE per model across runs · {docs[0]['dataset'].get('name')} · split "
        f"{docs[0]['split'].get('hash')}"
        + ("\nright: paired ΔRMSE vs #1 and verdict" if r > 1 else "")
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
                label=f"{names[i]} = {paths[i].name}",
            )
            for i in range(r)
        ],
        loc="outside lower center",
        ncols=min(r, 3),
        fontsize=8,
        frameon=False,
    )
    out_png = Path(out_png)
    atomic_write(out_png, lambda tmp: fig.savefig(tmp, format="png", dpi=DPI))
    return out_png
