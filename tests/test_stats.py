"""Behaviour of bench.stats on hand-computed numbers and seeded simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.errors import ConfigError
from bench.stats import (
    BCA_MAX_N,
    EXACT_MAX_N,
    RESAMPLE_BUDGET_BYTES,
    Evaluation,
    Interval,
    evaluate,
    holm,
    mae,
    metric_cis,
    paired_diff_cis,
    resample_batch,
    rmse,
    seed_spread,
    verdict,
)

# errors pred - truth = [1, 0, 2, -1]: squares [1, 0, 4, 1], absolutes [1, 0, 2, 1]
TRUTH4 = np.array([1.0, 2.0, 3.0, 4.0])
PRED4 = np.array([2.0, 2.0, 5.0, 3.0])


def _model(n: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth, pred) float32 with Gaussian errors of scale sigma; (n,) each."""
    rng = np.random.default_rng(seed)
    truth = rng.uniform(0.5, 5.0, n).astype(np.float32)
    pred = (truth + rng.normal(0.0, sigma, n)).astype(np.float32)
    return truth, pred


# --------------------------------------------------------------------------- point metrics


def test_rmse_mae_on_hand_example() -> None:
    assert rmse(TRUTH4, PRED4) == pytest.approx(math.sqrt(6 / 4), rel=1e-15)
    assert mae(TRUTH4, PRED4) == pytest.approx(4 / 4, rel=1e-15)
    assert isinstance(rmse(TRUTH4, PRED4), float)


@pytest.mark.parametrize(
    ("truth", "pred", "match"),
    [
        (TRUTH4, PRED4[:3], "shape mismatch"),
        (np.array([]), np.array([]), "empty"),
        (TRUTH4, np.array([2.0, np.nan, 5.0, 3.0]), "1 missing or non-finite"),
        (TRUTH4, np.array([2.0, 2.0, np.inf, 3.0]), "first at query 2"),
        (TRUTH4.reshape(2, 2), PRED4.reshape(2, 2), "must be 1-D"),
        (np.array([1.0, np.nan, 3.0, 4.0]), PRED4, "truth has 1 non-finite"),
    ],
)
def test_metrics_reject_bad_input(truth: np.ndarray, pred: np.ndarray, match: str) -> None:
    for fn in (rmse, mae, metric_cis):
        with pytest.raises(ValueError, match=match):
            fn(truth, pred)


def test_nan_prediction_raises_in_paired_diff_naming_the_model() -> None:
    bad = PRED4.copy()
    bad[1] = np.nan
    with pytest.raises(ValueError, match="pred_b has 1 missing"):
        paired_diff_cis(TRUTH4, PRED4, bad)


def test_unknown_method_lists_known_ones() -> None:
    with pytest.raises(ConfigError, match="known: auto, bca, percentile, basic"):
        metric_cis(TRUTH4, PRED4, method="studentized")
    with pytest.raises(ConfigError, match="confidence"):
        metric_cis(TRUTH4, PRED4, confidence=95)
    with pytest.raises(ConfigError, match="n_resamples"):
        paired_diff_cis(TRUTH4, PRED4, PRED4, n_resamples=0)


# --------------------------------------------------------------------------- metric CIs


def test_ci_contains_estimate_and_narrows_with_n() -> None:
    widths = {}
    for n in (200, 20_000):
        truth, pred = _model(n, 1.0, seed=3)
        cis = metric_cis(truth, pred, n_resamples=1000, seed=0)
        assert cis["rmse"].estimate == pytest.approx(rmse(truth, pred), rel=1e-12)
        assert cis["mae"].estimate == pytest.approx(mae(truth, pred), rel=1e-12)
        for iv in cis.values():
            assert iv.low < iv.estimate < iv.high
        widths[n] = {k: iv.high - iv.low for k, iv in cis.items()}
    # width ~ 1/sqrt(n): 100x the queries gives ~10x narrower intervals
    for k in ("rmse", "mae"):
        assert 5 < widths[200][k] / widths[20_000][k] < 20


