"""The public conformance suite (predictors.testing): a correct model passes every check, and
a model broken in one way fails exactly the check for that way, with a reason naming it."""

from __future__ import annotations

import json
import random
import time
from typing import Any, ClassVar

import numpy as np
import pytest

from predictors.base import BasePredictor
from predictors.contract import Capabilities, FitReport
from predictors.testing import (
    CHECKS,
    QUICK_CHECKS,
    SCALE,
    CheckReport,
    check_predictor,
    synthetic_world,
)
from predictors.testing.randomness import OTHER_SEED
from predictors.types import HistoryBatch, TrainSet


# -- a correct plain model (no base class) and a correct BasePredictor ------------------
def _history_mean(batch: HistoryBatch, fallback: float) -> np.ndarray:
    n = batch.hist_lengths()
    sums = np.zeros(len(batch))
    np.add.at(sums, batch.hist_query(), batch.hist_rating.astype(np.float64))
    return np.where(n > 0, sums / np.maximum(n, 1), fallback)


class Plain:
    """Damped history mean: ``(sum r + d * mu) / (n + d)``; a plain class, no base class."""

    name = "plain"

    def __init__(self, *, damping: float = 2.0) -> None:
        self.damping = damping

    def get_config(self) -> dict[str, Any]:
        return {"damping": self.damping}

    def fit(self, train: TrainSet) -> Plain:
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        self.scale_ = train.scale
        return self

    def _raw(self, batch: HistoryBatch) -> np.ndarray:
        n = batch.hist_lengths()
        mean = _history_mean(batch, self.mu_)  # mu for an empty history
        weight = n / np.maximum(n + self.damping, 1e-12)  # 0/0 (no history, no damping) -> 0
        return weight * mean + (1.0 - weight) * self.mu_

    def predict(self, batch: HistoryBatch) -> np.ndarray:
        if not hasattr(self, "mu_"):
            raise RuntimeError(f"{self.name}: predict() before fit()")
        return self._raw(batch).astype(np.float32)


class SeededBase(BasePredictor):
    """History mean plus a per-item offset drawn from the run's seed (a seeded model)."""

    name = "seeded-base"
    capabilities = Capabilities(seeded=True)

    def __init__(self, *, noise: float = 0.1) -> None:
        self.noise = noise

    def _fit(self, train: TrainSet) -> FitReport:
        rng = np.random.default_rng(train.context.seed)
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        self.offset_ = rng.normal(0.0, self.noise, train.n_items)
        return FitReport(settings={"seed": train.context.seed})

    def _predict(self, batch: HistoryBatch):
        pred = _history_mean(batch, self.mu_) + self.offset_[batch.target_item]
        return pred, batch.hist_lengths() == 0


class UsesEmbeddings(BasePredictor):
    """History mean plus a small term from the target item's embedding; needs embeddings."""

    name = "uses-embeddings"
    capabilities = Capabilities(embeddings=True)

    def __init__(self) -> None:
        pass

    def _fit(self, train: TrainSet) -> None:
        if train.embeddings is None:
            raise ValueError("uses-embeddings needs item embeddings")
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        self.w_ = train.embeddings.vectors.mean(axis=1) * 0.1

    def _predict(self, batch: HistoryBatch):
        return _history_mean(batch, self.mu_) + self.w_[batch.target_item], np.zeros(
            len(batch), bool
        )


# -- broken models: each breaks one rule ----------------------------------------------
class WrongShape(Plain):
    name = "wrong-shape"

    def predict(self, batch):
        return super().predict(batch)[:, None]  # (B, 1)


class NaNOnEmpty(Plain):
    """The natural bug: the mean of an empty history, with no fallback."""

    name = "nan-on-empty"

    def _raw(self, batch):
        n = batch.hist_lengths()
        sums = np.zeros(len(batch))
        np.add.at(sums, batch.hist_query(), batch.hist_rating)
        with np.errstate(invalid="ignore"):
            return (sums / n).astype(np.float32)


