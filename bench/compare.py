"""Tables from results files: one run's models, or several runs aligned on the same split.

Runs are only compared when they scored the same queries: equal dataset and split hashes.
Differences are paired bootstraps over the shared test queries, computed from the
predictions sidecars; a mark (better / worse / no clear difference) is set only when the
interval says so, and left empty when a sidecar is missing.

Every metric of ``bench.stats.METRIC_TABLE`` gets its columns, in the table's order; the
first one (``PRIMARY``, RMSE) orders models and is the one compared across runs. Verdict
words and marks are ``bench.stats.VERDICTS``; ``VERDICT_STYLES`` adds how tables and
figures show them (colour, figure label), the one such table (the report uses it too).
The terminal tables are ``bench.tables``; the Markdown ones are here (``render_markdown``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tabulate import tabulate

from bench import stats
from bench.errors import ResultsError
from bench.results import ResultsDoc, check_reference, read_predictions, read_results
from bench.runkey import RunKey
from bench.spec import Statistics

__all__ = [
    "PRIMARY",
    "VERDICT_STYLES",
    "Comparison",
    "CrossRow",
    "Row",
    "VerdictStyle",
    "build_comparison",
    "interval_text",
    "p_text",
    "render_markdown",
    "verdict_style",
]

PRIMARY = stats.METRIC_TABLE[0]  # orders the models; compared across runs


@dataclass(frozen=True)
class VerdictStyle:
    """How a verdict of ``bench.stats.verdict`` is shown."""

    mark: str  # in tables: ``stats.VERDICTS[word]``
    figure: str  # in figures
    color: str | None  # figure colour (None: the figure's neutral grey)
    rich: str  # terminal style ("" for none)


_EMPHASIS = {"better": ("#1a7f37", "green"), "worse": ("#cf222e", "red")}
VERDICT_STYLES: dict[str, VerdictStyle] = {
    word: VerdictStyle(
        mark=mark,
        figure=f"{mark} (unclear)" if word == "no clear difference" else mark,
        color=_EMPHASIS.get(word, (None, ""))[0],
        rich=_EMPHASIS.get(word, (None, ""))[1],
    )
    for word, mark in stats.VERDICTS.items()
}


@dataclass
class Row:
    run: str  # short run name (file stem, or #1, #2... across runs)
    key: RunKey  # the model run, or the seed group of a run's statistics table
    label: str  # as shown: the key, with "(N seeds)" for a seed group
    status: str
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> interval
    diffs: dict[str, dict[str, Any]] = field(default_factory=dict)  # vs reference + verdict
    n_fallback: int | None = None
    fit_s: float | None = None
    predict_s: float | None = None
    error: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class CrossRow:
    key: RunKey
    base_run: str
    other_run: str
    ratio: float  # PRIMARY(other) / PRIMARY(base)
    diff: dict[str, Any] | None  # PRIMARY other - base, paired, with verdict


@dataclass
class Comparison:
    reference: str | None
    rows: list[Row]
    cross: list[CrossRow]
    notes: list[str]
    dataset: str
    split_hash: str
    n_test: int
    legend: dict[str, str] = field(default_factory=dict)  # run label -> results file


def interval_text(d: dict[str, Any] | None, sep: str = " ", sign: str = "", mid: str = "") -> str:
    """``estimate[mid][sep][low, high]``: ``sign="+"`` for differences, ``sep="\\n"`` in
    terminal cells, ``mid`` (a mark) after the estimate."""
    if not d:
        return "–"
    return f"{d['estimate']:{sign}.4f}{mid}{sep}[{d['low']:{sign}.3f}, {d['high']:{sign}.3f}]"


def p_text(d: dict[str, Any]) -> str:
    """The Holm-adjusted p-value the verdict read, when the file has one."""
    p = d.get("p_adjusted")
    return "" if p is None else f" p={p:.3f}" if p >= 0.001 else " p<0.001"


def _diff(d: dict[str, Any] | None) -> str:
    return interval_text(d, sign="+") + (p_text(d) if d else "")


def verdict_style(d: dict[str, Any] | None) -> VerdictStyle | None:
    return VERDICT_STYLES.get((d or {}).get("verdict") or "")


def _mark(d: dict[str, Any] | None) -> str:
    style = verdict_style(d)
    return "" if style is None else style.mark


def _check_same(docs: list[ResultsDoc]) -> None:
    d0 = docs[0]
    p0 = d0.path
    for d in docs[1:]:
        p = d.path
        if d.dataset_hash != d0.dataset_hash:
            raise ResultsError(
                f"{p.name} and {p0.name} were run on different datasets "
                f"({d.dataset.get('name')} {d.dataset_hash} vs "
                f"{d0.dataset.get('name')} {d0.dataset_hash}); "
                "refusing to compare them"
            )
        if d.split_hash != d0.split_hash:
            raise ResultsError(
                f"{p.name} and {p0.name} scored different splits "
                f"({d.split_hash} vs {d0.split_hash}: split parameters "
                "differ); refusing to compare them"
            )


_QUERY_KEYS = ["user_id", "movie_id", "target_time"]


def _align(base: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """``other``'s rows in the order of ``base``'s test queries (its own columns only)."""
    merged = base[_QUERY_KEYS].merge(other, on=_QUERY_KEYS, validate="one_to_one")
    if len(merged) != len(base):
        raise ResultsError("predictions sidecars do not cover the same test queries")
    return merged


def _row(name: str, m: Any, label: str | None = None, **parts: Any) -> Row:
    """A table row of model record ``m`` (a ``ModelRecord``) of run ``name``."""
    return Row(
        run=name,
        key=m.key,
        label=str(m.key) if label is None else label,
        status=m.status,
        n_fallback=m.n_fallback,
        fit_s=m.timings.get("fit_s"),
        predict_s=m.timings.get("predict_s"),
        **parts,
    )


def build_comparison(
    paths: Sequence[Path | ResultsDoc],
    *,
    reference: str | None = None,
    n_resamples: int = Statistics.resamples,  # a run's default
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
    per_seed: bool = False,
) -> Comparison:
    """One table from results files scored on the same split. Differences that the files do
    not already hold (several runs, or another reference than the run's own) are computed
    from the predictions sidecars with ``stats.evaluate``: one resampling of the test
    users for every model of every run and every pair (a user's targets stay together),
    Holm-adjusted within each family: the models against the reference, and the same model
    across runs. One run with several seeds shows one row per model over its seeds (the
    run's ``statistics.table``) unless ``per_seed``."""
    if not paths:
        raise ResultsError("no results file given")
    # a run's own document may come from memory (the run just wrote it): not read again
    docs = [
        p if isinstance(p, ResultsDoc) else read_results(Path(p), predictions=False) for p in paths
    ]
    _check_same(docs)
    # short run labels (#1, #2, ...) keep the tables narrow; the legend maps them to files
    names = [f"#{i + 1}" for i in range(len(docs))] if len(docs) > 1 else [docs[0].path.stem]
    legend = {n: str(d.path) for n, d in zip(names, docs, strict=True)}
    d0 = docs[0]
    check_reference(reference, [d.raw for d in docs])
    reference = reference or d0.reference
    notes: list[str] = []
    own_refs = {d.reference for d in docs}
    # one run against its own reference: every number is in its JSON already
    needs_sidecars = len(docs) > 1 or own_refs != {reference}
    if needs_sidecars:
        docs = [d.with_predictions(read_predictions(d.path, d.raw)) for d in docs]
        d0 = docs[0]

    # every run's predictions aligned on the first sidecar's queries: "run|key" -> (n,)
    truth = None
    users = None
    preds: dict[str, np.ndarray] = {}
    base_frame = next((d.predictions for d in docs if d.predictions is not None), None)
    if base_frame is not None:
        truth = base_frame["truth"].to_numpy(np.float32)
        users = base_frame["user_id"].to_numpy()
        for name, doc in zip(names, docs, strict=True):
            if doc.predictions is None:
                continue
            aligned = _align(base_frame, doc.predictions)
            for m in doc.models:
                if m.pred_column in aligned.columns:
                    preds[f"{name}|{m.key}"] = aligned[m.pred_column].to_numpy(np.float32)
    ref_col = next(
        (f"{n}|{reference}" for n in names if reference and f"{n}|{reference}" in preds), None
    )
    if len(docs) > 1 and reference and ref_col is None:
        notes.append(
            f"reference '{reference}' has no predictions in any run: no paired differences"
        )

    rows: list[Row] = []
    pairs: list[tuple[str, str]] = []
    for doc, name in zip(docs, names, strict=True):
        if doc.status != "complete":
            notes.append(f"{name}: run is {doc.status} (interrupted); finished models shown")
        if doc.predictions is None and needs_sidecars:
            notes.append(f"{name}: predictions sidecar missing; differences taken from its JSON")
        table = doc.statistics.get("table")
        if len(docs) == 1 and table and not per_seed and reference == doc.reference:
            rows += _seed_table_rows(name, doc, table)
            continue
        for m in doc.models:
            row = _row(name, m, metrics=dict(m.metrics), error=m.error)
            col = f"{name}|{m.key}"
            if (
                (len(docs) > 1 or reference != doc.reference)
                and m.finished
                and str(m.key) != reference
                and ref_col is not None
                and col in preds
            ):
                pairs.append((col, ref_col))
            elif m.vs_reference and reference == doc.reference:
                row.diffs = dict(m.vs_reference)
            rows.append(row)

    cross: list[CrossRow] = []
    cross_pairs: list[tuple[CrossRow, tuple[str, str]]] = []
    for doc, name in zip(docs[1:], names[1:], strict=True):
        for m in doc.models:
            b = d0.model(m.key)
            if not m.finished or b is None or not b.finished or not m.metrics or not b.metrics:
                continue
            p = PRIMARY.name
            ratio = m.metrics[p]["estimate"] / b.metrics[p]["estimate"]
            cr = CrossRow(m.key, names[0], name, ratio, None)
            cross.append(cr)
            pair = (f"{name}|{m.key}", f"{names[0]}|{m.key}")
            if pair[0] in preds and pair[1] in preds:
                cross_pairs.append((cr, pair))

    min_users = int(d0.statistics.get("min_test_users") or 20)

    def family(fam: list[tuple[str, str]]) -> stats.Evaluation:
        used = {k for p in fam for k in p}
        return stats.evaluate(
            truth,  # type: ignore[arg-type]
            {k: v for k, v in preds.items() if k in used},
            pairs=fam,
            units=users,
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
            method=method,
            min_units=min_users,
        )

    if pairs and truth is not None:
        ev = family(pairs)
        by_col = {f"{row.run}|{row.key}": row for row in rows}
        for pair in pairs:
            by_col[pair[0]].diffs = ev.difference(pair)
    if cross_pairs and truth is not None:
        ev = family([p for _, p in cross_pairs])
        for cr, pair in cross_pairs:
            cr.diff = ev.difference(pair)[PRIMARY.name]
    return Comparison(
        reference=reference,
        rows=rows,
        cross=cross,
        notes=notes,
        dataset=str(d0.dataset.get("name")),
        split_hash=str(d0.split_hash),
        n_test=d0.n_test,
        legend=legend if len(docs) > 1 else {},
    )


def _seed_table_rows(name: str, doc: ResultsDoc, table: list[dict[str, Any]]) -> list[Row]:
    """One row per entry of the run's ``statistics.table`` (a model over its seeds), then
    the model runs that did not finish."""
    rows = []
    for t in table:
        first = doc.model(t["members"][0])
        n_seeds = len(t["members"])
        parts: dict[str, Any] = {
            "label": t["key"] + (f" ({n_seeds} seeds)" if n_seeds > 1 else ""),
            "metrics": dict(t["metrics"]),
            "diffs": dict(t.get("vs_reference") or {}),
        }
        if first is None:  # a table naming no record: the numbers alone
            rows.append(Row(run=name, key=RunKey(str(t["key"])), status="ok", **parts))
            continue
        row = _row(name, first, **parts)
        row.key, row.status = (first.group if n_seeds > 1 else first.key), "ok"
        rows.append(row)
    rows += [_row(name, m, error=m.error) for m in doc.models if not m.finished]
    return rows


def _diff_head(m: stats.Metric, ref: str) -> str:
    return f"Δ{m.label} vs {ref}"


def _cross_heads() -> tuple[str, str]:
    return f"{PRIMARY.label} ratio", f"Δ{PRIMARY.label} [95% CI]"


def _table_rows(c: Comparison, multi: bool) -> tuple[list[str], list[list[str]]]:
    ref = c.reference or "reference"
    metrics = stats.METRIC_TABLE
    # one mark column after each difference; blank headers kept distinct for tabulate
    head = (["run"] if multi else []) + [
        "model",
        *(f"{m.label} [95% CI]" for m in metrics),
        *(h for j, m in enumerate(metrics) for h in (_diff_head(m, ref), " " * j)),
        "fallbacks",
        "fit s",
    ]
    body = []
    for r in c.rows:
        is_ref = r.label == c.reference
        if r.status != "ok":
            cells = [
                r.label,
                f"{r.status}: {r.error or ''}"[:60],
                *(["–"] * (len(metrics) - 1)),
                *(x for _ in metrics for x in ("–", "")),
                "–",
                "–",
            ]
        else:
            cells = [
                r.label,
                *(interval_text(r.metrics.get(m.name)) for m in metrics),
                *(
                    x
                    for m in metrics
                    for x in (
                        ("(reference)", "")
                        if is_ref
                        else (_diff(r.diffs.get(m.name)), _mark(r.diffs.get(m.name)))
                    )
                ),
                "–"
                if r.status != "ok"
                else "not reported"
                if r.n_fallback is None
                else f"{r.n_fallback:,}",
                "–" if r.fit_s is None else f"{r.fit_s:.2f}",
            ]
        body.append(([r.run] if multi else []) + cells)
    return head, body


def render_markdown(c: Comparison) -> str:
    multi = len({r.run for r in c.rows}) > 1
    head, body = _table_rows(c, multi)
    parts = [
        f"## {c.dataset} · split `{c.split_hash}` · {c.n_test:,} test queries",
        "",
        tabulate(body, headers=head, tablefmt="github", disable_numparse=True),
        "",
        "Δ = model − reference on the same test queries (paired bootstrap, 95% CI); "
        "'better'/'worse' when the paired p-value, Holm-adjusted across the table's "
        "comparisons with the reference (p=), is below 0.05; '~' otherwise; 'too few "
        "queries' below the run's minimum of test users.",
    ]
    if c.legend:
        parts += ["", "Runs: " + "; ".join(f"{k} = `{v}`" for k, v in c.legend.items())]
    if c.cross:
        parts += [
            "",
            f"### Same model across runs (vs {c.cross[0].base_run})",
            "",
            tabulate(
                [
                    [str(cr.key), cr.other_run, f"{cr.ratio:.4f}", _diff(cr.diff), _mark(cr.diff)]
                    for cr in c.cross
                ],
                headers=[
                    "model",
                    "run",
                    f"{PRIMARY.label} ratio",
                    f"Δ{PRIMARY.label} [95% CI]",
                    "mark",
                ],
                tablefmt="github",
                disable_numparse=True,
            ),
        ]
    if c.notes:
        parts += ["", *[f"- {n}" for n in c.notes]]
    return "\n".join(parts) + "\n"
