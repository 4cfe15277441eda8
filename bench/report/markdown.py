"""The report folder: ``report.md`` (run summary, the main table of ``bench.compare``, each
figure with its caption, per-bucket tables, prediction examples, what's missing) and the
PNGs it links, built in a temp folder and renamed into place (never overwriting)."""

from __future__ import annotations

import datetime as dt
import errno
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
from tabulate import tabulate

from bench import stats
from bench.report.ablation import ablation_figure
from bench.report.buckets import bucket_figure, bucket_sets, bucket_stats, bucket_table
from bench.report.context import (
    ReportContext,
    describe_source,
    load_context,
    recorded_source,
    reload_data,
)
from bench.report.curves import learning_figures
from bench.report.forest import forest_figure
from bench.report.panels import error_hist_figure, panel_models, pred_vs_actual_figure
from bench.report.style import Plot, metric_marks, save
from bench.results import ModelRecord

__all__ = ["write_report"]


def _stars(r: float, ctx: ReportContext) -> str:
    if ctx.high <= 5 and ctx.step in (0.5, 1.0) and ctx.low >= 0:
        full = math.floor(r + 1e-6)
        half = (r - full) >= 0.5 - 1e-6
        return f"{'★' * full}{'½' if half else ''} ({r:g})"
    return f"{r:g}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _title(ctx: ReportContext, movie: int) -> str:
    titles = ctx.data.titles if ctx.data is not None else None
    if titles and movie in titles and titles[movie]:
        return _md(str(titles[movie]))
    return f"movie {movie}"


def _date(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).date().isoformat()


def _table(body: list[list[str]], head: list[str]) -> str:
    return tabulate(body, headers=head, tablefmt="github", disable_numparse=True)


def _examples(ctx: ReportContext, n: int, seed: int) -> list[str]:
    assert ctx.data is not None and ctx.frame is not None
    data, frame = ctx.data, ctx.frame
    k = len(frame)
    if n <= 0 or k == 0:
        return []
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(k, size=min(n, k), replace=False))
    models = [m for m in ctx.ok if ctx.has_pred(m)]
    out: list[str] = []
    for i, row in enumerate(rows, 1):
        tp = int(data.test_pos[row])
        start = int(data.user_start[row])
        hist = range(max(start, tp - 5), tp)
        truth = float(frame["truth"].iloc[row])
        out += [
            f"### Example {i}: user {int(frame['user_id'].iloc[row])} "
            f"({_plural(int(data.hist_len[row]), 'earlier rating')})",
            "",
            "Last five rated movies, oldest first:",
            "",
            _table(
                [
                    [
                        _date(int(data.timestamp[j])),
                        _title(ctx, int(data.item_id[j])),
                        _stars(float(data.rating[j]), ctx),
                    ]
                    for j in hist
                ],
                ["date", "movie", "rating"],
            ),
            "",
            f"Target ({_date(int(data.timestamp[tp]))}): **{_title(ctx, int(data.item_id[tp]))}** "
            f"({_plural(int(data.popularity[row]), 'training rating')}); "
            f"actual rating **{_stars(truth, ctx)}**",
            "",
        ]
        body = []
        for m in models:
            assert m.pred is not None
            p = float(m.pred[row])
            fb = m.fallback is not None and bool(m.fallback[row])
            body.append(
                [str(m.key), f"{p:.2f}" + (" (fallback)" if fb else ""), f"{p - truth:+.2f}"]
            )
        out += [_table(body, ["model", "prediction", "error"]), ""]
    return out


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


def _keys(models: list[ModelRecord]) -> str:
    return ", ".join(f"`{m.key}`" for m in models)


def _missing_section(ctx: ReportContext) -> list[str]:
    doc = ctx.doc
    items = list(ctx.missing)
    if doc.status not in (None, "complete"):
        items.append(f"the run is **{doc.status}** (interrupted): finished models only")
    for m in doc.models:
        if not m.finished:
            err = _md(str(m.error or "no error recorded"))
            items.append(f"model `{m.key}` **{m.status}**: {err}")
    no_curve = [m for m in ctx.ok if not m.learning_curve]
    if no_curve:
        items.append(
            "no learning curve (not trained by epochs, or none recorded): " + _keys(no_curve)
        )
    if ctx.frame is None:
        items.append(
            "no predictions sidecar: no predicted-vs-actual, error histogram, bucket figures "
            "or examples"
        )
    else:
        lost = [m for m in ctx.ok if not ctx.has_pred(m)]
        if lost:
            items.append("no predictions in the sidecar for " + _keys(lost))
    return items