class OutOfScale(Plain):
    name = "out-of-scale"

    def predict(self, batch):
        pred = super().predict(batch)
        return np.where(batch.user % 4 == 0, pred + 10.0, pred).astype(np.float32)


class NotSelf(Plain):
    name = "not-self"

    def fit(self, train):
        super().fit(train)
        return None


class SilentBeforeFit(Plain):
    name = "silent-before-fit"

    def predict(self, batch):
        if not hasattr(self, "mu_"):
            return np.full(len(batch), 3.0, dtype=np.float32)
        return super().predict(batch)


class GlobalRNG(Plain):
    name = "global-rng"

    def fit(self, train):
        super().fit(train)
        self.mu_ += float(np.random.normal(0.0, 0.01))  # noqa: NPY002 - the bug under test
        return self


class SeedsGlobal(Plain):
    """Deterministic, but by reseeding numpy's global RNG (someone else's state)."""

    name = "seeds-global"
    capabilities = Capabilities(seeded=True)

    def fit(self, train):
        super().fit(train)
        np.random.seed(train.context.seed)  # noqa: NPY002 - the bug under test
        self.mu_ += float(np.random.normal(0.0, 0.01))  # noqa: NPY002
        return self


class OrderDependent(Plain):
    """Shifts a prediction when its user code is smaller than the previous query's: the
    harness's order (users ascending) and its chunks never show it, a shuffled batch does."""

    name = "order-dependent"

    def predict(self, batch):
        pred = super().predict(batch)
        down = np.zeros(len(batch), bool)
        down[1:] = batch.user[1:] < batch.user[:-1]
        return np.where(down, pred - 0.2, pred).astype(np.float32)


class ChunkDependent(Plain):
    name = "chunk-dependent"

    def predict(self, batch):
        bump = 0.1 if len(batch) < 64 else 0.0
        return (super().predict(batch) - bump).astype(np.float32)


class Mutates(Plain):
    """Centres the training ratings in place."""

    name = "mutates"

    def fit(self, train):
        super().fit(train)
        np.subtract(train.events.rating, np.float32(self.mu_), out=train.events.rating)
        return self


class MutatesAndRestores(Plain):
    """Writes into the batch and writes the old values back: equal afterwards, but it
    crashes on shared read-only arrays."""

    name = "mutates-and-restores"

    def predict(self, batch):
        r = batch.hist_rating
        np.subtract(r, np.float32(1.0), out=r)
        np.add(r, np.float32(1.0), out=r)
        return super().predict(batch)


class BatchPeeker(Plain):
    """Looks for the query's (user, item) in the histories of the other queries of the batch:
    with several targets per user, a later query's history holds the earlier target."""

    name = "batch-peeker"

    def predict(self, batch):
        pred = super().predict(batch)
        if batch.hist_item.size == 0:
            return pred
        key_q = batch.user.astype(np.int64) * 10**6 + batch.target_item
        key_h = batch.user[batch.hist_query()].astype(np.int64) * 10**6 + batch.hist_item
        order = np.argsort(key_h, kind="stable")
        i = np.minimum(np.searchsorted(key_h[order], key_q), len(key_h) - 1)
        found = key_h[order][i] == key_q
        return np.where(found, batch.hist_rating[order][i], pred).astype(np.float32)


class TrainLookup(Plain):
    """Remembers every (user, item) rating of the TrainSet (events and validation truth) and
    returns it when asked about that pair."""

    name = "train-lookup"

    def fit(self, train):
        super().fit(train)
        ev = train.events
        keys = np.concatenate(
            [
                ev.user().astype(np.int64) * 10**6 + ev.item,
                train.val.batch.user.astype(np.int64) * 10**6 + train.val.batch.target_item,
            ]
        )
        vals = np.concatenate([ev.rating, train.val.rating])
        order = np.argsort(keys)
        self.keys_, self.vals_ = keys[order], vals[order]
        return self

    def predict(self, batch):
        pred = super().predict(batch)
        key = batch.user.astype(np.int64) * 10**6 + batch.target_item
        i = np.minimum(np.searchsorted(self.keys_, key), len(self.keys_) - 1)
        return np.where(self.keys_[i] == key, self.vals_[i], pred).astype(np.float32)


