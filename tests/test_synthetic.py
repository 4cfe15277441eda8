"""Tests of the synthetic MovieLens-like generator: structure, realism and planted signal."""

from __future__ import annotations

import json
import re

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data import synthetic
from bench.data.synthetic import GENRES, SCALE, make_synthetic, write_embeddings_parquet
from bench.data.types import build_interactions
from bench.errors import ConfigError


@pytest.fixture(scope="module")
def data():
    return make_synthetic()  # 2000 users, 540 movies, ~135k ratings


def _user_offsets(user_id: np.ndarray) -> np.ndarray:
    """CSR offsets of a user-sorted id column whose ids are 1..U."""
    return np.concatenate([[0], np.cumsum(np.bincount(user_id - 1))])


def _all_distinct(keys: np.ndarray) -> bool:
    """True when no value repeats (a sort: np.unique is much slower on 10M+ int64 keys)."""
    return bool(np.all(np.diff(np.sort(keys)) != 0))


def _ridge_r2(x: np.ndarray, y: np.ndarray, lam: float, seed: int = 1) -> float:
    """Held-out R² (pooled over the columns of ``y``) of a ridge fit on half the rows."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).reshape(x.shape[0], -1)
    perm = np.random.default_rng(seed).permutation(x.shape[0])
    tr, te = perm[: x.shape[0] // 2], perm[x.shape[0] // 2 :]
    xm, ym = x[tr].mean(axis=0), y[tr].mean(axis=0)
    xc = x - xm
    w = np.linalg.solve(xc[tr].T @ xc[tr] + lam * np.eye(x.shape[1]), xc[tr].T @ (y[tr] - ym))
    pred = xc[te] @ w + ym
    return float(1.0 - ((y[te] - pred) ** 2).sum() / ((y[te] - y[te].mean(axis=0)) ** 2).sum())


def _last_rating_rmse(data) -> tuple[float, float]:
    """(user-mean RMSE, recent-5-mean RMSE) on every user's last rating, from earlier ones."""
    r = data.raw
    off = _user_offsets(r.user_id)
    last = off[1:] - 1
    cs = np.concatenate([[0.0], np.cumsum(r.rating, dtype=np.float64)])
    user_mean = (cs[last] - cs[off[:-1]]) / (last - off[:-1])
    recent5 = (cs[last] - cs[last - 5]) / 5.0
    y = r.rating[last]
    return (
        float(np.sqrt(np.mean((y - user_mean) ** 2))),
        float(np.sqrt(np.mean((y - recent5) ** 2))),
    )


def test_same_seed_gives_identical_arrays():
    a = make_synthetic(n_users=300, seed=7)
    b = make_synthetic(n_users=300, seed=7)
    for x, y in [
        (a.raw.user_id, b.raw.user_id),
        (a.raw.item_id, b.raw.item_id),
        (a.raw.rating, b.raw.rating),
        (a.raw.timestamp, b.raw.timestamp),
        (a.embedding, b.embedding),
        (a.embedding_item_id, b.embedding_item_id),
        (a.catalog.title, b.catalog.title),
        (a.catalog.genres, b.catalog.genres),
    ]:
        assert x.dtype == y.dtype
        if x.dtype == object:
            assert x.tolist() == y.tolist()
        else:
            assert x.tobytes() == y.tobytes()
    assert a.hash == b.hash
    assert a.noise_floor_rmse == b.noise_floor_rmse
    assert a.params == b.params


def test_different_seed_gives_different_data():
    a = make_synthetic(n_users=300, seed=1)
    b = make_synthetic(n_users=300, seed=2)
    assert a.hash != b.hash
    n = min(len(a.raw), len(b.raw))
    assert not np.array_equal(a.raw.item_id[:n], b.raw.item_id[:n])
    assert not np.array_equal(a.embedding, b.embedding)


def test_shapes_dtypes_and_ids(data):
    r = data.raw
    n, m = len(r), 540  # round(0.27 * 2000)
    assert data.params["n_items"] == m and data.params["n_ratings"] == n
    assert r.user_id.dtype == np.int64 and r.item_id.dtype == np.int64
    assert r.rating.dtype == np.float32 and r.timestamp.dtype == np.int64
    assert r.rating.shape == r.timestamp.shape == r.item_id.shape == (n,)
    assert r.source == "synthetic" and r.scale == SCALE
    np.testing.assert_array_equal(np.unique(r.user_id), np.arange(1, 2001))
    assert r.item_id.min() >= 1 and r.item_id.max() <= m
    assert np.all(np.diff(r.user_id) >= 0)  # user-major, like MovieLens files

    np.testing.assert_array_equal(data.catalog.item_id, np.arange(1, m + 1))
    np.testing.assert_array_equal(data.embedding_item_id, data.catalog.item_id)
    assert data.embedding.shape == (m, 300) and data.embedding.dtype == np.float32
    assert np.isfinite(data.embedding).all()
    assert re.fullmatch(r"Synthetic Movie 123 \((19|20)\d\d\)", data.catalog.title[122])
    names = {g for g, _ in GENRES}
    for gs in data.catalog.genres:
        parts = gs.split("|")
        assert parts and set(parts) <= names and len(set(parts)) == len(parts)
    assert data.item_factors.shape == (m, 16) and data.user_taste.shape == (2000, 16)
    json.dumps(data.params)  # JSON-able