def _summary(ctx: ReportContext) -> list[str]:
    doc = ctx.doc
    ds = doc.dataset
    sp = doc.split
    raw = doc.raw
    counts = sp.get("counts") or {}
    git = raw.get("git") or {}
    commit = (git.get("commit") or "unknown")[:10] + (" (dirty)" if git.get("dirty") else "")
    emb = raw.get("embeddings")
    lines = [
        f"- **data**: {ds.get('name')} ({describe_source(recorded_source(doc))}), "
        f"{ds.get('n_ratings', 0):,} ratings, {ds.get('n_users', 0):,} users, "
        f"{ds.get('n_items', 0):,} movies, scale {ctx.low:g}–{ctx.high:g}"
        + (f" step {ctx.step:g}" if ctx.step else "")
        + f", hash `{ds.get('hash')}`",
        f"- **split**: `{sp.get('hash')}`, protocol {raw.get('protocol')}, "
        f"{counts.get('train', 0):,} train / {counts.get('val', 0):,} validation / "
        f"{counts.get('test', 0):,} test targets; "
        + ", ".join(f"{k}={v}" for k, v in (sp.get("params") or {}).items()),
        f"- **run**: {raw.get('created')}, status {doc.status}, device "
        f"{raw.get('device')}, seeds {raw.get('seeds')}, commit {commit}",
        f"- **statistics**: {doc.statistics.get('n_resamples')} bootstrap "
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


_SHAPES = {"o": "circles", "s": "squares", "^": "triangles", "D": "diamonds", "v": "triangles"}


def _join(items: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _build(ctx: ReportContext, tmp: Path, examples: int, seed: int, data_dir: Path | None) -> None:
    from bench.compare import PRIMARY, build_comparison, render_markdown

    doc = ctx.doc
    md: list[str] = [
        f"# Report: {doc.dataset.get('name')} · `{ctx.path.name}`",
        "",
        *_summary(ctx),
        "",
    ]
    try:
        md += [render_markdown(build_comparison([ctx.path])), ""]
    except Exception as e:  # the figures are still worth having
        ctx.missing.append(f"the main table could not be built: {type(e).__name__}: {e}")

    def emit(plot: Plot | None, name: str, alt: str, caption: str) -> None:
        if plot is None:
            return
        save(plot.figure, tmp / name)
        md.extend([f"![{alt}]({name})", "", caption, ""])

    md += ["## Errors with confidence intervals", ""]
    forest = forest_figure(ctx)
    if forest is None:
        md += ["No model finished: nothing to plot.", ""]
    marks = metric_marks()
    shapes = [
        f"{m.label} ({'filled' if filled else 'open'} {_SHAPES.get(marker, 'marks')})"
        for m, _, marker, filled in marks
    ]
    emit(
        forest,
        "forest.png",
        f"{_join([m.label for m, *_ in marks])} per model with 95% CIs",
        f"Left: test {_join(shapes)} per model with 95% bootstrap CIs, best {PRIMARY.label} on "
        "top. Right: the paired difference to the reference on the same users; the verdict is "
        "'better'/'worse' only when the paired p-value, Holm-adjusted across the comparisons "
        "with the reference, is below 0.05.",
    )

    curves = learning_figures(ctx)
    if curves:
        md += ["## Learning curves", ""]
        val = _join(
            [
                f"{m.label} ({('solid', 'dashed', 'dash-dotted', 'dotted')[j % 4]})"
                for j, m in enumerate(stats.METRIC_TABLE)
            ]
        )
        for i, f in enumerate(curves, 1):
            name = "learning-curves.png" if len(curves) == 1 else f"learning-curves-{i}.png"
            emit(
                f,
                name,
                "learning curves",
                f"Validation {val} per epoch on the left axis, training "
                "loss (dotted, on the model's own scale) on the right; the star marks the epoch "
                "whose weights were kept.",
            )

    models, note = panel_models(ctx)
    if note:
        ctx.missing.append(note)
    if models:
        md += ["## Predicted vs actual", ""]
        emit(
            pred_vs_actual_figure(ctx, models, seed),
            "pred-vs-actual.png",
            "predicted vs actual",
            "Each dot is a test query (actual ratings jittered horizontally). A model that "
            "tracks the truth follows the dashed diagonal; a flat black line means it predicts "
            "close to the mean whatever the truth.",
        )
        md += ["## Error distribution", ""]
        emit(
            error_hist_figure(ctx, models),
            "error-hist.png",
            "error histograms",
            "Predicted minus actual rating on shared bins; mean (bias) and standard deviation "
            "in each title.",
        )

    reason = reload_data(ctx, data_dir)
    if reason is not None:
        ctx.missing.append(
            f"data not reloadable: {reason}. Skipped: error by history length and popularity, "
            "and the prediction examples"
        )
    if ctx.data is not None and models:
        sets = bucket_sets(ctx)
        bstats = [bucket_stats(ctx, b, models, seed) for b in sets]
        md += ["## Where each model wins", ""]
        emit(
            bucket_figure(ctx, sets, bstats, models),
            "buckets.png",
            f"{PRIMARY.label} by bucket",
            f"{PRIMARY.label} per bucket of history length (left) and of the target movie's "
            "number of training ratings (right), with 95% bootstrap CIs; the bottom row is the "
            "paired difference to the reference (below 0: the model beats it there). "
            "n = test queries per bucket.",
        )
        for b, st in zip(sets, bstats, strict=True):
            md += [
                f"{PRIMARY.label} {b.title} (best in bold):",
                "",
                bucket_table(b, st, models),
                "",
            ]

    abl = ablation_figure(ctx)
    if abl is not None:
        md += ["## Embedding ablation", ""]
        emit(
            abl[0],
            "ablation.png",
            "embedding ablation heat-map",
            f"Test {PRIMARY.label} of each model with each embedding (mean over seeds).",
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
    ctx = load_context(results_path)
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
