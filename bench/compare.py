"""Tables from results files: one run's models, or several runs aligned on the same split.

Runs are only compared when they scored the same queries: equal dataset and split hashes.
Differences are paired bootstraps over the shared test queries, computed from the
predictions sidecars; a mark (better / worse / no clear difference) is set only when the
interval says so, and left empty when a sidecar is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich import box
from rich.table import Table
from tabulate import tabulate

from bench import stats
from bench.errors import ResultsError
from bench.results import check_reference, load_results, read_predictions

__all__ = ["Comparison", "build_comparison", "render_markdown", "render_rich"]

MARKS = stats.VERDICTS


@dataclass
class Row:
    run: str  # short run name (file stem)
    key: str
    status: str
    rmse: dict[str, Any] | None
    mae: dict[str, Any] | None
    d_rmse: dict[str, Any] | None = None  # vs reference, with "verdict"
    d_mae: dict[str, Any] | None = None
    n_fallback: int | None = None
    fit_s: float | None = None
    predict_s: float | None = None
    error: str | None = None
    flags: list[str] = field(default_factory=list)


@dataclass
class CrossRow:
    key: str
    base_run: str
    other_run: str
    ratio_rmse: float
    d_rmse: dict[str, Any] | None  # other - base, paired, with verdict


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


def _interval(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['estimate']:.4f} [{d['low']:.3f}, {d['high']:.3f}]"


def _p(d: dict[str, Any]) -> str:
    """The Holm-adjusted p-value the verdict read, when the file has one."""
    p = d.get("p_adjusted")
    return "" if p is None else f" p={p:.3f}" if p >= 0.001 else " p<0.001"


def _diff(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['estimate']:+.4f} [{d['low']:+.3f}, {d['high']:+.3f}]{_p(d)}"


def _mark(d: dict[str, Any] | None) -> str:
    if not d:
        return ""
    return MARKS.get(d.get("verdict", ""), "")


def _check_same(docs: list[tuple[Path, dict[str, Any]]]) -> None:
    p0, d0 = docs[0]
    for p, d in docs[1:]:
        if d["dataset"].get("hash") != d0["dataset"].get("hash"):
            raise ResultsError(
                f"{p.name} and {p0.name} were run on different datasets "
                f"({d['dataset'].get('name')} {d['dataset'].get('hash')} vs "
                f"{d0['dataset'].get('name')} {d0['dataset'].get('hash')}); "
                "refusing to compare them"
            )
        if d["split"].get("hash") != d0["split"].get("hash"):
            raise ResultsError(
                f"{p.name} and {p0.name} scored different splits "
                f"({d['split'].get('hash')} vs {d0['split'].get('hash')}: split parameters "
                "differ); refusing to compare them"
            )


def _align(base: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    keys = ["user_id", "movie_id", "target_time"]
    merged = base.merge(other, on=keys, suffixes=("", "__other"), validate="one_to_one")
    if len(merged) != len(base):
        raise ResultsError("predictions sidecars do not cover the same test queries")
    return merged


def build_comparison(
    paths: list[Path],
    *,
    reference: str | None = None,
    n_resamples: int = 2000,
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
    docs = [(Path(p), load_results(Path(p))) for p in paths]
    _check_same(docs)
    # short run labels (#1, #2, ...) keep the tables narrow; the legend maps them to files
    names = [f"#{i + 1}" for i in range(len(docs))] if len(docs) > 1 else [docs[0][0].stem]
    legend = {n: str(p) for n, (p, _) in zip(names, docs, strict=True)}
    d0 = docs[0][1]
    check_reference(reference, [d for _, d in docs])
    reference = reference or d0.get("statistics", {}).get("reference")
    notes: list[str] = []
    own_refs = {(d.get("statistics") or {}).get("reference") for _, d in docs}
    # one run against its own reference: every number is in its JSON already
    needs_sidecars = len(docs) > 1 or own_refs != {reference}
    frames = [read_predictions(p, d) if needs_sidecars else None for p, d in docs]

    # every run's predictions aligned on the first sidecar's queries: "run|key" -> (n,)
    truth = None
    users = None
    preds: dict[str, np.ndarray] = {}
    base_frame = next((f for f in frames if f is not None), None)
    if base_frame is not None:
        truth = base_frame["truth"].to_numpy(np.float32)
        users = base_frame["user_id"].to_numpy()
        for name, frame in zip(names, frames, strict=True):
            if frame is None:
                continue
            aligned = _align(base_frame, frame)
            for col in aligned.columns:
                if col.startswith("pred:") and not col.endswith("__other"):
                    preds[f"{name}|{col[5:]}"] = aligned[col].to_numpy(np.float32)
    ref_col = next(
        (f"{n}|{reference}" for n in names if reference and f"{n}|{reference}" in preds), None
    )
    if len(docs) > 1 and reference and ref_col is None:
        notes.append(
            f"reference '{reference}' has no predictions in any run: no paired differences"
        )

    rows: list[Row] = []
    pairs: list[tuple[str, str]] = []
    for (_path, doc), name, frame in zip(docs, names, frames, strict=True):
        if doc.get("status") != "complete":
            notes.append(f"{name}: run is {doc.get('status')} (interrupted); finished models shown")
        if frame is None and needs_sidecars:
            notes.append(f"{name}: predictions sidecar missing; differences taken from its JSON")
        own_ref = (doc.get("statistics") or {}).get("reference")
        table = (doc.get("statistics") or {}).get("table")
        if len(docs) == 1 and table and not per_seed and reference == own_ref:
            by_key = {m["key"]: m for m in doc["models"]}
            for t in table:
                first = by_key.get(t["members"][0], {})
                vs = t.get("vs_reference") or {}
                rows.append(
                    Row(
                        run=name,
                        key=t["key"]
                        + (f" ({len(t['members'])} seeds)" if len(t["members"]) > 1 else ""),
                        status="ok",
                        rmse=t["metrics"].get("rmse"),
                        mae=t["metrics"].get("mae"),
                        d_rmse=vs.get("rmse"),
                        d_mae=vs.get("mae"),
                        n_fallback=first.get("n_fallback"),
                        fit_s=(first.get("timings") or {}).get("fit_s"),
                        predict_s=(first.get("timings") or {}).get("predict_s"),
                    )
                )
            rows += [
                Row(
                    run=name,
                    key=m["key"],
                    status=m["status"],
                    rmse=None,
                    mae=None,
                    error=m.get("error"),
                )
                for m in doc["models"]
                if m["status"] != "ok"
            ]
            continue
        for m in doc["models"]:
            metrics = m.get("metrics") or {}
            row = Row(
                run=name,
                key=m["key"],
                status=m["status"],
                rmse=metrics.get("rmse"),
                mae=metrics.get("mae"),
                n_fallback=m.get("n_fallback"),
                fit_s=(m.get("timings") or {}).get("fit_s"),
                predict_s=(m.get("timings") or {}).get("predict_s"),
                error=m.get("error"),
            )
            col = f"{name}|{m['key']}"
            if (
                (len(docs) > 1 or reference != own_ref)
                and m["status"] == "ok"
                and m["key"] != reference
                and ref_col is not None
                and col in preds
            ):
                pairs.append((col, ref_col))
            elif m.get("vs_reference") and reference == own_ref:
                row.d_rmse = m["vs_reference"].get("rmse")
                row.d_mae = m["vs_reference"].get("mae")
            rows.append(row)

    cross: list[CrossRow] = []
    cross_pairs: list[tuple[CrossRow, tuple[str, str]]] = []
    if len(docs) > 1:
        _base_path, base_doc = docs[0]
        base_models = {m["key"]: m for m in base_doc["models"] if m["status"] == "ok"}
        for (_, doc), name in zip(docs[1:], names[1:], strict=True):
            for m in doc["models"]:
                b = base_models.get(m["key"])
                if m["status"] != "ok" or b is None or not m.get("metrics") or not b.get("metrics"):
                    continue
                ratio = m["metrics"]["rmse"]["estimate"] / b["metrics"]["rmse"]["estimate"]
                cr = CrossRow(m["key"], names[0], name, ratio, None)
                cross.append(cr)
                pair = (f"{name}|{m['key']}", f"{names[0]}|{m['key']}")
                if pair[0] in preds and pair[1] in preds:
                    cross_pairs.append((cr, pair))

    min_users = int((d0.get("statistics") or {}).get("min_test_users") or 20)

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
        by_col = {col: row for row in rows for col in [f"{row.run}|{row.key}"]}
        for pair in pairs:
            row = by_col[pair[0]]
            d = ev.difference(pair)
            row.d_rmse, row.d_mae = d["rmse"], d["mae"]
    if cross_pairs and truth is not None:
        ev = family([p for _, p in cross_pairs])
        for cr, pair in cross_pairs:
            cr.d_rmse = ev.difference(pair)["rmse"]
    return Comparison(
        reference=reference,
        rows=rows,
        cross=cross,
        notes=notes,
        dataset=str(d0["dataset"].get("name")),
        split_hash=str(d0["split"].get("hash")),
        n_test=int(d0["split"].get("counts", {}).get("test", 0)),
        legend=legend if len(docs) > 1 else {},
    )


def _table_rows(c: Comparison, multi: bool) -> tuple[list[str], list[list[str]]]:
    ref = c.reference or "reference"
    head = (["run"] if multi else []) + [
        "model",
        "RMSE [95% CI]",
        "MAE [95% CI]",
        f"ΔRMSE vs {ref}",
        "",
        f"ΔMAE vs {ref}",
        " ",
        "fallbacks",
        "fit s",
    ]
    body = []
    for r in c.rows:
        if r.status != "ok":
            cells = [r.key, f"{r.status}: {r.error or ''}"[:60], "–", "–", "", "–", "", "–", "–"]
        else:
            cells = [
                r.key,
                _interval(r.rmse),
                _interval(r.mae),
                "(reference)" if r.key == c.reference else _diff(r.d_rmse),
                "" if r.key == c.reference else _mark(r.d_rmse),
                "(reference)" if r.key == c.reference else _diff(r.d_mae),
                "" if r.key == c.reference else _mark(r.d_mae),
                "–" if r.n_fallback is None else f"{r.n_fallback:,}",
                "–" if r.fit_s is None else f"{r.fit_s:.2f}",
            ]
        body.append(([r.run] if multi else []) + cells)
    return head, body


def _cell(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    return f"{d['estimate']:.4f}\n[{d['low']:.3f}, {d['high']:.3f}]"


def _dcell(d: dict[str, Any] | None) -> str:
    if not d:
        return "–"
    mark = _mark(d)
    style = {"better": "green", "worse": "red"}.get(mark, "")
    mark_txt = f" [{style}]{mark}[/]" if style else f" {mark}" if mark else ""
    return f"{d['estimate']:+.4f}{mark_txt}\n[{d['low']:+.3f}, {d['high']:+.3f}]{_p(d)}"


def render_rich(c: Comparison) -> list[Table]:
    """Terminal tables: intervals on a second line inside each cell, to fit ~100 columns."""
    multi = len({r.run for r in c.rows}) > 1
    ref = c.reference or "reference"
    t = Table(
        title=f"{c.dataset} · split {c.split_hash} · {c.n_test:,} test queries",
        caption=f"95% bootstrap CIs; Δ = model − {ref} on the same queries (paired); "
        "better/worse when the Holm-adjusted paired p (shown) is below 0.05, ~ otherwise",
        box=box.SIMPLE_HEAD,
    )
    if multi:
        t.add_column("run", no_wrap=True)
    t.add_column("model", no_wrap=True)
    for h in ("RMSE", "MAE", f"ΔRMSE vs {ref}", f"ΔMAE vs {ref}", "fallbacks", "fit s"):
        t.add_column(h, justify="right", no_wrap=True)
    for r in c.rows:
        lead = [r.run] if multi else []
        if r.status != "ok":
            t.add_row(*lead, r.key, f"[red]{r.status}[/]", (r.error or "")[:40], "", "", "", "")
            continue
        is_ref = r.key == c.reference
        t.add_row(
            *lead,
            r.key,
            _cell(r.rmse),
            _cell(r.mae),
            "(reference)" if is_ref else _dcell(r.d_rmse),
            "(reference)" if is_ref else _dcell(r.d_mae),
            "–" if r.n_fallback is None else f"{r.n_fallback:,}",
            "–" if r.fit_s is None else f"{r.fit_s:.2f}",
        )
    tables = [t]
    if c.cross:
        x = Table(
            title=f"same model across runs (vs {c.cross[0].base_run})",
            caption="runs: " + ", ".join(f"{k} = {v}" for k, v in c.legend.items()),
            box=box.SIMPLE_HEAD,
        )
        for h in ("model", "run", "RMSE ratio", "ΔRMSE [95% CI]"):
            x.add_column(h, no_wrap=True)
        for cr in c.cross:
            x.add_row(cr.key, cr.other_run, f"{cr.ratio_rmse:.4f}", _dcell(cr.d_rmse))
        tables.append(x)
    return tables


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
                    [
                        cr.key,
                        cr.other_run,
                        f"{cr.ratio_rmse:.4f}",
                        _diff(cr.d_rmse),
                        _mark(cr.d_rmse),
                    ]
                    for cr in c.cross
                ],
                headers=["model", "run", "RMSE ratio", "ΔRMSE [95% CI]", "mark"],
                tablefmt="github",
                disable_numparse=True,
            ),
        ]
    if c.notes:
        parts += ["", *[f"- {n}" for n in c.notes]]
    return "\n".join(parts) + "\n"