def test_auto_method_is_bca_up_to_threshold_then_percentile() -> None:
    truth, pred = _model(BCA_MAX_N + 1, 1.0, seed=4)
    small = metric_cis(truth[:BCA_MAX_N], pred[:BCA_MAX_N], n_resamples=200)
    large = metric_cis(truth, pred, n_resamples=200)
    assert {iv.method for iv in small.values()} == {"bca"}
    assert {iv.method for iv in large.values()} == {"percentile"}
    for forced in ("bca", "percentile", "basic"):
        cis = metric_cis(truth[:500], pred[:500], n_resamples=200, method=forced)
        assert {iv.method for iv in cis.values()} == {forced}


def test_same_seed_same_intervals_other_seed_differs() -> None:
    truth, pred = _model(300, 1.0, seed=5)
    first = metric_cis(truth, pred, n_resamples=500, seed=7)
    assert metric_cis(truth, pred, n_resamples=500, seed=7) == first
    other = metric_cis(truth, pred, n_resamples=500, seed=8)
    assert other["rmse"].low != first["rmse"].low


def test_models_share_resamples_for_same_n_and_seed() -> None:
    # With truth 0, model b's errors are exactly twice model a's, so on the *same*
    # resampled queries every bootstrap RMSE/MAE of b is exactly twice a's.
    _, pred_a = _model(300, 1.0, seed=6)
    truth = np.zeros_like(pred_a, dtype=np.float64)
    pred_b = 2.0 * pred_a.astype(np.float64)
    cis_a = metric_cis(truth, pred_a, n_resamples=500, seed=1, method="percentile")
    cis_b = metric_cis(truth, pred_b, n_resamples=500, seed=1, method="percentile")
    for k in ("rmse", "mae"):
        assert cis_b[k].low == 2 * cis_a[k].low
        assert cis_b[k].high == 2 * cis_a[k].high


@pytest.mark.filterwarnings("error")  # no scipy DegenerateDataWarning / numpy warnings leak
def test_degenerate_cases_return_point_estimate_without_nan() -> None:
    one = metric_cis([3.0], [4.5])
    assert one["rmse"] == Interval(1.5, 1.5, 1.5, "degenerate")
    assert one["mae"] == Interval(1.5, 1.5, 1.5, "degenerate")
    # every error has magnitude 0.5: every resample has RMSE = MAE = 0.5
    truth = np.arange(40, dtype=np.float64) % 5
    pred = truth + np.where(np.arange(40) % 2 == 0, 0.5, -0.5)
    for method in ("auto", "bca", "percentile", "basic"):
        cis = metric_cis(truth, pred, n_resamples=200, method=method)
        for iv in cis.values():
            assert iv == Interval(0.5, 0.5, 0.5, "degenerate")


def test_interval_to_dict() -> None:
    iv = Interval(estimate=1.0, low=0.5, high=1.5, method="bca")
    assert iv.to_dict() == {"estimate": 1.0, "low": 0.5, "high": 1.5, "method": "bca"}


def test_coverage_of_true_rmse_and_mae() -> None:
    # Errors ~ N(0, 1): true RMSE = 1, true MAE = sqrt(2 / pi). 200 samples of 60 queries.
    reps, n = 200, 60
    rng = np.random.default_rng(2024)
    truth = np.zeros(n)
    hits = {"rmse": 0, "mae": 0}
    true = {"rmse": 1.0, "mae": math.sqrt(2 / math.pi)}
    for rep in range(reps):
        cis = metric_cis(truth, rng.normal(0.0, 1.0, n), n_resamples=999, seed=rep)
        for k, iv in cis.items():
            hits[k] += iv.low <= true[k] <= iv.high
    for k in hits:
        assert 0.85 <= hits[k] / reps <= 1.0, (k, hits[k] / reps)


# --------------------------------------------------------------------------- paired diffs


@pytest.mark.filterwarnings("error")
def test_paired_diff_of_model_against_itself_is_exactly_zero() -> None:
    truth, pred = _model(2000, 1.0, seed=9)
    for method in ("auto", "percentile"):
        diff = paired_diff_cis(truth, pred, pred.copy(), n_resamples=300, method=method)
        for iv in diff.values():
            assert iv == Interval(0.0, 0.0, 0.0, "degenerate")
            assert verdict(iv) == "no clear difference"