class NumpyConfig(Plain):
    name = "numpy-config"

    def __init__(self, *, damping: float = 2.0) -> None:
        self.damping = np.float32(damping)  # json.dumps rejects numpy scalars


class RejectedConfig(Plain):
    name = "rejected-config"

    def get_config(self):
        return {"damping": self.damping, "mu_": getattr(self, "mu_", None)}


class BadCapabilities(Plain):
    name = "bad-capabilities"
    capabilities: ClassVar[Any] = {"embeddings": False}


class UnclearBeforeFit(SeededBase):
    """A BasePredictor that overrides predict and fails before fit with an AttributeError."""

    name = "unclear-before-fit"

    def predict(self, queries):
        return _history_mean(queries, self.mu_).astype(np.float32)


BROKEN = [
    (WrongShape, "output_shape"),
    (NaNOnEmpty, "output_finite"),
    (OutOfScale, "output_in_scale"),
    (NotSelf, "fit_returns_self"),
    (SilentBeforeFit, "predict_before_fit"),
    (UnclearBeforeFit, "predict_before_fit"),
    (GlobalRNG, "global_rng"),
    (SeedsGlobal, "global_rng"),
    (OrderDependent, "batch_order"),
    (ChunkDependent, "chunking"),
    (Mutates, "no_mutation"),
    (MutatesAndRestores, "no_mutation"),
    (BatchPeeker, "future"),
    (TrainLookup, "future"),
    (NumpyConfig, "config_json"),
    (RejectedConfig, "config_roundtrip"),
    (BadCapabilities, "capabilities"),
]


def _failed(report: CheckReport) -> list[str]:
    return [r.name for r in report.failures]


# -- correct models pass -----------------------------------------------------------------
@pytest.mark.parametrize("cls", [Plain, SeededBase, UsesEmbeddings])
def test_correct_models_pass_every_check(cls):
    report = check_predictor(cls)
    assert [r.name for r in report.results] == list(CHECKS)
    assert report.passed, report.table()
    assert report.failures == []
    assert all(r.status == "PASS" and "\n" not in r.reason for r in report.results)
    report.raise_for_failures()  # does not raise


def test_builtin_baselines_pass():
    from predictors.baselines import Bias, GlobalMean, RecentK, UserMean

    for cls in (GlobalMean, UserMean, RecentK, Bias):
        check_predictor(cls).raise_for_failures()
    check_predictor(RecentK, {"k": 1}).raise_for_failures()


# -- each broken model fails exactly its check -----------------------------------------------
@pytest.mark.parametrize(("cls", "check"), BROKEN, ids=[c.name for c, _ in BROKEN])
def test_broken_model_fails_exactly_its_check(cls, check):
    report = check_predictor(cls)
    assert _failed(report) == [check], report.table()
    reason = report[check].reason
    assert reason.startswith(f"{cls.name}:") and "\n" not in reason
    assert report[check].status == "FAIL"
    with pytest.raises(AssertionError, match=check) as info:
        report.raise_for_failures()
    assert cls.name in str(info.value)


def test_reasons_say_what_was_expected():
    assert "shape (240, 1), expected (240,)" in check_predictor(WrongShape)["output_shape"].reason
    finite = check_predictor(NaNOnEmpty)["output_finite"].reason
    assert "3 non-finite value(s) of 240 (3 with an empty history" in finite
    scale = check_predictor(OutOfScale)["output_in_scale"].reason
    assert scale.startswith("out-of-scale: 60 of 240 raw predictions outside")  # users % 4 == 0
    assert "fit() returned NoneType, expected self" in check_predictor(NotSelf).failures[0].reason
    unclear = check_predictor(UnclearBeforeFit)["predict_before_fit"].reason
    assert "AttributeError" in unclear and "expected NotFittedError" in unclear
    assert "global RNG" in check_predictor(GlobalRNG)["global_rng"].reason
    reseeds = check_predictor(SeedsGlobal)["global_rng"].reason
    assert "reseeded numpy's global RNG" in reseeds
    assert "read-only" in check_predictor(MutatesAndRestores)["no_mutation"].reason
    assert "train.events.rating" in check_predictor(Mutates)["no_mutation"].reason
    assert "target's own rating" in check_predictor(TrainLookup)["future"].reason
    assert "damping=" in check_predictor(NumpyConfig)["config_json"].reason
    assert "TypeError" in check_predictor(RejectedConfig)["config_roundtrip"].reason


