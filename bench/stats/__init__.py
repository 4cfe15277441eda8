"""Test-set statistics: pooled metrics, their bootstrap CIs, paired differences, seed spread.

Decisions (docs/statistics.md has the reasoning and the measured costs):

- Metrics are pooled over test queries (one per user) on the original rating scale. Every
  metric is ``finish(mean(loss(pred - truth)))``: RMSE is ``sqrt`` of the mean squared error,
  MAE the mean absolute error. ``METRIC_TABLE`` lists them; statistics, the runner, compare
  and report iterate it, so a new metric of that form is one row there.
- **One resampling for every model.** ``evaluate`` takes every model's predictions at once,
  stacks their per-query losses into one (n, columns) matrix and resamples the test queries
  once: each batch of resamples is a matrix of multinomial counts (resample x query) applied
  to all columns with one matrix product. Every model, metric and paired difference is
  therefore read off the same resamples, and a model adds one column, not a bootstrap.
  The resamples depend only on ``(n, n_resamples, seed)``, never on the data.
- Intervals (``method``): ``"bca"``, ``"percentile"`` and ``"basic"`` on exact multinomial
  resamples, as ``scipy.stats.bootstrap`` defines them (the tests check agreement within
  Monte-Carlo error). BCa's jackknife is exact and O(n) here: every statistic is a smooth
  function of column means, so the leave-one-out means are ``(S - x_i) / (n - 1)``.
  ``"normal"`` is the percentile interval of the bootstrap distribution's Gaussian limit: the
  resampled column means are drawn as ``mean + N(0, Σ/n)`` (Σ the plug-in covariance of the
  columns, so pairing is kept), then passed through the same ``finish`` and differences. The
  bootstrap distribution of a mean differs from that limit by O(1/sqrt(n)) in skewness,
  far below the Monte-Carlo error of 2,000 resamples once n is in the tens of thousands,
  and it costs O(n · columns²) instead of O(n · n_resamples).
- ``"auto"``: BCa for ``n <= BCA_MAX_N``, exact percentile for ``n <= EXACT_MAX_N``, normal
  above. Exact batches are sized so that live arrays stay under ``RESAMPLE_BUDGET_BYTES``.
- A bootstrap distribution without spread (one query, all errors equal, a model against
  itself, a constant per-query margin) gives the point estimate as both bounds, with method
  ``"degenerate"``.
- Seed-to-seed spread (training randomness) is reported by ``seed_spread``, separately.

The package: ``metrics`` (the metric table, input checks, point metrics), ``resample`` (the
resampling engine), ``intervals`` (intervals, p-values, Holm, verdicts), ``seeds`` (seed
spread); this module holds ``evaluate``, which reads ``METRIC_TABLE`` from here.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict, Unpack

import numpy as np
from numpy.typing import ArrayLike, NDArray

from bench.stats.intervals import (
    VERDICTS,
    Interval,
    bootstrap_intervals,
    bootstrap_p_values,
    holm,
    verdict,
)
from bench.stats.metrics import METRIC_TABLE, METRICS, Metric, check_truth, errors, mae, rmse
from bench.stats.resample import (
    BCA_MAX_N,
    EXACT_MAX_N,
    METHODS,
    RESAMPLE_BUDGET_BYTES,
    check_options,
    design_effects,
    exact_means,
    normal_means,
    resample_batch,
    resolve_method,
    unit_sums,
)
from bench.stats.seeds import seed_spread, with_seeds

__all__ = [
    "BCA_MAX_N",
    "EXACT_MAX_N",
    "METHODS",
    "METRICS",
    "METRIC_TABLE",
    "RESAMPLE_BUDGET_BYTES",
    "VERDICTS",
    "Evaluation",
    "Interval",
    "Metric",
    "ResampleOptions",
    "evaluate",
    "holm",
    "mae",
    "metric_cis",
    "paired_diff_cis",
    "resample_batch",
    "rmse",
    "seed_spread",
    "verdict",
]


@dataclass(frozen=True)
class Evaluation:
    """Every model's metrics and every asked-for paired difference, from one resampling."""

    metrics: dict[str, dict[str, Interval]]  # model or seed group -> metric -> Interval
    diffs: dict[tuple[str, str], dict[str, Interval]]  # (a, b) -> metric -> a - b
    method: str  # the resolved method (an Interval may say "degenerate" or fall back)
    n: int  # test queries
    n_units: int = 0  # resampled units: users when ``units`` was given, else queries
    p_values: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)
    p_adjusted: dict[tuple[str, str], dict[str, float]] = field(default_factory=dict)  # Holm
    verdicts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    design_effect: dict[str, dict[str, float]] = field(default_factory=dict)  # model -> metric

    def difference(self, pair: tuple[str, str]) -> dict[str, dict[str, Any]]:
        """The JSON record of one paired difference: per metric its interval, p-value,
        Holm-adjusted p-value and verdict (what results files and compare tables carry)."""
        return {
            k: {
                **iv.to_dict(),
                "p_value": self.p_values[pair][k],
                "p_adjusted": self.p_adjusted[pair][k],
                "verdict": self.verdicts[pair][k],
            }
            for k, iv in self.diffs[pair].items()
        }


