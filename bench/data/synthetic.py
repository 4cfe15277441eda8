"""A synthetic, MovieLens-like ratings log with known latent structure, for tests and benchmarks.

``make_synthetic`` draws users, movies, who rated what and when, the ratings, a movie catalog
and a 300-d item embedding from one seed, fully vectorised (no per-user Python loop): the
notebook's full scale (200k users, ~13.7M ratings, ~54k movies) takes seconds.

Generative model
----------------
Users ``u = 1..U``, movies ``i = 1..M`` (``M ≈ 0.27 U`` by default), ``k`` latent factors.

Movies::

    z_i ~ N(0, 1)                                   popularity score
    rank_i = position of i when sorted by z_i, descending (0 = most popular)
    p_i ∝ (rank_i + c)^(-a)                         Zipf-like popularity (a = pop_exponent)
    b_i = s_item (ρ z_i + sqrt(1 - ρ²) ξ_i) - β      item bias; ρ = pop_quality_corr, ξ_i ~ N(0, 1)
                                                    β centres it on ratings: Σ_i p_i b_i = 0
    q_i ~ N(0, I_k)                                 item factors

Users::

    n_u = min(M, 20 + floor(LogNormal(μ_n, σ_n)))  activity; μ_n set so that E[n_u] ≈ mean
    b_u ~ N(0, s_user²)                             long-run user bias
    t_u ~ N(0, (s_taste² / k) I_k)                  taste, so Var(t_u · q_i) = s_taste²

Who rated what: user ``u`` rates ``n_u`` distinct movies drawn without replacement with
probabilities ``p`` (successive sampling: first ``n_u`` distinct movies of an i.i.d. stream
from ``p``; Gumbel-top-k for users who need over a quarter of the movies), in random
chronological order.

When: the user's ``j``-th rating starts a new session with probability ``1 / session_len``
(the first always does). With ``S_u`` sessions, session ``s = 0..S_u-1`` has::

    e_{u,s} ~ N(0, s_session²)                      short-term offset shared by the session
    d_{u,s} = Σ_{s' ≤ s, s' ≥ 1} s_drift η_{u,s'} / sqrt(S_u - 1),  η ~ N(0, 1), d_{u,0} = 0

i.e. ``d`` is a Brownian drift over the user's timeline whose end point has variance
``s_drift²``. Timestamps (seconds) start at a uniform date in 1996–2020; within a session
consecutive ratings are ``1 + Exp(gap_within)`` seconds apart, and sessions are
``Exp(G_u)`` apart with ``G_u ~ LogNormal(log gap_between_days, 1)`` days.

Ratings::

    μ_ui = g + b_u + b_i + t_u · q_i + d_{u,s} + e_{u,s}         (the latent expected rating)
    x_ui = μ_ui + ε,  ε ~ N(0, noise²)
    r_ui = clip(round(x_ui), 1, 5)          with prob. p_whole (whole stars)
         = clip(round(2 x_ui) / 2, 0.5, 5)  otherwise             (half stars)

``noise_floor_rmse`` is the RMSE of ``E[r_ui | μ_ui]`` (computed exactly from the normal CDF
over the rounding thresholds) against the observed ratings: the error of a model that knew
every latent variable, i.e. the best any model can do in expectation.

Catalog: titles ``"Synthetic Movie {id} ({year})"``; genres (pipe-separated, from the
MovieLens list) drawn per movie as ``Bernoulli(sigmoid(c_g + 1.5 q_i · w_g / sqrt(k)))`` with
``w_g ~ N(0, I_k)`` and ``c_g`` set so that genre shares match MovieLens; at least one genre
per movie. Genres thus correlate with the item factors, hence with taste.

Embedding: a noisy view of ``L_i = [q_i, b_i / s_item, n_i]`` (``n_i ~ N(0, I_8)`` are
rating-irrelevant "content" dimensions)::

    L̃_i = sqrt(f) L_i + sqrt(1 - f) ν_i,   E_i = L̃_i W / sqrt(dim L) + emb_noise ω_i

with ``f = emb_fidelity``, a fixed random ``W ~ N(0, 1)`` and ``ν, ω ~ N(0, 1)``. A linear
model on ``E`` recovers about a fraction ``f`` of the variance of each item latent.

Calibration (defaults, checked against ml-latest-small): mean ≈ 3.50, std ≈ 1.07 (so the
global mean's RMSE ≈ 1.07), noise floor ≈ 0.76; ≈ 73% of ratings on whole stars (half the
half-star roundings land on whole stars too; MovieLens: 70%); the most popular movie is rated
by ~45% of users at full scale, the median movie by ~14; the mean of a user's last 5 ratings
predicts the next one ~4% better (RMSE) than the user's long-run mean, as on MovieLens.
Ids are codes + 1. Output rows are sorted by (user, timestamp), timestamps strictly
increasing within a user.

Everything is deterministic under ``seed``: the same arguments give byte-identical arrays.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.special import ndtr

from bench.data.types import Catalog, RawRatings, hash_arrays
from bench.errors import ConfigError
from predictors.types import RatingScale

__all__ = [
    "GENRES",
    "SCALE",
    "SyntheticData",
    "make_synthetic",
    "write_embeddings_parquet",
]

SCALE = RatingScale(0.5, 5.0, 0.5)

# MovieLens genres with their approximate share of movies in MovieLens 25M.
GENRES: tuple[tuple[str, float], ...] = (
    ("Action", 0.12),
    ("Adventure", 0.07),
    ("Animation", 0.05),
    ("Children", 0.05),
    ("Comedy", 0.27),
    ("Crime", 0.09),
    ("Documentary", 0.09),
    ("Drama", 0.41),
    ("Fantasy", 0.04),
    ("Film-Noir", 0.01),
    ("Horror", 0.09),
    ("IMAX", 0.01),
    ("Musical", 0.02),
    ("Mystery", 0.04),
    ("Romance", 0.12),
    ("Sci-Fi", 0.06),
    ("Thriller", 0.14),
    ("War", 0.03),
    ("Western", 0.02),
)

_MIN_RATINGS = 20  # MovieLens keeps users with at least 20 ratings
_T0 = 820_454_400  # 1996-01-01 UTC
_T1 = 1_577_836_800  # 2020-01-01 UTC
_N_CONTENT = 8  # rating-irrelevant latent dims mixed into the embedding
_CHUNK_DRAWS = 2_000_000  # bound on draws held at once while sampling items


@dataclass(frozen=True)
class SyntheticData:
    """A generated dataset: the ratings log, the catalog, an item embedding and the truth."""

    raw: RawRatings  # N ratings sorted by (user, timestamp); ids start at 1
    catalog: Catalog  # (M,) every movie, rated or not
    embedding_item_id: NDArray[np.int64]  # (M,) int64 movie ids of the embedding rows
    embedding: NDArray[np.float32]  # (M, emb_dim) float32
    noise_floor_rmse: float  # RMSE of E[r | latents] vs observed: the best reachable RMSE
    params: dict[str, Any]  # every setting, JSON-able
    # the latent truth, indexed by code (id - 1), for tests of what models recover
    user_bias: NDArray[np.float32]  # (U,) float32 long-run user bias b_u
    user_taste: NDArray[np.float32]  # (U, k) float32 taste vectors t_u
    item_bias: NDArray[np.float32]  # (M,) float32 item bias b_i
    item_factors: NDArray[np.float32]  # (M, k) float32 item factors q_i
    item_popularity: NDArray[np.float64]  # (M,) float64 sampling probabilities p_i

    @property
    def hash(self) -> str:
        """A content hash of the ratings and the embedding."""
        r = self.raw
        return hash_arrays(
            r.user_id, r.item_id, r.rating, r.timestamp, self.embedding_item_id, self.embedding
        )


def make_synthetic(
    *,
    n_users: int = 2000,
    n_items: int | None = None,
    mean_ratings_per_user: float = 68.0,
    n_factors: int = 16,
    emb_dim: int = 300,
    noise: float = 0.8,
    seed: int = 0,
    global_mean: float = 3.58,
    user_bias_std: float = 0.25,
    item_bias_std: float = 0.3,
    taste_std: float = 0.3,
    drift_std: float = 0.5,
    session_std: float = 0.6,
    session_len: float = 20.0,
    p_whole: float = 0.4,
    pop_exponent: float = 1.5,
    pop_offset: float = 50.0,
    pop_quality_corr: float = 0.3,
    activity_sigma: float = 1.1,
    gap_within_s: float = 40.0,
    gap_between_days: float = 7.0,
    emb_fidelity: float = 0.6,
    emb_noise: float = 1.0,
) -> SyntheticData:
    """Generate a MovieLens-like dataset (see the module docstring for the model).

    ``n_items`` defaults to ``round(0.27 * n_users)`` (54k movies for 200k users, as in the
    notebook's data); ``mean_ratings_per_user`` (68: 13.7M / 200k) includes the minimum of
    20 ratings per user. Raises ``ConfigError`` for invalid settings (e.g. fewer than 20
    movies, non-positive sizes or standard deviations).
    """
    if n_items is None:
        n_items = max(_MIN_RATINGS, round(0.27 * n_users))
    params: dict[str, Any] = {
        "generator": "synthetic-v1",
        "n_users": int(n_users),
        "n_items": int(n_items),
        "mean_ratings_per_user": float(mean_ratings_per_user),
        "n_factors": int(n_factors),
        "emb_dim": int(emb_dim),
        "noise": float(noise),
        "seed": int(seed),
        "global_mean": float(global_mean),
        "user_bias_std": float(user_bias_std),
        "item_bias_std": float(item_bias_std),
        "taste_std": float(taste_std),
        "drift_std": float(drift_std),
        "session_std": float(session_std),
        "session_len": float(session_len),
        "p_whole": float(p_whole),
        "pop_exponent": float(pop_exponent),
        "pop_offset": float(pop_offset),
        "pop_quality_corr": float(pop_quality_corr),
        "activity_sigma": float(activity_sigma),
        "gap_within_s": float(gap_within_s),
        "gap_between_days": float(gap_between_days),
        "emb_fidelity": float(emb_fidelity),
        "emb_noise": float(emb_noise),
    }
    _validate(params)
    U, M, k = int(n_users), int(n_items), int(n_factors)
    rng = np.random.default_rng(seed)

    # --- movies -------------------------------------------------------------------------
    z_pop = rng.standard_normal(M)  # (M,) popularity score
    rank = np.empty(M, dtype=np.int64)
    rank[np.argsort(-z_pop, kind="stable")] = np.arange(M)
    w = (rank + pop_offset) ** (-pop_exponent)
    p = w / w.sum()  # (M,) popularity
    rho = pop_quality_corr
    b_item = item_bias_std * (rho * z_pop + math.sqrt(1 - rho**2) * rng.standard_normal(M))
    b_item -= p @ b_item  # centred on ratings, so that the mean rating stays near g
    q = rng.standard_normal((M, k)).astype(np.float32)  # (M, k) item factors

    # --- users --------------------------------------------------------------------------
    extra_mean = max(mean_ratings_per_user - _MIN_RATINGS + 0.5, 1e-3)
    mu_n = math.log(extra_mean) - activity_sigma**2 / 2
    n_extra = np.floor(rng.lognormal(mu_n, activity_sigma, U))
    counts = np.minimum(_MIN_RATINGS + n_extra, M).astype(np.int64)  # (U,)
    b_user = user_bias_std * rng.standard_normal(U)
    taste = (rng.standard_normal((U, k)) * (taste_std / math.sqrt(k))).astype(np.float32)

    # --- who rated what (user-major, random chronological order within a user) ----------
    item = _sample_items(rng, counts, p)  # (N,) int64 item codes
    N = int(item.shape[0])
    offsets = np.zeros(U + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    user = np.repeat(np.arange(U, dtype=np.int64), counts)  # (N,)
    pos = np.arange(N, dtype=np.int64) - offsets[user]  # (N,) position within the user

    # --- sessions, drift and timestamps -------------------------------------------------
    new_session = rng.random(N) < 1.0 / session_len
    new_session[offsets[:-1]] = True
    session = np.cumsum(new_session) - 1  # (N,) global session id
    S = int(session[-1]) + 1
    sess_start = np.flatnonzero(new_session)  # (S,) first rating of each session
    sess_user = user[sess_start]  # (S,)
    first_sess = session[offsets[:-1]]  # (U,) global id of each user's first session
    n_sess = np.diff(np.append(first_sess, S))  # (U,) sessions per user
    step = rng.standard_normal(S) * (drift_std / np.sqrt(np.maximum(n_sess - 1, 1)))[sess_user]
    step[first_sess] = 0.0
    csum = np.cumsum(step)
    drift = csum - csum[first_sess][sess_user]  # (S,) Brownian drift, 0 at the first session
    sess_offset = session_std * rng.standard_normal(S)  # (S,)
    del step, csum

    user_start = rng.integers(_T0, _T1, U)  # (U,) seconds
    between = np.exp(math.log(gap_between_days) + rng.standard_normal(U)) * 86_400.0  # (U,)
    gap = 1.0 + rng.exponential(gap_within_s, N)  # (N,) seconds within a session
    sess_gap = rng.exponential(1.0, S) * between[sess_user]
    gap[sess_start] = np.maximum(sess_gap, 1.0)
    gap[offsets[:-1]] = 0.0
    gap_i = np.floor(gap).astype(np.int64)
    del gap, sess_gap
    tcum = np.cumsum(gap_i)
    timestamp = tcum - tcum[offsets[:-1]][user] + user_start[user]  # (N,) increasing per user
    del tcum, gap_i, pos

    # --- ratings ------------------------------------------------------------------------
    mu = np.empty(N, dtype=np.float64)  # (N,) latent expected rating
    step_rows = 1_000_000
    for lo in range(0, N, step_rows):  # chunks bound the (rows, k) gathers
        sl = slice(lo, min(lo + step_rows, N))
        u, i = user[sl], item[sl]
        dot = np.einsum("ij,ij->i", taste[u], q[i], dtype=np.float32)
        s = session[sl]
        mu[sl] = global_mean + b_user[u] + b_item[i] + dot + drift[s] + sess_offset[s]
    del session
    x = mu + noise * rng.standard_normal(N)
    whole = rng.random(N) < p_whole
    r_whole = np.clip(np.floor(x + 0.5), 1.0, 5.0)
    r_half = np.clip(np.floor(2.0 * x + 0.5) / 2.0, 0.5, 5.0)
    rating = np.where(whole, r_whole, r_half).astype(np.float32)  # (N,)
    del x, whole, r_whole, r_half

    expected = _expected_rating(mu, noise, p_whole)
    noise_floor = float(np.sqrt(np.mean((expected - rating) ** 2)))
    del expected, mu

    # --- catalog and embedding ----------------------------------------------------------
    item_ids = np.arange(1, M + 1, dtype=np.int64)
    catalog = _catalog(rng, item_ids, q)
    embedding = _embedding(rng, q, b_item / item_bias_std, emb_dim, emb_fidelity, emb_noise)

    raw = RawRatings(
        user_id=user + 1,
        item_id=item + 1,
        rating=rating,
        timestamp=timestamp,
        scale=SCALE,
        source="synthetic",
    )
    params["n_ratings"] = N
    return SyntheticData(
        raw=raw,
        catalog=catalog,
        embedding_item_id=item_ids.copy(),
        embedding=embedding,
        noise_floor_rmse=noise_floor,
        params=params,
        user_bias=b_user.astype(np.float32),
        user_taste=taste,
        item_bias=b_item.astype(np.float32),
        item_factors=q,
        item_popularity=p,
    )


def write_embeddings_parquet(data: SyntheticData, path: str | os.PathLike[str]) -> Path:
    """Write ``data``'s embedding in the notebook's format: columns ``movieId`` (int64) and
    ``embedding`` (list<float32>), one row per movie, atomically (``bench.embeddings.
    write_embedding_parquet``). Returns the path."""
    from bench.embeddings import write_embedding_parquet

    path = Path(path)
    write_embedding_parquet(path, data.embedding_item_id, data.embedding)
    return path


# --------------------------------------------------------------------------------------
# internals


def _validate(p: dict[str, Any]) -> None:
    def bad(name: str, why: str) -> ConfigError:
        return ConfigError(f"make_synthetic: {name}={p[name]!r} {why}")

    for name in ("n_users", "n_factors", "emb_dim"):
        if p[name] < 1:
            raise bad(name, "must be >= 1")
    if p["n_items"] < _MIN_RATINGS:
        raise bad("n_items", f"must be >= {_MIN_RATINGS} (every user rates at least that many)")
    if p["mean_ratings_per_user"] < _MIN_RATINGS:
        raise bad("mean_ratings_per_user", f"must be >= {_MIN_RATINGS}")
    for name in (
        "noise",
        "user_bias_std",
        "item_bias_std",
        "taste_std",
        "drift_std",
        "session_std",
        "activity_sigma",
        "pop_exponent",
        "emb_noise",
    ):
        if not (math.isfinite(p[name]) and p[name] >= 0):
            raise bad(name, "must be a finite number >= 0")
    for name in ("gap_within_s", "gap_between_days", "pop_offset"):
        if not (math.isfinite(p[name]) and p[name] > 0):
            raise bad(name, "must be a finite number > 0")
    if not p["session_len"] >= 1:
        raise bad("session_len", "must be >= 1 (mean ratings per session)")
    for name in ("p_whole", "emb_fidelity"):
        if not 0 <= p[name] <= 1:
            raise bad(name, "must lie in [0, 1]")
    if not -1 < p["pop_quality_corr"] < 1:
        raise bad("pop_quality_corr", "must lie in (-1, 1)")
    if p["item_bias_std"] == 0:
        raise bad("item_bias_std", "must be > 0")


def _sample_items(
    rng: np.random.Generator, counts: NDArray[np.int64], p: NDArray[np.float64]
) -> NDArray[np.int64]:
    """For every user ``u``, ``counts[u]`` distinct items drawn without replacement with
    probabilities ``p`` (successive sampling), in random order, concatenated user by user.

    Users are processed in contiguous chunks of at most ~``_CHUNK_DRAWS`` draws. Within a
    chunk, each round draws ``~1.3 x`` the missing count per pending user with replacement
    from ``p`` and keeps each user's first new distinct items in draw order (which is exactly
    sequential sampling without replacement). Users who need more than a quarter of all
    items, or are still short after a few rounds, use the Gumbel-top-k trick instead.
    Returns (sum(counts),) int64 item codes.
    """
    M = int(p.shape[0])
    by_rank = np.argsort(-p, kind="stable")  # (M,) items, most popular first
    cdf = np.cumsum(p[by_rank])
    cdf /= cdf[-1]
    guide = np.searchsorted(cdf, np.arange(4 * M) / (4 * M), side="right")  # (4M,)
    log_p = np.log(p)
    U = int(counts.shape[0])
    offsets = np.zeros(U + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.int64)
    heavy_limit = M // 4

    lo = 0
    while lo < U:
        # the largest chunk [lo, hi) with at most _CHUNK_DRAWS ratings (at least one user)
        hi = int(np.searchsorted(offsets, offsets[lo] + _CHUNK_DRAWS, side="right")) - 1
        hi = min(max(hi, lo + 1), U)
        need = counts[lo:hi]  # (C,)
        C = hi - lo
        keys = np.empty(0, dtype=np.int64)  # accepted keys user_local * M + item
        pending = np.flatnonzero(need <= heavy_limit)
        gumbel_users = [np.flatnonzero(need > heavy_limit)]
        for rnd in range(6):
            if pending.size == 0:
                break
            have = np.bincount(keys // M, minlength=C)[pending]
            draws = np.ceil((need[pending] - have) * (1.3 * 2**rnd)).astype(np.int64) + 2
            u = np.repeat(pending, draws)
            it = by_rank[_inverse_cdf(cdf, guide, rng.random(u.shape[0]))]
            is_pending = np.zeros(C, dtype=bool)
            is_pending[pending] = True
            done_keys = keys[~is_pending[keys // M]]
            cand = np.concatenate([keys[is_pending[keys // M]], u * M + it])
            uniq, first = np.unique(cand, return_index=True)
            uniq = uniq[np.argsort(first, kind="stable")]  # distinct keys in draw order
            uu = uniq // M
            order = np.argsort(uu, kind="stable")  # grouped by user, draw order within
            uniq, uu = uniq[order], uu[order]
            rank = np.arange(uu.shape[0]) - np.searchsorted(uu, np.arange(C))[uu]
            kept = uniq[rank < need[uu]]
            keys = np.concatenate([done_keys, kept])
            got = np.bincount(kept // M, minlength=C)
            pending = pending[got[pending] < need[pending]]
        if pending.size:  # still short after the rounds: redo them with Gumbel-top-k
            is_pending = np.zeros(C, dtype=bool)
            is_pending[pending] = True
            keys = keys[~is_pending[keys // M]]
            gumbel_users.append(pending)
        g_users = np.concatenate(gumbel_users)
        if g_users.size:
            keys = np.concatenate([keys, _gumbel_top_k(rng, log_p, g_users, need[g_users])])
        # random chronological order within each user
        uu = keys // M
        shuffle_key = (uu << 32) | rng.integers(0, 2**32, keys.shape[0], dtype=np.int64)
        keys = keys[np.argsort(shuffle_key)]
        out[offsets[lo] : offsets[hi]] = keys % M
        lo = hi
    return out


def _inverse_cdf(
    cdf: NDArray[np.float64], guide: NDArray[np.int64], u: NDArray[np.float64]
) -> NDArray[np.int64]:
    """``np.searchsorted(cdf, u, side="right")`` for ``u`` in [0, 1) and ``cdf[-1] == 1``, via a
    guide table (``guide[b]`` = the answer for ``b / len(guide)``): one gather plus a few
    short vectorised steps, ~3x faster than a binary search over a large ``cdf``."""
    k = guide.shape[0]
    j = guide[(u * k).astype(np.int64)]
    active = np.flatnonzero(cdf[j] <= u)
    while active.size:
        j[active] += 1
        active = active[cdf[j[active]] <= u[active]]
    return j


def _gumbel_top_k(
    rng: np.random.Generator,
    log_p: NDArray[np.float64],
    users: NDArray[np.int64],
    need: NDArray[np.int64],
) -> NDArray[np.int64]:
    """Keys ``user * M + item``: the top ``need[b]`` items of ``log_p + Gumbel`` for each
    user ``users[b]`` (exact sampling without replacement). Rows are processed in batches."""
    M = int(log_p.shape[0])
    rows_per_batch = max(1, 4_000_000 // M)
    parts = []
    for lo in range(0, users.shape[0], rows_per_batch):
        u = users[lo : lo + rows_per_batch]
        n = need[lo : lo + rows_per_batch]
        score = log_p[None, :] + rng.gumbel(size=(u.shape[0], M))  # (B, M)
        top = np.argsort(-score, axis=1, kind="stable")  # (B, M)
        mask = np.arange(M)[None, :] < n[:, None]
        parts.append((u[:, None] * M + top)[mask])
    return np.concatenate(parts)


def _expected_rating(mu: NDArray[np.float64], noise: float, p_whole: float) -> NDArray[np.float64]:
    """``E[r | μ]`` under the rounding model, evaluated exactly on a fine grid of ``μ`` and
    interpolated (the function is smooth; the grid step 1e-3 gives errors below 1e-6)."""
    lo, hi = float(mu.min()) - 1e-3, float(mu.max()) + 1e-3
    grid = np.linspace(lo, hi, max(2, math.ceil((hi - lo) / 1e-3) + 1))
    whole_t = np.arange(1.5, 5.0, 1.0)  # thresholds between whole stars 1..5
    half_t = np.arange(0.75, 5.0, 0.5)  # thresholds between half stars 0.5..5

    def above(t: NDArray[np.float64]) -> NDArray[np.float64]:  # (G,) Σ_t P(x > t)
        if noise == 0:
            return (grid[:, None] > t[None, :]).sum(axis=1).astype(np.float64)
        return ndtr((grid[:, None] - t[None, :]) / noise).sum(axis=1)

    e_whole = 1.0 + above(whole_t)
    e_half = 0.5 + 0.5 * above(half_t)
    e = p_whole * e_whole + (1.0 - p_whole) * e_half
    # linear interpolation on the uniform grid (np.interp's binary search is slower)
    h = grid[1] - grid[0]
    t = (mu - lo) / h
    j = np.clip(t.astype(np.int64), 0, grid.shape[0] - 2)
    t -= j
    return e[j] * (1.0 - t) + e[j + 1] * t


def _catalog(
    rng: np.random.Generator, item_ids: NDArray[np.int64], q: NDArray[np.float32]
) -> Catalog:
    """Titles with a release year, and genres correlated with the item factors ``q``."""
    M, k = q.shape
    years = np.clip(2023 - np.floor(rng.exponential(15.0, M)), 1902, 2023).astype(np.int64)
    title = np.char.add(
        np.char.add("Synthetic Movie ", item_ids.astype(str)),
        np.char.add(" (", np.char.add(years.astype(str), ")")),
    ).astype(object)
    names = [g for g, _ in GENRES]
    share = np.array([r for _, r in GENRES])  # (G,)
    wg = rng.standard_normal((k, len(GENRES)))  # (k, G)
    signal = 1.5 * (q.astype(np.float64) @ wg) / math.sqrt(k)  # (M, G)
    # intercepts so that each genre's expected share matches MovieLens (Newton steps)
    base = np.log(share / (1 - share))
    for _ in range(20):
        s = 1.0 / (1.0 + np.exp(-(base[None, :] + signal)))
        base += (share - s.mean(axis=0)) / np.maximum((s * (1 - s)).mean(axis=0), 1e-9)
    logits = base[None, :] + signal
    del signal
    member = rng.random(logits.shape) < 1.0 / (1.0 + np.exp(-logits))
    none = ~member.any(axis=1)
    member[np.flatnonzero(none), np.argmax(logits[none], axis=1)] = True
    genres = np.full(M, "", dtype=object)
    for g, name in enumerate(names):  # one pass per genre (19), vectorised over movies
        col = member[:, g]
        sep = np.where(genres[col] == "", "", "|").astype(object)
        genres[col] = genres[col] + sep + name
    return Catalog(item_id=item_ids.copy(), title=title, genres=genres)


def _embedding(
    rng: np.random.Generator,
    q: NDArray[np.float32],
    b_std: NDArray[np.float64],
    dim: int,
    fidelity: float,
    noise: float,
) -> NDArray[np.float32]:
    """(M, dim) float32: a noisy random linear view of ``[q, standardised item bias,
    rating-irrelevant content dims]``."""
    M = q.shape[0]
    content = rng.standard_normal((M, _N_CONTENT)).astype(np.float32)
    latent = np.concatenate([q, b_std[:, None].astype(np.float32), content], axis=1)  # (M, L)
    L = latent.shape[1]
    view = math.sqrt(fidelity) * latent + math.sqrt(1.0 - fidelity) * rng.standard_normal(
        (M, L), dtype=np.float32
    )
    w = rng.standard_normal((L, dim), dtype=np.float32) / np.float32(math.sqrt(L))
    emb = view @ w  # (M, dim)
    emb += np.float32(noise) * rng.standard_normal((M, dim), dtype=np.float32)
    return emb.astype(np.float32, copy=False)