def test_wrong_shape_reports_a_list_as_not_an_array():
    class ListOut(Plain):
        name = "list-out"

        def predict(self, batch):
            return super().predict(batch).tolist()

    report = check_predictor(ListOut)
    assert _failed(report) == ["output_shape"]
    assert "returned list, expected a numpy array" in report["output_shape"].reason


def test_float64_output_passes_with_a_note():
    class F64(Plain):
        name = "f64"

        def predict(self, batch):
            return super().predict(batch).astype(np.float64)

    report = check_predictor(F64)
    assert report.passed
    assert "float64" in report["output_shape"].reason


# -- checks are independent ---------------------------------------------------------------
def test_a_raising_fit_fails_the_fitting_checks_and_not_the_others():
    class FitRaises(Plain):
        name = "fit-raises"

        def fit(self, train):
            raise ZeroDivisionError("boom")

    report = check_predictor(FitRaises)
    assert set(_failed(report)) == set(CHECKS) - set(QUICK_CHECKS)
    assert all("fit() raised ZeroDivisionError: boom" in r.reason for r in report.failures)
    assert all(report[c].passed for c in QUICK_CHECKS)


def test_a_raising_get_config_fails_only_the_config_checks():
    class ConfigRaises(Plain):
        name = "config-raises"

        def get_config(self):
            raise KeyError("nope")

    report = check_predictor(ConfigRaises)
    assert _failed(report) == ["config_json", "config_roundtrip"]
    assert "get_config() raised KeyError" in report["config_json"].reason


def test_a_model_that_cannot_be_built_fails_without_crashing_the_suite():
    def broken_factory():
        raise RuntimeError("no GPU here")

    report = check_predictor(broken_factory)
    assert not report.passed
    assert all(
        "building the model raised RuntimeError: no GPU here" in r.reason for r in report.failures
    )


# -- options, factories, selection, quick ----------------------------------------------------
def test_options_and_zero_argument_factories():
    undamped = check_predictor(Plain, {"damping": 0.0})
    assert undamped.passed, undamped.table()
    assert check_predictor(lambda: Plain(damping=5.0)).passed
    with pytest.raises(TypeError, match="options are for a class"):
        check_predictor(lambda: Plain(), {"damping": 1.0})
    with pytest.raises(TypeError, match="not Plain"):
        check_predictor(Plain())  # an instance: the suite needs fresh models


def test_the_run_context_reaches_the_model():
    seen: list[tuple[int, str]] = []

    class Records(Plain):
        name = "records"

        def fit(self, train):
            seen.append((train.context.seed, train.context.device))
            return super().fit(train)

    assert check_predictor(Records, seed=5).passed
    # the run's seed, and the second seed of the seed checks
    assert seen and set(seen) == {(5, "cpu"), (5 + OTHER_SEED, "cpu")}
    assert check_predictor(SeededBase, seed=3).passed


def test_embeddings_follow_the_declared_capabilities_unless_forced():
    assert check_predictor(UsesEmbeddings).passed
    forced_off = check_predictor(UsesEmbeddings, embeddings=False)
    assert "fit() raised ValueError: uses-embeddings needs item embeddings" in (
        forced_off["fit_returns_self"].reason
    )
    assert check_predictor(Plain, embeddings=True).passed


def test_selected_checks_and_unknown_names():
    report = check_predictor(GlobalRNG, checks=["config_json", "deterministic", "global_rng"])
    assert [r.name for r in report.results] == ["config_json", "global_rng", "deterministic"]
    assert _failed(report) == ["global_rng"]
    with pytest.raises(ValueError, match="unknown check"):
        check_predictor(Plain, checks=["shape"])