def evaluate(
    truth: ArrayLike,
    preds: Mapping[str, ArrayLike],
    *,
    pairs: Sequence[tuple[str, str]] = (),
    units: ArrayLike | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    method: str = "auto",
    min_units: int = 1,
) -> Evaluation:
    """CIs of every metric of every model in ``preds`` ({name: (n,) predictions}) and of the
    paired differences ``metric(a) - metric(b)`` for each (a, b) in ``pairs``, all read off one
    resampling of the test units (see the module docstring for the methods).

    - ``units`` (n,): the unit each query belongs to (its user). Units are resampled whole
      (a cluster bootstrap), as a user's several test targets are correlated; the design
      effect of each model's metrics is reported. None: every query is its own unit.
    - ``groups``: {name: [member, ...]} seeds of one model; the group's statistic is the
      mean over its members, its interval adds the between-seed variance
      (``bench.stats.seeds.with_seeds``). A pair may name a group.
    - p-values of every pair are Holm-adjusted per metric across ``pairs`` (the family);
      ``verdicts`` read the adjusted p-value at 1 - ``confidence``, and say "too few
      queries" when there are fewer than ``min_units`` units.

    Raises ValueError on bad arrays (naming the model) or an unknown pair member,
    ConfigError on bad options.
    """
    check_options(n_resamples, confidence, method)
    t = check_truth(truth)
    names = list(preds)
    groups = {g: list(ms) for g, ms in (groups or {}).items()}
    for g, members in groups.items():
        if not members or any(m not in preds for m in members):
            raise ValueError(f"seed group {g!r} names models without predictions: {members}")
    for pair in pairs:
        for side in pair:
            if side not in preds and side not in groups:
                raise ValueError(f"paired difference names {side!r}, which has no predictions")
    n_met = len(METRIC_TABLE)
    n = t.size
    # (n, K * n_met) per-query losses: column k * n_met + j is metric j of model k
    cols = np.empty((n, len(names) * n_met), dtype=np.float64, order="F")
    for k, name in enumerate(names):
        e = errors(t, preds[name], name)
        for j, m in enumerate(METRIC_TABLE):
            cols[:, k * n_met + j] = m.loss(e)
    by_unit = unit_sums(cols, units)
    sums, sizes = by_unit.sums, by_unit.sizes
    g = sums.shape[0]
    chosen = resolve_method(method, g)
    rng = np.random.default_rng(seed)

    def member_stats(means: NDArray[np.float64]) -> NDArray[np.float64]:
        out = np.empty_like(means)
        for j, m in enumerate(METRIC_TABLE):
            out[..., j::n_met] = m.finish(means[..., j::n_met])
        return out

    def block(per_model: NDArray[np.float64], key: str) -> NDArray[np.float64]:
        # (..., n_met) the statistics of a model, or the mean of a seed group's members
        if key in groups:
            idx = [names.index(m) * n_met for m in groups[key]]
            return np.mean([per_model[..., i : i + n_met] for i in idx], axis=0)
        i = names.index(key) * n_met
        return per_model[..., i : i + n_met]

    keys = names + list(groups)

    def stats_of(means: NDArray[np.float64]) -> NDArray[np.float64]:
        # (..., K * n_met) pooled column means -> (..., S) statistics: every metric of
        # every model and group, then every pair's differences
        per_model = member_stats(means)
        parts = [block(per_model, k) for k in keys]
        parts += [block(per_model, a) - block(per_model, b) for a, b in pairs]
        return np.concatenate(parts, axis=-1)

    total = sums.sum(axis=0)
    n_queries = float(n if sizes is None else sizes.sum())
    theta = stats_of(total / n_queries)
    jack = None
    if g == 1:  # nothing to resample: every interval is the point (degenerate)
        dist = np.repeat(theta[None, :], 2, axis=0)
        chosen = "percentile"
    else:
        draw = normal_means if chosen == "normal" else exact_means
        dist = stats_of(draw(by_unit, n_resamples, rng))
        if chosen == "bca":  # (G, S) leave-one-unit-out statistics
            if sizes is None:
                jack = stats_of((total - sums) / (n_queries - 1.0))
            else:
                jack = stats_of((total - sums) / (n_queries - sizes)[:, None])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ivs = bootstrap_intervals(theta, dist, jack, confidence, chosen)
        p_all = bootstrap_p_values(theta, dist, chosen)

    # seed groups: the test-set spread of the seed average plus the between-seed spread
    per_seed_full = member_stats(total / n_queries)
    boot_sd = dist.std(axis=0)
    n_keys = len(keys)
    for s_idx in range(dist.shape[1]):
        k_or_p = s_idx // n_met
        j = s_idx % n_met
        b: str | None
        if k_or_p < n_keys:
            a, b = keys[k_or_p], None
        else:
            a, b = pairs[k_or_p - n_keys]
        if a not in groups and (b is None or b not in groups):
            continue
        # each side's per-seed values of this statistic (metric j)
        sets = [
            np.array([block(per_seed_full, m)[j] for m in groups.get(side, [side])])
            for side in ([a] if b is None else [a, b])
        ]
        ivs[s_idx], p_all[s_idx] = with_seeds(
            float(theta[s_idx]), float(boot_sd[s_idx]), sets, confidence
        )

    metrics = {
        key: {m.name: ivs[k * n_met + j] for j, m in enumerate(METRIC_TABLE)}
        for k, key in enumerate(keys)
    }
    base = n_keys * n_met
    diffs: dict[tuple[str, str], dict[str, Interval]] = {}
    p_values: dict[tuple[str, str], dict[str, float]] = {}
    for p_i, pair in enumerate(pairs):
        sl = range(base + p_i * n_met, base + (p_i + 1) * n_met)
        diffs[pair] = {m.name: ivs[i] for m, i in zip(METRIC_TABLE, sl, strict=True)}
        p_values[pair] = {m.name: float(p_all[i]) for m, i in zip(METRIC_TABLE, sl, strict=True)}
    p_adjusted: dict[tuple[str, str], dict[str, float]] = {pair: {} for pair in pairs}
    for m in METRIC_TABLE:
        adj = holm([p_values[pair][m.name] for pair in pairs])
        for pair, v in zip(pairs, adj, strict=True):
            p_adjusted[pair][m.name] = float(v)
    alpha = 1.0 - confidence
    verdicts = {
        pair: {
            k: verdict(diffs[pair][k], p_adjusted[pair][k], alpha=alpha, enough=g >= min_units)
            for k in METRICS
        }
        for pair in pairs
    }
    deff = design_effects(cols, by_unit)
    design_effect = {
        name: {m.name: float(deff[k * n_met + j]) for j, m in enumerate(METRIC_TABLE)}
        for k, name in enumerate(names)
    }
    return Evaluation(
        metrics=metrics,
        diffs=diffs,
        method=chosen,
        n=n,
        n_units=g,
        p_values=p_values,
        p_adjusted=p_adjusted,
        verdicts=verdicts,
        design_effect=design_effect,
    )