def test_emb_dim_is_settable():
    d = make_synthetic(n_users=200, emb_dim=32)
    assert d.embedding.shape == (d.params["n_items"], 32)


def test_no_user_rates_a_movie_twice(data):
    r = data.raw
    key = r.user_id * (data.params["n_items"] + 1) + r.item_id
    assert _all_distinct(key)


def test_user_activity(data):
    counts = np.bincount(data.raw.user_id)[1:]
    assert counts.min() >= 20
    assert counts.max() <= data.params["n_items"]
    assert 60 <= counts.mean() <= 76  # the notebook's 68 per user, ± sampling
    assert np.median(counts) < counts.mean()  # right-skewed, like MovieLens


def test_heavy_users_are_capped_at_the_catalog_and_still_distinct():
    # 40 movies, mean 60 ratings: most users want more than a quarter (or all) of the
    # catalogue, which goes through the Gumbel-top-k path
    d = make_synthetic(n_users=50, n_items=40, mean_ratings_per_user=60)
    r = d.raw
    counts = np.bincount(r.user_id)[1:]
    assert counts.min() >= 20 and counts.max() == 40
    assert _all_distinct(r.user_id * 100 + r.item_id)


def test_item_sampler_matches_exact_sampling_without_replacement():
    # the with-replacement stream (first distinct draws) and Gumbel-top-k are both exact
    # successive sampling, so their inclusion frequencies must agree
    m, n, k = 40, 20_000, 8
    p = 0.8 ** np.arange(m)
    p /= p.sum()
    counts = np.full(n, k, dtype=np.int64)
    stream = synthetic._sample_items(np.random.default_rng(0), counts, p)
    users = np.arange(n, dtype=np.int64)
    keys = synthetic._gumbel_top_k(np.random.default_rng(1), np.log(p), users, counts)
    assert _all_distinct(np.arange(n).repeat(k) * m + stream)  # distinct
    assert _all_distinct(keys)
    f_stream = np.bincount(stream, minlength=m) / n
    f_gumbel = np.bincount(keys % m, minlength=m) / n
    np.testing.assert_allclose(f_stream, f_gumbel, atol=0.02)  # ~4 standard errors


def test_item_sampler_inclusion_probabilities_by_hand():
    # 2 of {a, b, c} with p = (.5, .3, .2) (plus 9 negligible items so that the stream path
    # is used): P(a) = .5 + .3 * .5/.7 + .2 * .5/.8 = .8393, P(b) = .3 + .5 * .3/.5 +
    # .2 * .3/.8 = .675, P(c) = .2 + .5 * .2/.5 + .3 * .2/.7 = .4857
    p = np.array([0.5, 0.3, 0.2] + [1e-12] * 9)
    p /= p.sum()
    n = 40_000
    items = synthetic._sample_items(np.random.default_rng(3), np.full(n, 2), p)
    freq = np.bincount(items, minlength=12)[:3] / n
    np.testing.assert_allclose(freq, [0.8393, 0.675, 0.4857], atol=0.015)


def test_chunked_sampling_is_still_valid(monkeypatch):
    monkeypatch.setattr(synthetic, "_CHUNK_DRAWS", 1000)  # ~15 users per chunk
    d = make_synthetic(n_users=300)
    r = d.raw
    assert _all_distinct(r.user_id * 1000 + r.item_id)
    assert np.bincount(r.user_id)[1:].min() >= 20


