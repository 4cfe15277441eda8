"""Statistics of a run: every finished model scored on one resampling of the test users
(``stats.evaluate``), the paired differences against the reference, Holm-adjusted, and the
seed-to-seed spread. ``score`` is a function of the test truth and the jobs' results: it
returns a ``Scores`` value and writes into nothing."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench import stats
from bench.jobs import FitResult
from bench.runkey import RunKey
from bench.spec import Statistics

__all__ = ["RunScores", "Scores", "score"]


@dataclass(frozen=True)
class RunScores:
    """One run's metrics (metric name -> its record, with the design effect) and its paired
    difference against the reference (None for the reference itself)."""

    metrics: dict[str, Any]
    vs_reference: dict[str, Any] | None


@dataclass(frozen=True)
class Scores:
    """The statistics of a run: what ``bench.results.schema`` writes."""

    runs: Mapping[RunKey, RunScores] = field(default_factory=dict)  # the finished runs
    method: str | None = None  # the CI method ``stats.evaluate`` resolved
    n_units: int | None = None  # test users resampled
    table: tuple[dict[str, Any], ...] = ()  # one row per model over its seeds
    seed_summary: dict[str, Any] = field(default_factory=dict)  # seed-to-seed spread


def score(
    truth: NDArray[np.float32],
    units: NDArray[Any],
    results: Iterable[FitResult],
    reference: RunKey | None,
    choices: Statistics,
) -> Scores:
    """Metrics with CIs for every finished result (``results`` in the plan's order) and its
    paired difference against the ``reference`` run, all from one resampling of the test
    ``units`` (the test user of each query; ``truth``: (K,) the test ratings).

    Two families of comparisons, each Holm-adjusted on its own: every run against the
    reference (the model records: one row per seed), and, with several seeds, the table a
    reader sees by default, one row per model whose interval and verdict take the seeds in
    (``Scores.table``)."""
    ok = [r for r in results if r.ok and r.pred is not None]
    if not ok:
        return Scores()
    ref = next((r for r in ok if r.run_key == reference), None)
    preds = {r.key: r.pred for r in ok if r.pred is not None}
    kw: dict[str, Any] = {
        "units": units,
        "n_resamples": choices.resamples,
        "confidence": choices.confidence,
        "seed": choices.stats_seed,
        "method": choices.ci_method,
        "min_units": choices.min_test_users,
    }
    pairs = [(r.key, ref.key) for r in ok if ref is not None and r is not ref]
    ev = stats.evaluate(truth, preds, pairs=pairs, **kw)
    runs = {
        r.run_key: RunScores(
            metrics={
                k: {**v.to_dict(), "design_effect": ev.design_effect[r.key][k]}
                for k, v in ev.metrics[r.key].items()
            },
            vs_reference=None if ref is None or r is ref else ev.difference((r.key, ref.key)),
        )
        for r in ok
    }
    scores = Scores(runs, ev.method, ev.n_units, (), _seed_summary(ok, runs))
    members: dict[str, list[str]] = {}
    for r in ok:
        members.setdefault(r.group or r.key, []).append(r.key)
    groups = {g: ks for g, ks in members.items() if len(ks) > 1}
    if not groups or choices.per_seed:
        return scores
    rows = [g if g in groups else ks[0] for g, ks in members.items()]
    row_pairs = [(k, ref.key) for k in rows if ref is not None and k != ref.key]
    ev_rows = stats.evaluate(truth, preds, pairs=row_pairs, groups=groups, **kw)
    table = tuple(
        {
            "key": k,
            "members": groups.get(k, [k]),
            "metrics": {m: v.to_dict() for m, v in ev_rows.metrics[k].items()},
            "vs_reference": None
            if ref is None or k == ref.key
            else ev_rows.difference((k, ref.key)),
        }
        for k in rows
    )
    return Scores(runs, ev.method, ev.n_units, table, scores.seed_summary)


def _seed_summary(ok: list[FitResult], runs: Mapping[RunKey, RunScores]) -> dict[str, Any]:
    """Per model run on several seeds: the seeds and each metric's seed-to-seed spread."""
    out: dict[str, Any] = {}
    groups: dict[str, list[FitResult]] = {}
    for r in ok:
        if runs[r.run_key].metrics:
            groups.setdefault(r.group or r.key, []).append(r)
    for base, group in groups.items():
        if len(group) < 2:
            continue
        out[base] = {
            "seeds": [g.seed for g in group],
            **{
                m: stats.seed_spread([runs[g.run_key].metrics[m]["estimate"] for g in group])
                for m in stats.METRICS
            },
        }
    return out
