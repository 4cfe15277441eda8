"""knn, mf and mf-temporal on hand-computed cases, tiny fixtures and ml-latest-small."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench.data.loading import DataSource, load_source
from bench.data.split import PROTOCOLS, make_split
from predictors.baselines import UserMean
from predictors.knn import KNN
from predictors.mf import MF, _Groups, fit_als, solve_grouped
from predictors.mf_temporal import MFTemporal
from predictors.tuning import grid_search, query_subset, tuning_subset
from predictors.types import (
    EventStore,
    HistoryBatch,
    ItemEmbeddings,
    Queries,
    RatingScale,
    TrainSet,
)
from tests.conftest import HALF_STARS as SCALE
from tests.conftest import detailed, synthetic_world, with_test_targets_changed
from tests.conftest import make_store as _store


def _batch(user: int, hist: list[tuple[int, float, int]], target: int, time: int) -> HistoryBatch:
    return HistoryBatch(
        user=np.array([user], dtype=np.int32),
        target_item=np.array([target], dtype=np.int32),
        target_time=np.array([time], dtype=np.int64),
        hist_offsets=np.array([0, len(hist)], dtype=np.int64),
        hist_item=np.array([h[0] for h in hist], dtype=np.int32),
        hist_rating=np.array([h[1] for h in hist], dtype=np.float32),
        hist_timestamp=np.array([h[2] for h in hist], dtype=np.int64),
    )


def _empty_val() -> Queries:
    b = _batch(0, [], 0, 0)
    return Queries(batch=b.take(np.zeros(0, dtype=np.int64)), rating=np.zeros(0, np.float32))


def _trainset(store: EventStore, n_items: int, scale: RatingScale = SCALE, **kw) -> TrainSet:
    return TrainSet(
        events=store,
        train_user=np.zeros(0, dtype=np.int32),
        train_pos=np.zeros(0, dtype=np.int64),
        val=kw.pop("val", _empty_val()),
        n_items=n_items,
        scale=scale,
        **kw,
    )


def _rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(a, np.float64) - b) ** 2)))


# --------------------------------------------------------------------------- knn

# 2-d unit vectors: cos(item 4, item j) = 0.8, 0.6, -1, 0 for j = 0..3; item 5 has none
_VEC = np.array([[0.8, 0.6], [0.6, 0.8], [-1, 0], [0, 1], [1, 0], [0, 0]], dtype=np.float32)
_EMB = ItemEmbeddings("hand", _VEC, np.array([1, 1, 1, 1, 1, 0], bool), "h")
# a 3-user, 6-item log (ratings matter only for the global mean: 3.0)
_LOG = _store(
    [
        [(0, 4.0, 10), (1, 2.0, 20), (2, 5.0, 30), (3, 3.0, 40)],
        [(4, 1.0, 10), (0, 2.0, 20)],
        [(1, 3.0, 10), (5, 4.0, 20)],
    ]
)
_HIST = [(0, 4.0, 10), (1, 2.0, 20), (2, 5.0, 30), (3, 3.0, 40)]


def test_knn_matches_hand_computation() -> None:
    train = _trainset(_LOG, 6, embeddings=_EMB)
    batch = _batch(0, _HIST, 4, 50)
    # user mean 3.5; neighbours with s > 0: item 0 (s=.8, r=4), item 1 (s=.6, r=2)
    m = KNN(k=2, alpha=2, shrink=0.5, baseline="user-mean").fit(train)
    pred, fb = detailed(m, batch)
    expect = 3.5 + (0.64 * 0.5 + 0.36 * -1.5) / (0.64 + 0.36 + 0.5)
    assert pred[0] == pytest.approx(expect, abs=1e-5) and not fb[0]
    m1 = KNN(k=1, alpha=1, shrink=0.0, baseline="user-mean").fit(train)
    assert m1.predict(batch)[0] == pytest.approx(4.0, abs=1e-5)  # 3.5 + .8 * .5 / .8
    # the window keeps only the last 3 events: item 0 drops out, item 1 is the sole neighbour
    mw = KNN(k=2, alpha=1, shrink=0.0, baseline="user-mean", window=3).fit(train)
    assert mw.predict(batch)[0] == pytest.approx(2.0, abs=1e-5)


def test_knn_bias_baseline_by_hand() -> None:
    train = _trainset(_LOG, 6, embeddings=_EMB)
    m = KNN(k=2, alpha=1, shrink=0.0, baseline="bias").fit(train)
    b = m.bias_
    assert b is not None
    hist_items = np.array([0, 1, 2, 3])
    hist_r = np.array([4.0, 2.0, 5.0, 3.0])
    mu, bi = b.mu_, b.item_bias_
    b_u = np.sum(hist_r - mu - bi[hist_items]) / (4 + b.user_damping_)
    res = hist_r - (mu + b_u + bi[hist_items])
    expect = mu + b_u + bi[4] + (0.8 * res[0] + 0.6 * res[1]) / 1.4
    got = m.predict(_batch(0, _HIST, 4, 50))[0]
    assert got == pytest.approx(float(np.clip(expect, 0.5, 5.0)), abs=1e-5)


def test_knn_fallbacks_flagged() -> None:
    train = _trainset(_LOG, 6, embeddings=_EMB)
    m = KNN(k=2, alpha=1, shrink=0.0, baseline="user-mean").fit(train)
    # no embedding for the target: the user mean; empty history: the global mean (3.0)
    no_vec = _batch(0, _HIST, 5, 50)
    empty = _batch(2, [], 4, 50)
    only_neg = _batch(0, [(2, 5.0, 30)], 4, 50)  # cos = -1: no neighbour
    for b, expect in ((no_vec, 3.5), (empty, 3.0), (only_neg, 5.0)):
        pred, fb = detailed(m, b)
        assert fb[0] and pred[0] == pytest.approx(expect, abs=1e-6)


def test_knn_needs_embeddings() -> None:
    with pytest.raises(ValueError, match="knn needs item embeddings"):
        KNN().fit(_trainset(_LOG, 6))


# --------------------------------------------------------------------------- ALS core


def test_solve_grouped_equals_direct_ridge_solves() -> None:
    rng = np.random.default_rng(0)
    d, n = 5, 7
    counts = np.array([0, 1, 3, 4, 5, 9, 20])  # short entities use the dual form
    keys = rng.permutation(np.repeat(np.arange(n), counts))
    design = rng.normal(size=(keys.size, d))
    target = rng.normal(size=keys.size)
    ridge = rng.uniform(0.1, 2.0, size=(n, d))
    out = np.full((n, d), 7.0)
    solve_grouped(_Groups.of(keys, n), lambda rows: design[rows], target, ridge, out)
    assert np.all(out[0] == 7.0)  # no events: untouched
    for e in range(1, n):
        x, y = design[keys == e], target[keys == e]
        theta = np.linalg.solve(x.T @ x + np.diag(ridge[e]), x.T @ y)
        np.testing.assert_allclose(out[e], theta, rtol=1e-9, atol=1e-10)


def _rank1_store(seed: int = 0) -> tuple[EventStore, int]:
    """A complete, noise-free 30 x 20 matrix r = 3 + b_u + b_i + a_u c_i (continuous)."""
    rng = np.random.default_rng(seed)
    nu, ni = 30, 20
    r = (
        3
        + rng.normal(0, 0.5, (nu, 1))
        + rng.normal(0, 0.5, (1, ni))
        + rng.normal(0, 1, (nu, 1)) * rng.normal(0, 1, (1, ni))
    )
    users = [[(i, float(r[u, i]), 100 * i) for i in rng.permutation(ni)] for u in range(nu)]
    return _store(users), ni


def test_mf_fits_noise_free_rank1_plus_biases() -> None:
    store, ni = _rank1_store()
    train = _trainset(store, ni, scale=RatingScale(-20.0, 30.0))
    m = MF(factors=1, reg=1e-6, reg_bias=0.0, epochs=60, seed=3).fit(train)
    p = m.params_
    fit = p.score(store.user(), store.item, store.timestamp)
    assert _rmse(fit, store.rating) < 1e-3
    # a single bias-only fit leaves a large error: the check above can fail
    m0 = MF(factors=1, reg=1e6, reg_bias=0.0, epochs=5).fit(train)
    assert _rmse(m0.params_.score(store.user(), store.item, store.timestamp), store.rating) > 0.5


def test_mf_fallbacks_for_unseen_user_and_item() -> None:
    store, ni = _rank1_store()
    # user 30 and item 20 have no training events
    store = EventStore(
        user_offsets=np.append(store.user_offsets, store.user_offsets[-1]),
        item=store.item,
        rating=store.rating,
        timestamp=store.timestamp,
    )
    train = _trainset(store, ni + 1, scale=RatingScale(-20.0, 30.0))
    for m in (MF(factors=2, reg=0.01, epochs=5), MFTemporal(factors=2, reg=0.01, epochs=5)):
        m.fit(train)
        hist = [(0, 4.0, 10), (1, 2.0, 20)]
        p = m.params_
        seen, f_seen = detailed(m, _batch(0, hist, 3, 30))
        unseen_item, f_item = detailed(m, _batch(0, hist, ni, 30))
        unseen_user, f_user = detailed(m, _batch(30, hist, 3, 30))
        assert not f_seen[0] and f_item[0] and f_user[0]
        # unseen user: damped history bias against mu + b_i, no factors, no offset
        b_u = ((4.0 - p.mu - p.item_bias[0]) + (2.0 - p.mu - p.item_bias[1])) / (2 + m.reg_bias)
        assert unseen_user[0] == pytest.approx(p.mu + b_u + p.item_bias[3], abs=1e-5)
        if isinstance(m, MF) and not isinstance(m, MFTemporal):
            assert unseen_item[0] == pytest.approx(p.mu + p.user_bias[0], abs=1e-5)
        assert np.isfinite([seen[0], unseen_item[0], unseen_user[0]]).all()


# --------------------------------------------------------------------------- mf-temporal


def test_session_offset_is_the_hand_weighted_residual() -> None:
    store, ni = _rank1_store(1)
    train = _trainset(store, ni, scale=RatingScale(-20.0, 30.0))
    m = MFTemporal(factors=2, reg=0.05, epochs=4, tau=2.0, decay=0.5, shrink=0.25)
    m.fit(train)
    t = 1_000_000
    # events 3 h, 1 h and 0.5 h before the target (oldest first), user 4
    hist = [(2, 3.0, t - 3 * 3600), (7, 1.0, t - 3600), (5, 4.5, t - 1800)]
    batch = _batch(4, hist, 9, t)
    p = m.params_
    res = np.array(
        [r - p.score(np.array([4]), np.array([i]), np.array([ts]))[0] for i, r, ts in hist]
    )
    w = np.array([math.exp(-3 / 2) * 0.5**2, math.exp(-1 / 2) * 0.5, math.exp(-0.5 / 2)])
    expect = float(w @ res / (w.sum() + 0.25))
    assert m.session_offset(batch)[0] == pytest.approx(expect, rel=1e-9, abs=1e-12)
    long_term = p.score(np.array([4]), np.array([9]), np.array([t]))[0]
    assert m.predict(batch)[0] == pytest.approx(long_term + expect, abs=1e-4)
    # a window of 1 keeps the newest event only
    m.window = 1
    assert m.session_offset(batch)[0] == pytest.approx(w[2] * res[2] / (w[2] + 0.25))


# --------------------------------------------------------------------------- options


@pytest.mark.parametrize(
    ("cls", "kw", "msg"),
    [
        (KNN, {"k": 0}, "knn: option k must be an integer >= 1, got 0"),
        (KNN, {"alpha": 0}, "knn: option alpha must be a number > 0"),
        (KNN, {"shrink": -1.0}, "knn: option shrink must be a number >= 0"),
        (KNN, {"baseline": "median"}, "knn: option baseline must be one of"),
        (KNN, {"window": 2.5}, "knn: option window must be an integer >= 1"),
        (MF, {"factors": 0}, "mf: option factors must be an integer >= 1, got 0"),
        (MF, {"reg": 0.0}, "mf: option reg must be a number > 0"),
        (MF, {"epochs": True}, "mf: option epochs must be an integer >= 1"),
        (MF, {"refit": "yes"}, "mf: option refit must be true or false"),
        (MFTemporal, {"tau": 0}, "mf-temporal: option tau must be a number of hours > 0"),
        (MFTemporal, {"decay": 1.5}, "mf-temporal: option decay must be a number in"),
        (MFTemporal, {"window": 0}, "mf-temporal: option window must be an integer >= 1"),
        (MFTemporal, {"factors": -2}, "mf-temporal: option factors must be an integer"),
    ],
)
def test_options_are_validated(cls, kw, msg) -> None:
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        cls(**kw)


# --------------------------------------------------------------------------- synthetic world

_FAST = {
    "knn": lambda seed=0: KNN(k=20, alpha=2.0, shrink=1.0, baseline="bias"),
    "mf": lambda seed=0: MF(factors=4, reg=0.1, max_epochs=4, seed=seed),
    "mf-temporal": lambda seed=0: MFTemporal(factors=4, reg=0.1, max_epochs=4, seed=seed),
}


@pytest.fixture(scope="module")
def world():
    return synthetic_world(n_users=200, seed=5)


def _test_batch(inter, split) -> HistoryBatch:
    ((_, batch),) = list(split.test_batches(inter, chunk=10**9))
    return batch


@pytest.mark.parametrize("name", list(_FAST))
def test_deterministic_under_seed(name, world) -> None:
    loaded, inter, split = world
    batch = _test_batch(inter, split)
    a = _FAST[name]().fit(split.train_set(inter, embeddings=loaded.embeddings))
    b = _FAST[name]().fit(split.train_set(inter, embeddings=loaded.embeddings))
    assert np.array_equal(a.predict(batch), b.predict(batch))
    timeless = [{k: v for k, v in m.fit_report_.settings.items() if k != "timings"} for m in (a, b)]
    assert timeless[0] == timeless[1]  # everything but the wall-clock timings
    if name != "knn":  # another seed starts ALS elsewhere
        c = _FAST[name](seed=1).fit(split.train_set(inter, embeddings=loaded.embeddings))
        assert not np.array_equal(a.predict(batch), c.predict(batch))


@pytest.mark.parametrize("name", list(_FAST))
def test_blind_to_the_future(name, world) -> None:
    """Changing the ratings of the test targets leaves every test prediction unchanged."""
    loaded, inter, split = world
    inter2, split2 = with_test_targets_changed(inter, split)
    a = _FAST[name]().fit(split.train_set(inter, embeddings=loaded.embeddings))
    b = _FAST[name]().fit(split2.train_set(inter2, embeddings=loaded.embeddings))
    batch = _test_batch(inter, split)
    assert np.array_equal(a.predict(batch), b.predict(_test_batch(inter2, split2)))


def test_mf_temporal_offset_helps_on_synthetic_sessions(world) -> None:
    _, inter, split = world
    m = _FAST["mf-temporal"]().fit(split.train_set(inter))
    info = m.fit_report_.settings
    assert info["val_rmse"] < info["val_rmse_without_offset"] - 0.02


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ml_small(data_dir: Path):
    loaded = load_source(DataSource(dataset="ml-latest-small", data_dir=data_dir, offline=True))
    inter = loaded.interactions
    split = make_split(inter, PROTOCOLS["notebook"])
    return split.train_set(inter)


@pytest.mark.parametrize("name", ["mf", "mf-temporal"])
def test_beats_user_mean_on_ml_latest_small(name, ml_small) -> None:
    train = ml_small
    user_mean = UserMean().fit(train)
    baseline = _rmse(user_mean.predict(train.val.batch), train.val.rating)
    cls = MF if name == "mf" else MFTemporal
    m = cls(factors=8, reg=0.3, max_epochs=6, refit=False).fit(train)
    assert m.fit_report_.settings["val_rmse"] < baseline - 0.05
    assert m.fit_report_.settings["val_rmse"] == pytest.approx(
        _rmse(m.predict(train.val.batch), train.val.rating), abs=1e-6
    )


def test_knn_beats_user_mean_on_synthetic(world) -> None:
    """ml-latest-small has no embedding; knn is checked on the synthetic world instead."""
    loaded, inter, split = world
    train = split.train_set(inter, embeddings=loaded.embeddings)
    baseline = _rmse(UserMean().fit(train).predict(train.val.batch), train.val.rating)
    m = KNN(refit=False).fit(train)
    assert m.fit_report_.settings["val_rmse"] < baseline - 0.01


# --------------------------------------------------------------------------- tuning at scale


def test_tuning_subset_is_whole_users_and_deterministic_under_the_seed(world) -> None:
    _, inter, split = world
    train = split.train_set(inter)
    ev = train.events
    a = tuning_subset(train, max_events=2000, seed=3)
    b = tuning_subset(train, max_events=2000, seed=3)
    c = tuning_subset(train, max_events=2000, seed=4)
    assert a.subsampled and a.info["seed"] == 3 and a.info["on"] == "user subsample"
    sub = a.train
    for x in (b.train, c.train):
        assert x.events.n_users == ev.n_users and x.n_items == train.n_items  # codes kept
    assert np.array_equal(sub.events.user_offsets, b.train.events.user_offsets)
    assert np.array_equal(sub.events.item, b.train.events.item)
    assert not np.array_equal(sub.events.user_offsets, c.train.events.user_offsets)
    lens, full = sub.events.lengths(), ev.lengths()
    kept = np.flatnonzero(lens)
    assert np.array_equal(lens[kept], full[kept])  # every kept user keeps all events
    assert a.info["users"] == kept.size and a.info["events"] == sub.events.n_events <= 2000
    for u in kept[:5]:
        lo, hi = sub.events.user_offsets[u], sub.events.user_offsets[u + 1]
        flo = ev.user_offsets[u]
        assert np.array_equal(sub.events.rating[lo:hi], ev.rating[flo : flo + hi - lo])
    # training targets and validation queries: exactly those of the kept users, same data
    assert set(sub.train_user.tolist()) <= set(kept.tolist())
    assert np.array_equal(
        sub.events.rating[sub.train_pos],
        ev.rating[train.train_pos][np.isin(train.train_user, kept)],
    )
    assert np.array_equal(
        sub.val.batch.user, train.val.batch.user[np.isin(train.val.batch.user, kept)]
    )
    # small data: the train set itself
    whole = tuning_subset(train, max_events=ev.n_events, seed=3)
    assert not whole.subsampled and whole.train is train and whole.info["on"] == "all"


def test_query_subset_is_seeded() -> None:
    hist = [(0, 4.0, 10), (1, 2.0, 20)]
    b = _batch(0, hist, 4, 50).take(np.zeros(10, dtype=np.int64))
    val = Queries(batch=b, rating=np.arange(10, dtype=np.float32))
    a, info = query_subset(val, max_queries=4, seed=1)
    again, _ = query_subset(val, max_queries=4, seed=1)
    assert len(a.batch) == 4 and info["of_queries"] == 10 and info["seed"] == 1
    assert np.array_equal(a.rating, again.rating)
    assert np.all(np.diff(a.rating) > 0)  # original order kept
    same, info = query_subset(val, max_queries=10, seed=1)
    assert same is val and info["on"] == "all"


@pytest.mark.parametrize("name", ["mf", "mf-temporal"])
def test_large_data_tunes_on_the_subsample_and_fits_on_all_events(name, world) -> None:
    _, inter, split = world
    train = split.train_set(inter)
    cls = MF if name == "mf" else MFTemporal
    kw = {"max_epochs": 4, "tune_events": 3000, "refit": False}
    m = cls(factors=None, reg=None, **kw).fit(train)
    info = m.fit_report_.settings
    assert info["tuning"] == tuning_subset(train, max_events=3000, seed=0).info | {
        "val_rmse": info["tuning"]["val_rmse"]
    }
    assert info["tuning"]["users"] < train.n_users
    # the chosen setting is a grid point, the grid walked reg downwards with warm starts
    assert (info["factors"], info["reg"]) in {(g["factors"], g["reg"]) for g in info["grid"]}
    assert [g["reg"] for g in info["grid"][:4]] == sorted(g["reg"] for g in info["grid"][:4])[::-1]
    assert "warm_start" not in info["grid"][0] and info["grid"][1]["warm_start"]
    # one fit on every training event, its sweeps chosen on all validation queries
    assert info["final_fit"]["events"] == train.events.n_events
    assert info["final_fit"]["warm_start"]
    curve = info["final_fit"]["val_rmse_per_epoch"]
    assert 1 <= info["epochs"] <= len(curve) <= 4
    got = _rmse(m.predict(train.val.batch), train.val.rating)
    assert info["val_rmse"] == pytest.approx(got, abs=1e-6)  # the model's own figure
    assert m.params_.user_count.sum() == train.events.n_events
    assert {"tuning_s", "final_fit_s", "total_s"} <= set(info["timings"])
    # the refit continues from the fit on training + validation events
    r = cls(factors=None, reg=None, **{**kw, "refit": True}).fit(train)
    assert r.fit_report_.refit and r.fit_report_.settings["refit"] == {
        "events": train.events.n_events + len(train.val.batch),
        "sweeps": 1,
        "warm_start": True,
    }
    assert r.params_.user_count.sum() == train.events.n_events + len(train.val.batch)
    assert r.fit_report_.settings["val_rmse"] == info["val_rmse"]


def _walk(loss: dict[int, float], *, tol: float = 1e-4):
    """grid_search's large-data walk over a fake model whose validation RMSE after every
    epoch is ``loss[factors]`` plus a penalty for a reg away from 0.01: what it trained."""
    trained: list[tuple[int, float, object]] = []

    def train(f, reg, n, on_epoch, init):
        trained.append((f, reg, init))
        for epoch in range(1, n + 1):
            if on_epoch(epoch, (f, reg, epoch)):
                break
        return (f, reg, epoch)

    def score(p):  # later epochs a little better; reg 0.01 best at every factors
        return loss[p[0]] + 0.01 * abs(math.log10(p[1]) + 2) + 1e-3 / p[2]

    choice = grid_search(
        train,
        score,
        (64, 8, 32),  # sorted by the walk
        (0.01, 0.1, 0.001),
        max_epochs=3,
        fixed_epochs=None,
        tune=True,
        patience=1,
        warm=True,
        tol=tol,
    )
    return choice, trained


def test_large_data_grid_walks_reg_at_the_smallest_factors_then_grows_while_it_gains() -> None:
    # 32 factors gains 0.01, 64 gains only 5e-5 more: 64 is tried, not kept, nothing after
    choice, trained = _walk({8: 0.9, 32: 0.89, 64: 0.88995})
    # reg strongest first and warm-started along the path; larger factors down to 0.01
    assert [(f, r) for f, r, _ in trained] == [
        *[(8, r) for r in (0.1, 0.01, 0.001)],
        *[(f, r) for f in (32, 64) for r in (0.1, 0.01)],
    ]
    assert [init is None for _, _, init in trained] == [True, False, False] + [True, False] * 2
    assert (choice.factors, choice.reg, choice.epochs) == (32, 0.01, 3)
    assert choice.params == (32, 0.01, 3)
    assert choice.grid[-1]["outcome"].startswith("gain under")
    # a larger factors that gains nothing stops the walk at once; the rest are listed skipped
    choice, trained = _walk({8: 0.9, 32: 0.9, 64: 0.5})
    assert [f for f, _, _ in trained] == [8, 8, 8, 32, 32]
    assert (choice.factors, choice.reg) == (8, 0.01)
    skipped = {"factors": 64, "reg": 0.01, "skipped": "factors=32 gained under 0.0001"}
    assert choice.grid[-1] == skipped
    # every larger factors that gains is trained, and the largest is chosen
    choice, trained = _walk({8: 0.9, 32: 0.8, 64: 0.7})
    assert [f for f, _, _ in trained] == [8, 8, 8, 32, 32, 64, 64] and choice.factors == 64
    assert not any("skipped" in g for g in choice.grid)


def test_small_data_tunes_on_everything(world) -> None:
    _, inter, split = world
    train = split.train_set(inter)
    m = MF(factors=None, reg=0.3, max_epochs=3).fit(train)
    info = m.fit_report_.settings
    assert info["tuning"]["on"] == "all" and info["tuning"]["events"] == train.events.n_events
    assert len(info["grid"]) == 3 and "final_fit" not in info
    assert info["refit"]["warm_start"] is False and info["refit"]["sweeps"] == info["epochs"]


def test_warm_start_continues_a_fit() -> None:
    store, ni = _rank1_store()
    cold = fit_als(store, ni, factors=2, reg=1e-4, reg_bias=0.0, epochs=30, seed=0)
    again = fit_als(store, ni, factors=2, reg=1e-4, reg_bias=0.0, epochs=1, seed=5, init=cold)
    one = fit_als(store, ni, factors=2, reg=1e-4, reg_bias=0.0, epochs=1, seed=5)
    u, i = store.user(), store.item

    def fit_rmse(p):
        return _rmse(p.score(u, i, store.timestamp), store.rating)

    # one sweep from the converged fit stays where it was; one sweep from the seed does not
    np.testing.assert_allclose(again.item_bias, cold.item_bias, atol=1e-3)
    assert fit_rmse(again) < 0.2 * fit_rmse(one)
    with pytest.raises(ValueError, match="init has factors"):
        fit_als(store, ni, factors=3, reg=0.1, reg_bias=0.0, epochs=1, seed=0, init=cold)


def test_parameters_that_cannot_fit_in_memory_fail_early() -> None:
    store, ni = _rank1_store()
    with pytest.raises(ValueError, match="lower factors"):
        fit_als(store, ni, factors=10**8, reg=0.1, reg_bias=0.0, epochs=1, seed=0)


def test_knn_tunes_on_a_seeded_query_subset(world) -> None:
    loaded, inter, split = world
    train = split.train_set(inter, embeddings=loaded.embeddings)
    a = KNN(tune_queries=50, refit=False).fit(train)
    b = KNN(tune_queries=50, refit=False).fit(train)
    info = a.fit_report_.settings
    assert info["tuning"] == {
        "on": "query subsample",
        "val_queries": 50,
        "of_queries": len(train.val.batch),
        "seed": train.seed,
        "max_queries": 50,
    }
    assert info["grid"] == b.fit_report_.settings["grid"]
    sub, _ = query_subset(train.val, max_queries=50, seed=train.seed)
    assert info["val_rmse"] == pytest.approx(_rmse(a.predict(sub.batch), sub.rating), abs=1e-5)


def test_mf_temporal_predicts_the_same_in_chunks(world, monkeypatch) -> None:
    import predictors.mf_temporal as T

    _, inter, split = world
    m = _FAST["mf-temporal"]().fit(split.train_set(inter))
    batch = _test_batch(inter, split)
    whole = m.predict(batch)
    monkeypatch.setattr(T, "_OFFSET_ELEMENTS", 3 * m.window)  # three queries at a time
    np.testing.assert_array_equal(m.predict(batch), whole)