def test_quick_runs_only_the_checks_that_never_fit():
    class NeverFit(Plain):
        name = "never-fit"

        def fit(self, train):
            raise AssertionError("quick checks must not fit")

    report = check_predictor(NeverFit, quick=True)
    assert report.passed
    assert [r.name for r in report.results if r.status != "SKIP"] == list(QUICK_CHECKS)
    assert all(r.passed for r in report.results)
    assert _failed(check_predictor(SilentBeforeFit, quick=True)) == ["predict_before_fit"]
    assert _failed(check_predictor(RejectedConfig, quick=True)) == ["config_roundtrip"]


def test_table_lists_every_check_with_its_status():
    report = check_predictor(ChunkDependent, quick=False, checks=["chunking", "config_json"])
    lines = report.table().splitlines()
    assert lines[0].split() == ["check", "status", "s", "reason"]
    assert lines[2].startswith("config_json") and " PASS " in lines[2]
    assert lines[3].startswith("chunking") and " FAIL " in lines[3]
    assert "chunk-dependent" in lines[3]
    skipped = check_predictor(Plain, quick=True).table()
    assert " SKIP " in skipped and "not in the quick subset" in skipped


def test_the_suite_leaves_numpy_global_rng_alone():
    np.random.seed(7)  # noqa: NPY002 - checking that the suite restores it
    expected = np.random.random()  # noqa: NPY002
    np.random.seed(7)  # noqa: NPY002
    check_predictor(GlobalRNG)
    assert np.random.random() == expected  # noqa: NPY002


def test_report_is_json_friendly():
    report = check_predictor(Plain, quick=True)
    rows = [
        {"name": r.name, "status": r.status, "reason": r.reason, "seconds": r.seconds}
        for r in report.results
    ]
    assert json.loads(json.dumps(rows))[0]["name"] == "capabilities"


# -- the synthetic data ---------------------------------------------------------------------
def test_synthetic_world_is_chronological_and_has_the_hard_cases():
    w = synthetic_world(0)
    t = w.test
    q = t.hist_query()
    assert np.all(t.hist_timestamp < t.target_time[q])  # histories are the past only
    assert np.all(np.diff(w.log.timestamp)[np.diff(w.log.user()) == 0] > 0)
    assert (t.hist_lengths() == 0).sum() == 3  # users with a single event
    seen = np.zeros(w.train.n_items, bool)
    seen[w.train.events.item] = True
    seen[w.train.val.batch.target_item] = True
    assert (~seen[t.target_item]).sum() > 0  # items never seen in training
    assert np.all((w.log.rating >= SCALE.low) & (w.log.rating <= SCALE.high))
    # a test target's rating is nowhere in the TrainSet's events: every user's events stop
    # before the validation target, which precedes the test target
    last_train = w.train.events.user_offsets[1:] - 1
    has = w.train.events.lengths() > 0
    users = np.flatnonzero(has)
    assert np.all(w.train.events.timestamp[last_train[users]] < t.target_time[users])
    # rebuilt identically
    again = synthetic_world(0)
    assert np.array_equal(again.test.hist_rating, t.hist_rating)
    assert not np.array_equal(synthetic_world(1).log.rating[:50], w.log.rating[:50])


def test_two_target_world_puts_the_first_target_in_the_second_history():
    w = synthetic_world(0, n_test=2)
    first = np.flatnonzero(w.first)
    second = first + 1
    two = second < len(w.test)
    two &= w.test.user[np.minimum(second, len(w.test) - 1)] == w.test.user[first]
    f, s = first[two], second[two]
    last_hist = w.test.hist_offsets[s + 1] - 1
    assert np.array_equal(w.test.hist_item[last_hist], w.test.target_item[f])
    assert np.array_equal(w.test.hist_rating[last_hist], w.log.rating[w.test_pos[f]])


# -- randomness: the root cause, once ----------------------------------------------------------
class ReseedsRandom(Plain):
    """Reseeds Python's ``random`` from the run's seed (declared seeded): reproducible, but it
    resets a state other code shares."""

    name = "reseeds-random"
    capabilities = Capabilities(seeded=True)

    def fit(self, train):
        super().fit(train)
        random.seed(train.context.seed)
        self.mu_ += random.gauss(0.0, 0.01)
        return self


