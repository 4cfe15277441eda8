"""Baselines on numbers computed by hand (tiny fixture: see conftest.tiny_rows)."""

from __future__ import annotations

import numpy as np
import pytest

from bench.data.split import SplitParams, make_split
from predictors.registry import create


def _detailed(model, batch):
    """(values, fallback) of ``model.predict_detailed(batch)``."""
    out = model.predict_detailed(batch)
    return out.values, out.fallback


def _fit_predict(inter, name, **opts):
    sp = make_split(inter, SplitParams())
    tr = sp.train_set(inter)
    model = create(name)
    if opts:
        from predictors.registry import ModelSpec

        model = create(ModelSpec(name, opts))
    model.fit(tr)
    ((_, batch),) = list(sp.test_batches(inter, chunk=100))
    pred, fb = _detailed(model, batch)
    return model, pred, fb


def test_global_mean_is_mean_of_fit_events(tiny):
    # fit events: user 3's first 10 ratings (all 4) + user 7's first 12 (1..5,1..5,1,2)
    _, pred, fb = _fit_predict(tiny, "global-mean")
    assert pred == pytest.approx([73 / 22, 73 / 22])
    assert pred.dtype == np.float32 and not fb.any()


def test_user_mean_is_mean_of_whole_history(tiny):
    _, pred, _ = _fit_predict(tiny, "user-mean")
    assert pred == pytest.approx([42 / 11, 36 / 13], rel=1e-6)


def test_recent_k_by_hand(tiny):
    _, pred, _ = _fit_predict(tiny, "recent-k")  # k = 5
    assert pred == pytest.approx([18 / 5, 15 / 5])
    _, pred2, _ = _fit_predict(tiny, "recent-k", k=2)
    assert pred2 == pytest.approx([(4 + 2) / 2, (2 + 3) / 2])


def test_bias_by_hand_with_fixed_damping(tiny):
    _model, pred, fb = _fit_predict(tiny, "bias", item_damping=2.0, user_damping=1.0, refit=False)
    sp = make_split(tiny, SplitParams())
    tr = sp.train_set(tiny)
    ev = tr.events
    mu = float(ev.rating.mean())
    # item bias: plain Python over the fit events
    dev: dict[int, list[float]] = {}
    for i, r in zip(ev.item.tolist(), ev.rating.tolist(), strict=True):
        dev.setdefault(i, []).append(r - mu)
    bi = {i: sum(v) / (len(v) + 2.0) for i, v in dev.items()}
    ((_, batch),) = list(sp.test_batches(tiny, chunk=100))
    expected = []
    for b in range(len(batch)):
        h = range(batch.hist_offsets[b], batch.hist_offsets[b + 1])
        res = [batch.hist_rating[j] - mu - bi.get(int(batch.hist_item[j]), 0.0) for j in h]
        bu = sum(res) / (len(res) + 1.0)
        expected.append(mu + bu + bi.get(int(batch.target_item[b]), 0.0))
    assert pred == pytest.approx(np.clip(expected, 0.5, 5.0), rel=1e-5)
    # both test targets (items 111, 113) were... 111 is rated in user 7's fit events; 113 never
    assert fb.tolist() == [False, True]


def test_bias_tunes_damping_on_validation_only(tiny):
    model, _, _ = _fit_predict(tiny, "bias")
    info = model.fit_report_.settings
    assert info["item_damping"] in [g["item_damping"] for g in info["grid"]]
    best = min(info["grid"], key=lambda g: g["val_rmse"])
    assert info["val_rmse"] == pytest.approx(best["val_rmse"])
    assert model.fit_report_.refit is True
    # closed-form tuning always runs on everything, and says so
    tr = make_split(tiny, SplitParams()).train_set(tiny)
    assert info["tuning"] == {
        "on": "all",
        "events": tr.events.n_events,
        "val_queries": len(tr.val.batch),
    }
    assert set(info["timings"]) == {"tuning_s", "final_fit_s"}


@pytest.mark.parametrize(
    "spec, message",
    [
        ("recent-k:k=0", "k must be an integer >= 1"),
        ("recent-k:k=2.5", "k must be an integer >= 1"),
        ("bias:item_damping=-1", "item_damping must be a number >= 0"),
    ],
)
def test_bad_option_values(spec, message):
    with pytest.raises(ValueError, match=message):
        create(spec)


def test_ml_latest_small_baseline_figures(data_dir):
    """The notebook's baselines, re-implemented with its own loops, on its own split."""
    import pandas as pd

    from bench.data.locate import load_dataset
    from bench.data.split import PROTOCOLS
    from bench.data.types import build_interactions

    raw, _ = load_dataset("ml-latest-small", data_dir=data_dir, download=False)
    inter = build_interactions(raw, name="ml-latest-small")
    sp = make_split(inter, PROTOCOLS["notebook"])
    tr = sp.train_set(inter)
    truth = sp.test_truth(inter)
    got = {}
    for name in ("global-mean", "user-mean", "recent-k"):
        m = create(name).fit(tr)
        p = np.concatenate([m.predict(b) for _, b in sp.test_batches(inter, 128)])
        got[name] = float(np.sqrt(np.mean((p - truth) ** 2)))
    df = pd.read_csv(data_dir / "ml-latest-small" / "ratings.csv")
    seqs = {
        u: list(zip(g["rating"].tolist(), strict=True))
        for u, g in df.sort_values(["userId", "timestamp"], kind="stable").groupby("userId")
    }
    t, um, rk = [], [], []
    for seq in seqs.values():
        r = [x[0] for x in seq]
        t.append(r[-1])
        um.append(np.mean(r[:-1]))
        rk.append(np.mean(r[:-1][-5:]))
    t = np.array(t)
    assert got["user-mean"] == pytest.approx(np.sqrt(np.mean((np.array(um) - t) ** 2)), rel=1e-5)
    assert got["recent-k"] == pytest.approx(np.sqrt(np.mean((np.array(rk) - t) ** 2)), rel=1e-5)
    fit = np.concatenate([np.array([x[0] for x in s][:-2]) for s in seqs.values()])
    assert got["global-mean"] == pytest.approx(np.sqrt(np.mean((fit.mean() - t) ** 2)), rel=1e-5)