def test_constant_margin_on_every_query_is_better_and_reverse_is_worse() -> None:
    rng = np.random.default_rng(10)
    n, margin = 500, 0.1
    truth = rng.uniform(1.0, 5.0, n)
    err = rng.choice([-1.0, 1.0], n) * rng.uniform(0.2, 1.5, n)  # |err| > margin
    pred_b = truth + err
    pred_a = truth + np.sign(err) * (np.abs(err) - margin)  # |err_a| = |err_b| - margin
    diff = paired_diff_cis(truth, pred_a, pred_b, n_resamples=500)
    assert verdict(diff["rmse"]) == "better"
    assert verdict(diff["mae"]) == "better"
    # the MAE difference is -margin on every query: no sampling variability at all
    assert diff["mae"].method == "degenerate"
    assert diff["mae"].estimate == pytest.approx(-margin, abs=1e-12)
    assert diff["mae"].low == diff["mae"].high == diff["mae"].estimate
    reverse = paired_diff_cis(truth, pred_b, pred_a, n_resamples=500)
    assert verdict(reverse["rmse"]) == verdict(reverse["mae"]) == "worse"


def test_tiny_random_perturbation_is_no_clear_difference() -> None:
    truth, pred_a = _model(1000, 1.0, seed=11)
    pred_b = pred_a + np.random.default_rng(12).normal(0.0, 1e-3, pred_a.size)
    diff = paired_diff_cis(truth, pred_a, pred_b, n_resamples=1000)
    for iv in diff.values():
        assert iv.method == "bca"
        assert iv.low < 0 < iv.high
        assert verdict(iv) == "no clear difference"


def test_pairing_detects_a_difference_that_separate_cis_cannot() -> None:
    # b's errors are 0.98x a's on every query: the marginal CIs overlap, yet on the same
    # resampled queries a is worse every time, and the paired bootstrap says so.
    truth, pred_a = _model(2000, 1.0, seed=13)
    truth = truth.astype(np.float64)
    pred_b = truth + 0.98 * (pred_a - truth)
    ci_a = metric_cis(truth, pred_a, n_resamples=1000)["rmse"]
    ci_b = metric_cis(truth, pred_b, n_resamples=1000)["rmse"]
    assert ci_b.high > ci_a.low  # marginal intervals overlap
    diff = paired_diff_cis(truth, pred_a, pred_b, n_resamples=1000)
    assert diff["rmse"].estimate == pytest.approx(ci_a.estimate - ci_b.estimate, rel=1e-12)
    assert verdict(diff["rmse"]) == "worse"
    assert verdict(diff["mae"]) == "worse"


@pytest.mark.filterwarnings("error")
def test_bca_failure_falls_back_to_percentile_on_same_resamples() -> None:
    # Two queries, errors a = (1, 0), b = (1.5, 0.5). Leave-one-out RMSE diffs are both
    # 1 - 1.5 = 0 - 0.5 = -0.5, so BCa's acceleration is 0/0; resamples give -0.5 (one query
    # twice) or sqrt(0.5) - sqrt(1.25) (both queries): the percentile interval spans them.
    diff = paired_diff_cis([0.0, 0.0], [1.0, 0.0], [1.5, 0.5], n_resamples=500)
    both = math.sqrt(0.5) - math.sqrt(1.25)
    assert diff["rmse"] == Interval(pytest.approx(both), -0.5, pytest.approx(both), "percentile")
    assert diff["mae"] == Interval(-0.5, -0.5, -0.5, "degenerate")  # |a| - |b| = -0.5 each


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (-0.3, -0.1, "better"),
        (0.1, 0.3, "worse"),
        (-0.1, 0.1, "no clear difference"),
        (0.0, 0.2, "no clear difference"),
        (-0.2, 0.0, "no clear difference"),
    ],
)
def test_verdict(low: float, high: float, expected: str) -> None:
    assert verdict(Interval((low + high) / 2, low, high, "percentile")) == expected


# --------------------------------------------------------------------------- seeds