class DrawsRandom(Plain):
    """Draws from Python's global ``random`` in predict."""

    name = "draws-random"

    def predict(self, batch):
        return (super().predict(batch) + random.random() * 1e-3).astype(np.float32)


class _PlusOffset(Plain):
    """Plain plus the per-item offset ``offset_`` (n_items,) that a subclass's ``fit`` draws."""

    def predict(self, batch):
        return (super().predict(batch) + self.offset_[batch.target_item]).astype(np.float32)


class ConstantSeed(_PlusOffset):
    """Noise from ``default_rng(1234)``: deterministic, and blind to the run's seed."""

    name = "constant-seed"
    capabilities = Capabilities(seeded=True)

    def fit(self, train):
        super().fit(train)
        self.offset_ = np.random.default_rng(1234).normal(0.0, 0.05, train.n_items)
        return self


class ConstantRandom(ConstantSeed):
    """The same through ``random.Random(42)``."""

    name = "constant-random"

    def fit(self, train):
        Plain.fit(self, train)
        rnd = random.Random(42)
        self.offset_ = np.array([rnd.gauss(0.0, 0.05) for _ in range(train.n_items)])
        return self


class UndeclaredSeed(_PlusOffset):
    """Noise from ``default_rng(train.context.seed)``, without declaring seeded=True."""

    name = "undeclared-seed"

    def fit(self, train):
        super().fit(train)
        self.offset_ = np.random.default_rng(train.context.seed).normal(0.0, 0.05, train.n_items)
        return self


class UndeclaredGenerator(Plain):
    """Builds a generator from the run's seed whose draws do not reach the predictions here."""

    name = "undeclared-generator"

    def fit(self, train):
        super().fit(train)
        self.subsample_ = np.random.default_rng([train.context.seed, 3]).permutation(10)
        return self


class ReadsSeedOnly(Plain):
    """Reads the run's seed and uses it for nothing (knn does so below its subsample size)."""

    name = "reads-seed-only"

    def fit(self, train):
        self.seed_seen_ = int(train.context.seed)
        return super().fit(train)


class OwnSeed(SeededBase):
    """A seed option that wins over the run's when set."""

    name = "own-seed"

    def __init__(self, *, noise: float = 0.1, seed: int | None = None) -> None:
        self.noise, self.seed = noise, seed

    def _fit(self, train):
        seed = train.context.seed if self.seed is None else self.seed
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        self.offset_ = np.random.default_rng(seed).normal(0.0, self.noise, train.n_items)
        return FitReport(settings={"seed": seed})


class MutatesInPredict(Plain):
    """Centres the batch's history ratings in place, then predicts from them."""

    name = "mutates-in-predict"

    def predict(self, batch):
        np.subtract(batch.hist_rating, np.float32(0.5), out=batch.hist_rating)
        return super().predict(batch)


class Noisy(Plain):
    """Non-deterministic: noise from an unseeded generator in predict."""

    name = "noisy"

    def predict(self, batch):
        noise = np.random.default_rng().normal(0.0, 0.01, len(batch))
        return (super().predict(batch) + noise).astype(np.float32)


class ClockNoise(Plain):
    """Non-deterministic without any generator: the clock's last digits."""

    name = "clock-noise"

    def predict(self, batch):
        jitter = (time.perf_counter_ns() % 1000) * 1e-6 + 1e-4
        return (super().predict(batch) + jitter).astype(np.float32)


class ClockSeeded(Plain):
    """A generator seeded from the clock: a seed, but not the run's."""

    name = "clock-seeded"

    def fit(self, train):
        super().fit(train)
        self.mu_ += np.random.default_rng(time.perf_counter_ns()).normal(0.0, 0.01)
        return self


