"""The conformance suite's synthetic data (``synthetic_world``), built from
``predictors.types`` alone: a small log with chronological histories and its leave-last-out
split into a TrainSet and a test batch."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.context import RunContext
from predictors.types import (
    EventStore,
    HistoryBatch,
    ItemEmbeddings,
    Queries,
    RatingScale,
    TrainSet,
)

__all__ = ["SCALE", "SyntheticWorld", "synthetic_world"]

# The synthetic data: continuous ratings on MovieLens's range, so that an exact match with
# a target's rating is evidence of reading it.
SCALE = RatingScale(0.5, 5.0, None)
_N_USERS = 240
_N_ITEMS = 160
_N_COLD = 3  # the last item codes: never in the TrainSet, only asked as test targets
_EMB_DIM = 16


@dataclass(frozen=True)
class SyntheticWorld:
    """A leave-last-out split of a synthetic log.

    ``log`` holds every event (users' events oldest first, strictly increasing times, each
    user rates an item at most once). Each user's last ``n_test`` events are test targets
    (``test``, one query per target, in (user, time) order, ``test_pos`` their rows in
    ``log``, ``first`` marks each user's earliest test target); the event before them is the
    validation target when the user has at least one earlier event; ``train`` holds the rest.
    Some users have a single event (a test query with an empty history), and the last
    ``_N_COLD`` item codes appear only as test targets (items never seen in training)."""

    log: EventStore
    train: TrainSet
    test: HistoryBatch
    test_pos: NDArray[np.int64]  # (B,) int64 rows of ``log``
    first: NDArray[np.bool_]  # (B,) bool: the user's first test target


def _make_log(seed: int) -> EventStore:
    """The synthetic log: ratings = mean + user and item biases + a rank-3 taste match +
    noise, continuous, clipped to ``SCALE``. Vectorised."""
    rng = np.random.default_rng([seed, 12])
    n_users, n_warm = _N_USERS, _N_ITEMS - _N_COLD
    lengths = rng.integers(4, 31, size=n_users)
    lengths[:3] = 1  # users with nothing but a test target
    lengths[3:6] = 2
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n = int(offsets[-1])
    user = np.repeat(np.arange(n_users), lengths)
    pos = np.arange(n) - offsets[user]
    # distinct items per user: the first `length` columns of a random permutation of items
    order = np.argsort(rng.random((n_users, n_warm)), axis=1)
    item = order[user, pos].astype(np.int32)
    last = offsets[1:] - 1
    cold = rng.integers(0, 3, size=n_users) == 0
    cold[:6] = False
    item[last[cold]] = rng.integers(n_warm, _N_ITEMS, size=int(cold.sum()))
    u_bias = rng.normal(0.0, 0.4, n_users)
    i_bias = rng.normal(0.0, 0.4, _N_ITEMS)
    u_f = rng.normal(0.0, 0.4, (n_users, 3))
    i_f = rng.normal(0.0, 0.4, (_N_ITEMS, 3))
    r = 3.4 + u_bias[user] + i_bias[item] + np.sum(u_f[user] * i_f[item], axis=1)
    r += rng.normal(0.0, 0.3, n)
    rating = np.clip(r, SCALE.low, SCALE.high).astype(np.float32)
    start = rng.integers(1_000_000_000, 1_100_000_000, size=n_users)
    gaps = rng.integers(60, 5 * 86_400, size=n)
    gaps[offsets[:-1]] = 0
    t = np.cumsum(gaps)
    t = t - np.repeat(t[offsets[:-1]], lengths) + start[user]
    return EventStore(user_offsets=offsets, item=item, rating=rating, timestamp=t.astype(np.int64))


def _embeddings(seed: int) -> ItemEmbeddings:
    rng = np.random.default_rng([seed, 13])
    vectors = rng.normal(0.0, 1.0, (_N_ITEMS, _EMB_DIM)).astype(np.float32)
    present = np.ones(_N_ITEMS, dtype=bool)
    present[-1] = False  # one item without a vector (its row is zero)
    vectors[~present] = 0.0
    digest = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]
    return ItemEmbeddings(name="synthetic", vectors=vectors, present=present, hash=digest)


def _split(
    log: EventStore,
    *,
    n_test: int,
    embeddings: ItemEmbeddings | None,
    context: RunContext,
) -> SyntheticWorld:
    lengths = log.lengths()
    n_users = log.n_users
    start = log.user_offsets[:-1]
    k_test = np.minimum(lengths, n_test)
    has_val = lengths - k_test >= 2  # a validation target with a non-empty history
    n_train = lengths - k_test - has_val  # events before the validation (or test) target
    user = log.user()
    pos = np.arange(log.n_events) - start[user]
    keep = pos < n_train[user]
    t_off = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(n_train, out=t_off[1:])
    events = EventStore(
        user_offsets=t_off,
        item=log.item[keep],
        rating=log.rating[keep],
        timestamp=log.timestamp[keep],
    )
    t_user = events.user()
    t_pos = np.arange(events.n_events, dtype=np.int64)
    target = t_pos - t_off[t_user] >= 1  # training targets have at least one earlier event
    val_user = np.flatnonzero(has_val).astype(np.int32)
    val_pos = start[val_user] + n_train[val_user]
    val_batch = HistoryBatch.from_store(log, val_user, val_pos)
    train = TrainSet(
        events=events,
        train_user=t_user[target],
        train_pos=t_pos[target],
        val=Queries(batch=val_batch, rating=log.rating[val_pos]),
        n_items=_N_ITEMS,
        scale=SCALE,
        embeddings=embeddings,
        context=context,
        meta={"source": "predictors.testing"},
    )
    q_user = np.repeat(np.arange(n_users, dtype=np.int32), k_test)
    q_rank = np.arange(q_user.shape[0]) - np.repeat(np.cumsum(k_test) - k_test, k_test)
    test_pos = (start[q_user] + lengths[q_user] - k_test[q_user] + q_rank).astype(np.int64)
    test = HistoryBatch.from_store(log, q_user, test_pos)
    return SyntheticWorld(log=log, train=train, test=test, test_pos=test_pos, first=q_rank == 0)


def synthetic_world(
    seed: int = 0,
    *,
    n_test: int = 1,
    embeddings: bool = False,
    context: RunContext | None = None,
) -> SyntheticWorld:
    """The suite's data: 240 users (a few with one or two events), 160 items (3 only ever
    asked as test targets), 1 to 30 events per user, ``SCALE`` = [0.5, 5] continuous.
    Built fresh on every call (cheap); ``context`` defaults to ``RunContext(seed=seed)``."""
    ctx = context if context is not None else RunContext(seed=seed, device="cpu")
    emb = _embeddings(seed) if embeddings else None
    return _split(_make_log(seed), n_test=n_test, embeddings=emb, context=ctx)


def _arrays(obj: Any, prefix: str) -> Iterator[tuple[str, NDArray[Any]]]:
    """Every numpy array reachable through dataclass fields of ``obj``, with a dotted name."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        name = f"{prefix}.{f.name}"
        if isinstance(v, np.ndarray):
            yield name, v
        elif dataclasses.is_dataclass(v) and not isinstance(v, type | RunContext):
            yield from _arrays(v, name)


def _inputs(world: SyntheticWorld) -> Iterator[tuple[str, NDArray[Any]]]:
    yield from _arrays(world.train, "train")
    yield from _arrays(world.test, "batch")