def test_seed_spread_on_hand_example() -> None:
    # mean 2.5; squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5; ddof=1 -> 5/3
    out = seed_spread([1.0, 2.0, 3.0, 4.0])
    assert out == {
        "mean": 2.5,
        "std": pytest.approx(math.sqrt(5 / 3)),
        "min": 1.0,
        "max": 4.0,
        "n": 4,
    }
    assert seed_spread([0.83]) == {"mean": 0.83, "std": 0.0, "min": 0.83, "max": 0.83, "n": 1}
    with pytest.raises(ValueError, match="at least one"):
        seed_spread([])
    with pytest.raises(ValueError, match="non-finite"):
        seed_spread([0.8, float("nan")])


# --------------------------------------------------------------------------- one resampling


def _scipy_ci(errors: np.ndarray, stat: str, method: str, n_resamples: int) -> tuple[float, float]:
    from scipy import stats as sps

    def rmse_of(e: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.sqrt(np.mean(e * e, axis=axis))

    def mae_of(e: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean(np.abs(e), axis=axis)

    res = sps.bootstrap(
        (errors,),
        rmse_of if stat == "rmse" else mae_of,
        n_resamples=n_resamples,
        method=method,
        vectorized=True,
        rng=np.random.default_rng(99),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


@pytest.mark.parametrize(
    ("method", "scipy_method", "n"),
    [
        ("percentile", "percentile", 400),
        ("basic", "basic", 400),
        ("bca", "BCa", 400),
        ("normal", "percentile", 3000),
    ],
)
def test_intervals_agree_with_scipy_bootstrap_within_monte_carlo_error(
    method: str, scipy_method: str, n: int
) -> None:
    # skewed errors (a Gamma tail) so that BCa and percentile really differ
    rng = np.random.default_rng(21)
    truth = np.zeros(n)
    pred = rng.gamma(2.0, 0.5, n) * rng.choice([-1.0, 1.0], n)
    ours = metric_cis(truth, pred, n_resamples=4000, method=method, seed=5)
    for k in ("rmse", "mae"):
        lo, hi = _scipy_ci(pred - truth, k, scipy_method, 4000)
        width = hi - lo
        # a 2.5% quantile of 4,000 resamples has a Monte-Carlo sd of ~0.011 widths; two
        # independent ones differ by ~0.015 widths: 0.08 is over 5 sd
        assert abs(ours[k].low - lo) < 0.08 * width, (k, ours[k], lo, hi)
        assert abs(ours[k].high - hi) < 0.08 * width, (k, ours[k], lo, hi)
        assert ours[k].method == method


@pytest.mark.parametrize("method", ["percentile", "bca", "normal"])
def test_one_evaluation_equals_separate_calls(method: str) -> None:
    # the resamples depend on (n, n_resamples, seed) only: evaluating three models and two
    # pairs at once gives exactly what one call per model or pair gives
    truth, pred_a = _model(700, 1.0, seed=30)
    _, pred_b = _model(700, 1.1, seed=31)
    pred_c = (pred_a + pred_b) / 2
    ev = evaluate(
        truth,
        {"a": pred_a, "b": pred_b, "c": pred_c},
        pairs=[("a", "c"), ("b", "c")],
        n_resamples=500,
        seed=4,
        method=method,
    )
    assert ev.n == 700 and ev.method == method
    if method == "normal":  # draws are joint over all columns: equal within Monte-Carlo error
        for key, pred in (("a", pred_a), ("b", pred_b)):
            alone = metric_cis(truth, pred, n_resamples=500, seed=4, method=method)
            for k in ("rmse", "mae"):
                width = alone[k].high - alone[k].low
                assert ev.metrics[key][k].estimate == alone[k].estimate
                assert abs(ev.metrics[key][k].low - alone[k].low) < 0.15 * width
        return

    def same(x: dict[str, Interval], y: dict[str, Interval]) -> None:
        # equal up to the summation order of one matrix product with more columns
        for k in ("rmse", "mae"):
            assert x[k].method == y[k].method
            for f in ("estimate", "low", "high"):
                assert getattr(x[k], f) == pytest.approx(getattr(y[k], f), rel=1e-12, abs=1e-12)

    for key, pred in (("a", pred_a), ("b", pred_b), ("c", pred_c)):
        same(ev.metrics[key], metric_cis(truth, pred, n_resamples=500, seed=4, method=method))
    for a, pred in (("a", pred_a), ("b", pred_b)):
        alone = paired_diff_cis(truth, pred, pred_c, n_resamples=500, seed=4, method=method)
        same(ev.diffs[(a, "c")], alone)


def test_auto_uses_the_gaussian_limit_above_exact_max_n_and_it_matches_exact() -> None:
    truth, pred_a = _model(EXACT_MAX_N + 1, 1.0, seed=40)
    pred_b = pred_a + np.random.default_rng(41).normal(0.0, 0.3, pred_a.size)
    kw: dict = {"pairs": [("a", "b")], "n_resamples": 1000, "seed": 2}
    auto = evaluate(truth, {"a": pred_a, "b": pred_b}, **kw)
    exact = evaluate(truth, {"a": pred_a, "b": pred_b}, method="percentile", **kw)
    assert auto.method == "normal" and exact.method == "percentile"
    assert {iv.method for iv in auto.metrics["a"].values()} == {"normal"}
    for got, ref in [
        *((auto.metrics[m][k], exact.metrics[m][k]) for m in "ab" for k in ("rmse", "mae")),
        *((auto.diffs[("a", "b")][k], exact.diffs[("a", "b")][k]) for k in ("rmse", "mae")),
    ]:
        width = ref.high - ref.low
        assert got.estimate == pytest.approx(ref.estimate, rel=1e-12)
        assert abs(got.low - ref.low) < 0.1 * width and abs(got.high - ref.high) < 0.1 * width


@pytest.mark.filterwarnings("error")
def test_normal_limit_is_seeded_and_degenerate_where_the_bootstrap_is() -> None:
    truth, pred = _model(2000, 1.0, seed=50)
    kw: dict = {"n_resamples": 300, "method": "normal"}
    first = metric_cis(truth, pred, seed=1, **kw)
    assert metric_cis(truth, pred, seed=1, **kw) == first
    assert metric_cis(truth, pred, seed=2, **kw)["rmse"].low != first["rmse"].low
    same = paired_diff_cis(truth, pred, pred.copy(), **kw)
    assert same["rmse"] == same["mae"] == Interval(0.0, 0.0, 0.0, "degenerate")
    flat = metric_cis(np.zeros(50), np.full(50, 0.5), **kw)
    assert flat["rmse"] == Interval(0.5, 0.5, 0.5, "degenerate")
    # |err_a| = |err_b| - 0.1 on every query: the MAE difference has no variability at all
    err = np.random.default_rng(51).uniform(0.2, 1.5, 2000)
    margin = paired_diff_cis(np.zeros(2000), err - 0.1, err, **kw)["mae"]
    assert margin.method == "degenerate" and margin.estimate == pytest.approx(-0.1)


def test_evaluate_names_the_bad_model_and_unknown_pairs() -> None:
    bad = PRED4.copy()
    bad[2] = np.inf
    with pytest.raises(ValueError, match="my-model has 1 missing"):
        evaluate(TRUTH4, {"ok": PRED4, "my-model": bad})
    with pytest.raises(ValueError, match="'nope', which has no predictions"):
        evaluate(TRUTH4, {"ok": PRED4}, pairs=[("ok", "nope")])


def test_resample_batches_stay_within_the_memory_budget() -> None:
    for n in (10, 5_000, 50_000, 1_000_000):
        b = resample_batch(n, 2000)
        assert 1 <= b <= 2000
        assert b == 1 or b * n * 12 <= RESAMPLE_BUDGET_BYTES


# --------------------------------------------------------------------------- verdicts


def test_holm_on_a_hand_example() -> None:
    # sorted p: 0.01, 0.03, 0.04, 0.5 -> x4, x3, x2, x1 = 0.04, 0.09, 0.08, 0.5 -> running max
    adj = holm([0.01, 0.04, 0.03, 0.5])
    assert adj.tolist() == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.6, 0.6]).tolist() == [1.0, 1.0]
    assert holm([]).size == 0


def _clustered(n_users: int, per_user: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Errors with a shared user effect: e = a_u + eps, sd(a) = 0.8, sd(eps) = 0.6; true
    RMSE 1 (population), intra-user correlation of the errors 0.64."""
    user = np.repeat(np.arange(n_users), per_user)
    err = rng.normal(0.0, 0.8, n_users)[user] + rng.normal(0.0, 0.6, user.size)
    return np.zeros(user.size), err, user


def _rmse_covers_one(ev: Evaluation, model: str) -> bool:
    """Whether `model`'s RMSE interval in `ev` holds the true RMSE of these designs, 1.0."""
    iv = ev.metrics[model]["rmse"]
    return bool(iv.low <= 1.0 <= iv.high)


def test_cluster_bootstrap_covers_and_the_query_bootstrap_is_too_narrow() -> None:
    rng = np.random.default_rng(60)
    hits = {"users": 0, "queries": 0}
    reps = 150
    for rep in range(reps):
        truth, err, user = _clustered(80, 5, rng)
        kw: dict = {"n_resamples": 400, "seed": rep, "method": "percentile"}
        by_user = evaluate(truth, {"m": err}, units=user, **kw)
        by_query = evaluate(truth, {"m": err}, **kw)
        assert by_user.n_units == 80 and by_query.n_units == 400
        hits["users"] += _rmse_covers_one(by_user, "m")
        hits["queries"] += _rmse_covers_one(by_query, "m")
    assert 0.88 <= hits["users"] / reps <= 1.0, hits
    assert hits["queries"] / reps < 0.85, hits  # ignoring the correlation: too narrow


def test_design_effect_is_one_without_clusters_and_large_with_them() -> None:
    rng = np.random.default_rng(61)
    truth, err, user = _clustered(200, 5, rng)
    plain = evaluate(truth, {"m": err}, n_resamples=200)
    assert plain.design_effect["m"]["rmse"] == pytest.approx(1.0)
    clustered = evaluate(truth, {"m": err}, units=user, n_resamples=200)
    # 5 targets with strongly correlated errors: far from 1, at most the cluster size
    assert 1.5 < clustered.design_effect["m"]["rmse"] <= 5.0
    # one target per user: the units change nothing
    one = evaluate(truth[::5], {"m": err[::5]}, units=user[::5], n_resamples=200, seed=3)
    assert one.metrics == evaluate(truth[::5], {"m": err[::5]}, n_resamples=200, seed=3).metrics


def test_verdicts_use_holm_adjusted_p_values() -> None:
    # ten models each a little better than the reference: every unadjusted interval excludes
    # 0 for the strong one only after adjustment; the weak ones are decided by chance alone
    rng = np.random.default_rng(62)
    n = 3000
    truth = np.zeros(n)
    ref = rng.normal(0.0, 1.0, n)
    preds = {"ref": ref, "strong": 0.8 * ref}
    for k in range(10):
        preds[f"weak{k}"] = ref + rng.normal(0.0, 0.05, n) * np.sign(ref) * -1 * (k == 0)
    pairs = [(k, "ref") for k in preds if k != "ref"]
    ev = evaluate(truth, preds, pairs=pairs, n_resamples=2000, seed=1)
    assert ev.verdicts[("strong", "ref")]["rmse"] == "better"
    assert ev.p_adjusted[("strong", "ref")]["rmse"] <= ev.p_values[("strong", "ref")]["rmse"] * 11
    for pair in pairs:
        for k in ("rmse", "mae"):
            assert ev.p_adjusted[pair][k] >= ev.p_values[pair][k]
            decided = ev.verdicts[pair][k] in ("better", "worse")
            assert decided == (ev.p_adjusted[pair][k] < 0.05)
    # identical models: p = 1, never decided
    assert ev.p_values[("weak1", "ref")]["rmse"] == 1.0
    assert ev.verdicts[("weak1", "ref")]["rmse"] == "no clear difference"


def test_an_unadjusted_decision_can_be_undone_by_the_correction() -> None:
    rng = np.random.default_rng(63)
    n = 4000
    truth = np.zeros(n)
    ref = rng.normal(0.0, 1.0, n)
    # a small real gain, decided alone (p ~ 0.01) but not among many comparisons
    gain = ref * (1 - 0.012) + rng.normal(0.0, 0.05, n)
    preds = {"ref": ref, "gain": gain, **{f"same{k}": ref.copy() for k in range(9)}}
    alone = evaluate(truth, {"ref": ref, "gain": gain}, pairs=[("gain", "ref")], seed=2)
    many = evaluate(truth, preds, pairs=[(k, "ref") for k in preds if k != "ref"], seed=2)
    p = alone.p_values[("gain", "ref")]["rmse"]
    assert p < 0.05 and alone.verdicts[("gain", "ref")]["rmse"] == "better", p
    assert many.p_adjusted[("gain", "ref")]["rmse"] == pytest.approx(min(1.0, 10 * p), rel=0.3)
    if many.p_adjusted[("gain", "ref")]["rmse"] >= 0.05:
        assert many.verdicts[("gain", "ref")]["rmse"] == "no clear difference"


def test_too_few_units_is_never_a_verdict() -> None:
    truth = np.zeros(6)
    a = np.array([0.1, 0.2, 0.1, 0.3, 0.2, 0.1])
    ev = evaluate(truth, {"a": a, "b": a + 1.0}, pairs=[("a", "b")], min_units=20)
    assert ev.verdicts[("a", "b")] == {"rmse": "too few queries", "mae": "too few queries"}
    one = evaluate([3.0], {"a": [4.0], "b": [3.5]}, pairs=[("a", "b")], min_units=20)
    assert one.verdicts[("a", "b")]["rmse"] == "too few queries"
    enough = evaluate(truth, {"a": a, "b": a + 1.0}, pairs=[("a", "b")], min_units=5)
    assert enough.verdicts[("a", "b")]["mae"] == "better"  # a constant margin on 6 users


def test_seed_groups_cover_the_expected_metric_over_seeds() -> None:
    # each seed scales the errors by 1 + g_s, g_s ~ N(0, 0.05): a seed's RMSE is 1 + g_s and
    # its expectation over seeds is 1. Three seeds; the between-seed spread (0.05) dominates
    # the test-set spread (~0.016 at 2,000 queries).
    rng = np.random.default_rng(64)
    reps, n = 150, 2000
    hits = {"seeds": 0, "test only": 0}
    for rep in range(reps):
        base = rng.normal(0.0, 1.0, n)
        members = {f"m@{s}": base * (1 + rng.normal(0.0, 0.05)) for s in range(3)}
        ev = evaluate(
            np.zeros(n),
            members,
            groups={"m": list(members)},
            n_resamples=300,
            seed=rep,
            method="percentile",
        )
        iv = ev.metrics["m"]["rmse"]
        assert iv.method == "seeds+bootstrap"
        assert iv.estimate == pytest.approx(
            np.mean([ev.metrics[k]["rmse"].estimate for k in members])
        )
        hits["seeds"] += iv.low <= 1.0 <= iv.high
        avg = evaluate(
            np.zeros(n), {"avg": np.mean(list(members.values()), axis=0)}, n_resamples=300
        )
        hits["test only"] += _rmse_covers_one(avg, "avg")
    assert 0.88 <= hits["seeds"] / reps <= 1.0, hits
    assert hits["test only"] / reps < 0.85, hits  # the seeds ignored: too narrow


def test_seed_group_against_a_reference() -> None:
    rng = np.random.default_rng(65)
    n = 1500
    truth = np.zeros(n)
    ref = rng.normal(0.0, 1.0, n)
    members = {f"m@{s}": 0.7 * ref + rng.normal(0.0, 0.05, n) for s in range(3)}
    ev = evaluate(
        truth,
        {"ref": ref, **members},
        groups={"m": list(members)},
        pairs=[("m", "ref"), ("m@0", "ref")],
        n_resamples=500,
    )
    d = ev.diffs[("m", "ref")]["rmse"]
    assert d.method == "seeds+bootstrap" and d.high < 0
    assert ev.verdicts[("m", "ref")]["rmse"] == "better"
    assert ev.diffs[("m@0", "ref")]["rmse"].method in ("bca", "percentile")
    with pytest.raises(ValueError, match="seed group 'x'"):
        evaluate(truth, {"ref": ref}, groups={"x": ["nope"]})