RANDOMNESS = [
    (ReseedsRandom, "global_rng"),
    (DrawsRandom, "global_rng"),
    (ConstantSeed, "rng_seeds"),
    (ConstantRandom, "rng_seeds"),
    (UndeclaredSeed, "seed_declared"),
    (UndeclaredGenerator, "seed_declared"),
    (MutatesInPredict, "no_mutation"),
    (Noisy, "rng_seeds"),
    (ClockSeeded, "rng_seeds"),
    (ClockNoise, "deterministic"),
]


def _roots(report: CheckReport) -> list[str]:
    return [r.name for r in report.root_failures]


@pytest.mark.parametrize(("cls", "root"), RANDOMNESS, ids=[c.name for c, _ in RANDOMNESS])
def test_each_misuse_of_randomness_has_one_root_cause(cls, root):
    report = check_predictor(cls)
    assert _roots(report) == [root], report.table()
    for r in report.failures:
        if r.name != root:
            assert r.knock_on is not None, report.table()
            assert r.reason.startswith(f"knock-on of {r.knock_on}: {cls.name}:")


def test_knock_ons_name_their_cause():
    # an unseeded generator: rng_seeds; two fits differ because of it; the comparisons follow
    noisy = check_predictor(Noisy)
    assert {r.name: r.knock_on for r in noisy.failures} == {
        "rng_seeds": None,
        "deterministic": "rng_seeds",
        "seed_declared": "deterministic",
        "batch_order": "deterministic",
        "chunking": "deterministic",
        "future": "deterministic",
    }
    assert "np.random.default_rng() at test_checks.py:" in noisy["rng_seeds"].reason
    assert "in predict without a seed (OS entropy" in noisy["rng_seeds"].reason
    assert "5 of them knock-ons; root cause(s): rng_seeds" in noisy.summary()
    clock = check_predictor(ClockNoise)
    assert clock["deterministic"].knock_on is None
    assert "two fits with context seed 0: 240 of 240" in clock["deterministic"].reason
    assert clock["chunking"].reason.startswith("knock-on of deterministic: clock-noise:")
    # a write into the batch in predict is no_mutation's, and never blamed on randomness
    mut = check_predictor(MutatesInPredict)
    assert _failed(mut) == ["no_mutation"], mut.table()
    assert "batch.hist_rating" in mut["no_mutation"].reason
    assert "context.seed" not in mut["deterministic"].reason


def test_reasons_name_the_generator_and_the_fix():
    const = check_predictor(ConstantSeed)["rng_seeds"].reason
    assert "built np.random.default_rng(1234) at test_checks.py:" in const
    assert "in fit from a constant seed: the same under run seeds 0 and 100003" in const
    assert "seeded from train.context.seed" in const
    assert "random.Random(42)" in check_predictor(ConstantRandom)["rng_seeds"].reason
    undeclared = check_predictor(UndeclaredSeed)["seed_declared"].reason
    assert "predictions move with the run's seed" in undeclared
    assert "reads train.context.seed at test_checks.py:" in undeclared
    assert "Capabilities(seeded=True)" in undeclared
    gen = check_predictor(UndeclaredGenerator)["seed_declared"].reason
    assert "builds np.random.default_rng([0, 3])" in gen and "without declaring" in gen
    drawn = check_predictor(DrawsRandom)["global_rng"].reason
    assert "predict drew from or reseeded Python's random" in drawn
    clock = check_predictor(ClockSeeded)["rng_seeds"].reason
    assert "differently in two fits with the same run seed 0" in clock


def test_reading_the_seed_for_nothing_and_an_own_seed_option_pass():
    reads = check_predictor(ReadsSeedOnly)
    assert reads.passed, reads.table()
    assert "reads train.context.seed" in reads["seed_declared"].reason
    own = check_predictor(OwnSeed, {"seed": 5})
    assert own.passed, own.table()
    assert "its own seed option (5) wins" in own["rng_seeds"].reason
    assert check_predictor(OwnSeed).passed
    seeded = check_predictor(SeededBase)
    assert "declared seeded=True; predictions move with it" in seeded["seed_declared"].reason