def test_popular_movies_are_rated_much_more(data):
    r, m = data.raw, data.params["n_items"]
    per_item = np.bincount(r.item_id - 1, minlength=m)
    top = np.sort(per_item)[::-1]
    assert top[0] > 0.3 * 2000  # the most popular movie: over 30% of users
    assert top[: m // 10].sum() > 0.25 * len(r)  # top 10% of movies: over 25% of ratings
    # and the counts follow the popularity the sampler used
    assert np.corrcoef(per_item, data.item_popularity)[0, 1] > 0.9


def test_ratings_are_half_stars_within_scale(data):
    x = data.raw.rating
    assert x.min() >= 0.5 and x.max() <= 5.0
    np.testing.assert_array_equal(x * 2, np.round(x * 2))
    whole = np.mean(x == np.round(x))
    assert 0.55 < whole < 0.9  # whole stars dominate, half stars are common (MovieLens: 0.70)
    assert set(np.unique(x).tolist()) == {0.5 * k for k in range(1, 11)}


def test_mean_and_std_look_like_movielens(data):
    x = data.raw.rating.astype(np.float64)
    assert 3.4 < x.mean() < 3.6
    assert 0.95 < x.std() < 1.12


def test_noise_floor_is_well_below_the_global_mean_rmse(data):
    global_rmse = float(data.raw.rating.std())  # the RMSE of predicting the global mean
    assert 0.72 < data.noise_floor_rmse < 0.85
    assert global_rmse - data.noise_floor_rmse > 0.2
    # the floor tracks the observation noise
    assert make_synthetic(n_users=500, noise=0.4).noise_floor_rmse < 0.5


def test_timestamps_form_sessions(data):
    r = data.raw
    off = _user_offsets(r.user_id)
    # distinct within every user
    assert _all_distinct(r.user_id * 2**31 + r.timestamp)
    assert r.timestamp.min() >= 820_454_400  # 1996
    assert r.timestamp.max() < 1_900_000_000  # before 2030
    same_user = np.diff(r.user_id) == 0
    gaps = np.diff(r.timestamp)[same_user]
    assert np.all(gaps > 0)  # file order is chronological within a user
    assert np.median(gaps) < 3600  # most consecutive ratings minutes apart...
    assert np.mean(gaps > 86_400) > 0.02  # ...but sessions days apart
    span = r.timestamp[off[1:] - 1] - r.timestamp[off[:-1]]
    assert np.median(span) > 2 * 86_400


def test_recent_ratings_predict_the_next_one(data):
    user_mean, recent5 = _last_rating_rmse(data)
    assert recent5 < 0.98 * user_mean
    # control: without session offsets and drift, the long-run mean wins again
    flat = make_synthetic(session_std=0.0, drift_std=0.0)
    user_mean, recent5 = _last_rating_rmse(flat)
    assert recent5 > user_mean


def test_embeddings_carry_item_signal(data):
    x = data.embedding
    assert _ridge_r2(x, data.item_bias, lam=1000.0) > 0.3
    assert _ridge_r2(x, data.item_factors, lam=1000.0) > 0.3
    # control: an embedding with no view of the latents explains nothing
    blind = make_synthetic(emb_fidelity=0.0)
    assert _ridge_r2(blind.embedding, blind.item_factors, lam=1000.0) < 0.05


def test_genres_correlate_with_item_factors(data):
    names = [g for g, _ in GENRES]
    onehot = np.array([[g in gs.split("|") for g in names] for gs in data.catalog.genres])
    assert _ridge_r2(onehot, data.item_factors, lam=1.0) > 0.03
    drama = onehot[:, names.index("Drama")].mean()
    imax = onehot[:, names.index("IMAX")].mean()
    assert drama > 0.3 and imax < 0.05  # MovieLens-like genre shares


def test_builds_interactions(data):
    inter = build_interactions(data.raw)
    assert inter.n_users == 2000 and len(inter) == len(data.raw)
    np.testing.assert_array_equal(inter.rating, data.raw.rating)  # already (user, time) sorted


def test_write_embeddings_parquet(data, tmp_path):
    path = tmp_path / "sub" / "emb.parquet"
    assert write_embeddings_parquet(data, path) == path
    write_embeddings_parquet(data, path)  # overwriting is fine
    table = pq.read_table(path)
    assert table.schema.field("movieId").type == pa.int64()
    assert table.schema.field("embedding").type == pa.list_(pa.float32())
    np.testing.assert_array_equal(table["movieId"].to_numpy(), data.embedding_item_id)
    emb = np.stack(table["embedding"].to_numpy(zero_copy_only=False))
    np.testing.assert_array_equal(emb, data.embedding)
    assert sorted(p.name for p in path.parent.iterdir()) == ["emb.parquet"]  # no temp left


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_users": 0},
        {"n_items": 10},
        {"mean_ratings_per_user": 5},
        {"p_whole": 1.5},
        {"noise": -0.1},
        {"session_len": 0.5},
        {"emb_fidelity": 2.0},
    ],
)
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        make_synthetic(**kwargs)


@pytest.mark.slow
def test_full_notebook_scale():
    d = make_synthetic(n_users=200_000)
    r = d.raw
    assert d.params["n_items"] == 54_000
    assert 0.9 * 13.7e6 < len(r) < 1.1 * 13.7e6
    assert np.bincount(r.user_id)[1:].min() >= 20
    assert (np.bincount(r.item_id) > 0).sum() > 0.95 * 54_000
    key = r.user_id * 100_000 + r.item_id
    assert _all_distinct(key)
    assert d.embedding.shape == (54_000, 300)
    assert 3.4 < float(r.rating.mean()) < 3.6