class ResampleOptions(TypedDict, total=False):
    """The resampling options of ``evaluate`` that ``metric_cis`` and ``paired_diff_cis``
    pass on (keyword-only; ``evaluate``'s defaults when left out)."""

    n_resamples: int  # default 2000
    confidence: float  # default 0.95
    seed: int  # default 0
    method: str  # default "auto"


def metric_cis(
    truth: ArrayLike, pred: ArrayLike, **options: Unpack[ResampleOptions]
) -> dict[str, Interval]:
    """Bootstrap CIs of every metric (``{"rmse": Interval, "mae": Interval}``) of one model
    over its (n,) test queries; ``evaluate`` with one model. Same (n, seed) gives the same
    resampled queries for every model. Raises ValueError on bad arrays, ConfigError on bad
    options."""
    return evaluate(truth, {"pred": pred}, **options).metrics["pred"]


def paired_diff_cis(
    truth: ArrayLike, pred_a: ArrayLike, pred_b: ArrayLike, **options: Unpack[ResampleOptions]
) -> dict[str, Interval]:
    """Paired-bootstrap CIs of metric(a) - metric(b) over (n,) queries; ``evaluate`` with
    one pair. Both models are scored on the same resampled queries in every resample, so the
    between-query variance cancels. A negative upper bound means a is really better (lower
    error); see ``verdict``. Raises ValueError on bad arrays (either model), ConfigError on
    bad options."""
    pair = ("pred_a", "pred_b")
    ev = evaluate(truth, {"pred_a": pred_a, "pred_b": pred_b}, pairs=[pair], **options)
    return ev.diffs[pair]