def test_torch_generators_and_global_state_are_watched():
    torch = pytest.importorskip("torch")

    class TorchNoise(Plain):
        name = "torch-noise"
        capabilities = Capabilities(seeded=True)

        def __init__(self, *, how: str = "local") -> None:
            self.how = how
            self.damping = 2.0

        def get_config(self):
            return {"how": self.how}

        def fit(self, train):
            super().fit(train)
            if self.how == "global":
                noise = torch.rand(1)
            else:
                gen = torch.Generator()
                if self.how == "local":
                    gen.manual_seed(int(train.context.seed))
                noise = torch.rand(1, generator=gen)
            self.mu_ += float(noise) * 0.01
            return self

    assert check_predictor(TorchNoise).passed
    unseeded = check_predictor(TorchNoise, {"how": "unseeded"})
    assert _failed(unseeded) == ["rng_seeds"]
    assert "torch.Generator() at test_checks.py:" in unseeded["rng_seeds"].reason
    assert "never seeded" in unseeded["rng_seeds"].reason
    glob = check_predictor(TorchNoise, {"how": "global"})
    assert _failed(glob) == ["global_rng"]
    assert "fit drew from or reseeded torch's global RNG" in glob["global_rng"].reason
    before = torch.random.get_rng_state()
    check_predictor(TorchNoise, {"how": "global"})
    assert torch.equal(torch.random.get_rng_state(), before)


def test_a_knock_on_of_a_passing_check_is_this_checks_own_failure():
    class SmallBatchRaises(Plain):
        name = "small-batch-raises"

        def predict(self, batch):
            if len(batch) == 1:
                raise ValueError("one query")
            return super().predict(batch)

    report = check_predictor(SmallBatchRaises)
    assert _failed(report) == ["chunking"]
    assert report["chunking"].knock_on is None
    assert report["chunking"].reason.startswith("small-batch-raises: predict() on 1 queries")
    alone = check_predictor(Noisy, checks=["batch_order"])
    assert alone["batch_order"].knock_on == "deterministic"  # its cause was not run: said


def test_each_randomness_check_runs_alone():
    for cls, root in RANDOMNESS:
        report = check_predictor(cls, checks=[root])
        assert [(r.name, r.status) for r in report.results] == [(root, "FAIL")], cls.name
        assert report[root].knock_on is None


def test_the_suite_leaves_pythons_random_alone():
    random.seed(3)
    expected = random.random()
    random.seed(3)
    check_predictor(ReseedsRandom)
    check_predictor(DrawsRandom)
    assert random.random() == expected


_CONSTANT_PLUGIN = """
import numpy as np


class ConstantSeed:
    name = "constant"

    def get_config(self):
        return {}

    def fit(self, train):
        self.mu_ = float(np.mean(train.events.rating))
        self.offset_ = np.random.default_rng(1234).normal(0.0, 0.05, train.n_items)
        return self

    def predict(self, batch):
        if not hasattr(self, "mu_"):
            raise RuntimeError("not fitted")
        return (self.mu_ + self.offset_[batch.target_item]).astype(np.float32)
"""


def test_bench_check_reports_the_root_cause_and_selects_checks(tmp_path):
    from click.testing import CliRunner

    from bench.cli import main

    plugin = tmp_path / "constant.py"
    plugin.write_text(_CONSTANT_PLUGIN)
    r = CliRunner().invoke(main, ["check", f"{plugin}:ConstantSeed"])
    assert r.exit_code == 1, r.output
    line = next(x for x in r.output.splitlines() if x.startswith("rng_seeds"))
    assert " FAIL " in line and "np.random.default_rng(1234) at constant.py:" in line
    assert "constant: 1 of 16 checks failed" in r.output
    r = CliRunner().invoke(main, ["check", f"{plugin}:ConstantSeed", "--check", "rng_seeds"])
    assert r.exit_code == 1
    rows = [x.split()[0] for x in r.output.splitlines() if x.split()[:1] in ([c] for c in CHECKS)]
    assert rows == ["rng_seeds"], r.output
    r = CliRunner().invoke(main, ["check", f"{plugin}:ConstantSeed", "--check", "seeds"])
    assert r.exit_code == 2 and "unknown check(s) seeds" in r.output
