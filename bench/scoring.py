"""Statistics of a run: every finished model scored on one resampling of the test users
(``stats.evaluate``), the paired differences against the reference, Holm-adjusted, and the
seed-to-seed spread."""

from __future__ import annotations

from typing import Any

from bench import stats
from bench.plan import ModelRun, Prepared
from bench.spec import RunSpec

__all__ = ["score_all", "seed_summary"]


def score_all(prep: Prepared, spec: RunSpec) -> None:
    """Metrics with CIs for every finished model and its paired difference against the
    reference, all from one resampling of the test users (``stats.evaluate``).

    Two families of comparisons, each Holm-adjusted on its own: every run against the
    reference (the model records: one row per seed), and, with several seeds, the table a
    reader sees by default, one row per model whose interval and verdict take the seeds in
    (``prep.table``)."""
    ok = [r for r in prep.runs if r.status == "ok" and r.pred is not None]
    prep.table = []
    if not ok:
        return
    ref = next((r for r in ok if r.key == prep.ref_key), None)
    preds = {r.key: r.pred for r in ok if r.pred is not None}
    kw: dict[str, Any] = {
        "units": prep.split.test_user,
        "n_resamples": spec.n_resamples,
        "confidence": spec.confidence,
        "seed": spec.stats_seed,
        "method": spec.ci_method,
        "min_units": spec.min_test_users,
    }
    pairs = [(r.key, ref.key) for r in ok if ref is not None and r is not ref]
    ev = stats.evaluate(prep.truth, preds, pairs=pairs, **kw)
    prep.stats_method = ev.method
    prep.stats_units = ev.n_units
    for r in ok:
        r.metrics = {
            k: {**v.to_dict(), "design_effect": ev.design_effect[r.key][k]}
            for k, v in ev.metrics[r.key].items()
        }
        r.vs_reference = None if ref is None or r is ref else ev.difference((r.key, ref.key))
    members: dict[str, list[str]] = {}
    for r in ok:
        members.setdefault(r.group or r.key, []).append(r.key)
    groups = {g: ks for g, ks in members.items() if len(ks) > 1}
    if not groups or spec.per_seed:
        return
    rows = [g if g in groups else ks[0] for g, ks in members.items()]
    row_pairs = [(k, ref.key) for k in rows if ref is not None and k != ref.key]
    ev_rows = stats.evaluate(prep.truth, preds, pairs=row_pairs, groups=groups, **kw)
    for k in rows:
        prep.table.append(
            {
                "key": k,
                "members": groups.get(k, [k]),
                "metrics": {m: v.to_dict() for m, v in ev_rows.metrics[k].items()},
                "vs_reference": None
                if ref is None or k == ref.key
                else ev_rows.difference((k, ref.key)),
            }
        )


def seed_summary(runs: list[ModelRun]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    groups: dict[str, list[ModelRun]] = {}
    for r in runs:
        if r.status == "ok" and r.metrics:
            groups.setdefault(r.group or r.key, []).append(r)
    for base, group in groups.items():
        if len(group) < 2:
            continue
        out[base] = {
            "seeds": [g.seed for g in group],
            **{
                m: stats.seed_spread([g.metrics[m]["estimate"] for g in group if g.metrics])
                for m in stats.METRICS
            },
        }
    return out
