"""Chronological leave-last-out split, vectorised (no per-user Python loop).

With ``test_targets = N`` (default 1, the notebook's split), for every user with at least
``min_history + N`` events (oldest first, positions 0..n-1):

- the test targets are positions ``n - N .. n - 1``, each predicted from its full past: the
  earlier test targets are part of the history of the later ones (a rolling evaluation; a
  target's own rating is never in its history);
- the validation target is position ``n - N - 1`` when ``n >= min_history + N + 1``: one per
  user whatever N, because validation only chooses settings and epochs, and one target per
  user already covers every user;
- training targets are positions ``min_history .. n - N - 2``; with ``samples_per_user = S``
  and more than S of them, the notebook's evenly spaced choice
  ``positions[::len(positions) // S][:S]`` is kept;
- a target's history is every earlier event of the same user.

N = 1 is bit for bit the split (and the split hash) this module always built.

What fitting may see (``TrainSet.events``) is each kept user's events before the
validation target (before the test target for users without one). Users with fewer events
are dropped entirely, as the notebook did. ``sample_users = N`` keeps N users drawn like
the notebook's ``userId.drop_duplicates().sample(n=N, random_state=seed)`` on a file sorted
by user (as MovieLens' are): the population is the users in ascending id order, so that the
sample, like everything else in the split, depends on the ratings and not on the row order.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench import parsing
from bench.data.types import Interactions, hash_arrays
from bench.declare import check_section, from_record, run_option, to_record
from bench.errors import DataError
from predictors.contract import RunContext
from predictors.options import Integer
from predictors.types import (
    EventStore,
    HistoryBatch,
    ItemEmbeddings,
    Queries,
    TrainSet,
    gather_ranges,
)

__all__ = ["PROTOCOLS", "Split", "SplitParams", "make_split"]


@dataclass(frozen=True, kw_only=True)
class SplitParams:
    """The split section of a run (``bench.spec``): each field a declared run option
    (``bench.declare``), its default the protocol's (``PROTOCOLS``, chosen by ``--protocol``)."""

    min_history: int = run_option(
        10, Integer(1), help="Users need min_history + test_targets events."
    )
    # the model window; recorded and passed to models, not used here
    max_history: int = run_option(30, Integer(1), help="Model history window.")
    samples_per_user: int | None = run_option(
        5,
        None,
        Integer(1),
        parse=parsing.int_or_all,
        help="Training targets per user, evenly spaced, or 'all'.",
    )
    sample_users: int | None = run_option(
        None, None, Integer(1), help="Keep N users, drawn with --split-seed (default: every user)."
    )
    split_seed: int = run_option(42, Integer(), was=("seed",), help="Seed of the user sample.")
    test_targets: int = run_option(
        1,
        Integer(1),
        help="Each user's last N events are test targets, each predicted from its full past; "
        "users need min_history + N events. Intervals resample users.",
    )

    #: the protocol presets: ``bench.declare.build`` takes this section's defaults from the
    #: preset that the run's ``protocol`` names
    preset_by: ClassVar[str] = "protocol"
    presets: ClassVar[dict[str, SplitParams]]

    def __post_init__(self) -> None:
        check_section(self)

    def to_dict(self) -> dict[str, Any]:
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SplitParams:
        """The parameters ``to_dict`` (or an earlier version, with ``seed``) recorded."""
        return from_record(cls, d)

    def hash_items(self) -> list[tuple[str, Any]]:
        """The parameters the split hash covers: all of them, under the names the hash has
        always used (``seed`` for ``split_seed``), with ``test_targets`` left out at its
        default of 1 so that the one-target split keeps the hash it always had."""
        d = self.to_dict()
        d["seed"] = d.pop("split_seed")
        if d["test_targets"] == 1:
            del d["test_targets"]
        return sorted(d.items())


# Named presets. "notebook" reproduces the research notebook's quick-test protocol.
PROTOCOLS: dict[str, SplitParams] = {
    "default": SplitParams(),
    "notebook": SplitParams(sample_users=2000, split_seed=42),
}
SplitParams.presets = PROTOCOLS


@dataclass(frozen=True)
class Split:
    """Target positions as absolute rows of the ``Interactions`` they were built from."""

    params: SplitParams
    dataset_hash: str
    n_users_total: int
    kept_users: NDArray[np.int32]  # (U,) int32 users with test targets, ascending
    test_user: NDArray[np.int32]  # (K,) int32, K = U * test_targets, grouped by user
    test_pos: NDArray[np.int64]  # (K,) int64, ascending within a user
    val_user: NDArray[np.int32]  # (V,) int32
    val_pos: NDArray[np.int64]  # (V,) int64
    train_user: NDArray[np.int32]  # (T,) int32
    train_pos: NDArray[np.int64]  # (T,) int64
    fit_len: NDArray[np.int64]  # (n_users,) int64 leading events per user that fit may see
    hash: str

    def counts(self) -> dict[str, int]:
        return {
            "users": int(self.kept_users.shape[0]),
            "train": int(self.train_pos.shape[0]),
            "val": int(self.val_pos.shape[0]),
            "test": int(self.test_pos.shape[0]),
            "fit_events": int(self.fit_len.sum()),
        }

    def summary(self) -> dict[str, Any]:
        return {
            "params": self.params.to_dict(),
            "hash": self.hash,
            "counts": self.counts(),
            "targets": {
                "test_per_user": self.params.test_targets,
                "validation": "one per user, the event before its first test target",
                "test_history": "every earlier event of the user, earlier test targets included",
            },
        }

    # -- views ---------------------------------------------------------------------------
    def fit_store(self, inter: Interactions) -> EventStore:
        """The events fitting may see: each user's first ``fit_len[u]`` events."""
        self._check(inter)
        starts = inter.user_offsets[:-1]
        offsets = np.zeros(inter.n_users + 1, dtype=np.int64)
        np.cumsum(self.fit_len, out=offsets[1:])
        lens = self.fit_len
        idx = np.arange(int(offsets[-1]), dtype=np.int64) + np.repeat(starts - offsets[:-1], lens)
        return EventStore(
            user_offsets=offsets,
            item=inter.item[idx],
            rating=inter.rating[idx],
            timestamp=inter.timestamp[idx],
        )

    def train_set(
        self,
        inter: Interactions,
        *,
        embeddings: ItemEmbeddings | None = None,
        seed: int = 0,
        context: RunContext | None = None,
    ) -> TrainSet:
        """What fitting may see. ``context`` (default: ``RunContext(seed=seed)``) carries the
        run's seed, device and progress reporter to the model."""
        store = self.fit_store(inter)
        # absolute row -> row in the fit store (same user, same position within the user)
        shift = store.user_offsets[:-1] - inter.user_offsets[:-1]
        train_pos = self.train_pos + shift[self.train_user]
        val_batch = self._val_batch(inter, store)
        val = Queries(batch=val_batch, rating=inter.rating[self.val_pos].copy())
        train_user = self.train_user.view()  # a view: the split's own array stays as it is
        # read-only: every model of a run is handed the same arrays, and one that writes
        # into them fails instead of changing what the next model sees
        shown = [getattr(c, f.name) for c in (store, val_batch) for f in dataclasses.fields(c)]
        for a in (*shown, train_user, train_pos, val.rating):
            a.flags.writeable = False
        return TrainSet(
            events=store,
            train_user=train_user,
            train_pos=train_pos,
            val=val,
            n_items=inter.n_items,
            scale=inter.scale,
            embeddings=embeddings,
            context=context if context is not None else RunContext(seed=seed),
            meta={
                "max_history": self.params.max_history,
                "min_history": self.params.min_history,
                "n_users": inter.n_users,
            },
        )

    def _val_batch(self, inter: Interactions, store: EventStore) -> HistoryBatch:
        """The validation queries. A validation target directly follows its user's fit
        events, so its history is exactly the user's rows of the fit store: gathered from
        there, and shared without a copy when those rows are the whole store (every kept
        user has a validation target), which saves a second copy of the data."""
        vu = self.val_user
        starts, ends = store.user_offsets[vu], store.user_offsets[vu + 1]
        lens = ends - starts
        offsets = np.zeros(vu.shape[0] + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        whole = bool(offsets[-1] == store.n_events) and bool(np.all(starts == offsets[:-1]))
        if whole:
            item, rating, ts = store.item, store.rating, store.timestamp
        else:
            idx, offsets = gather_ranges(starts, ends)
            item, rating, ts = store.item[idx], store.rating[idx], store.timestamp[idx]
        return HistoryBatch(
            user=vu.view(),
            target_item=inter.item[self.val_pos],
            target_time=inter.timestamp[self.val_pos],
            hist_offsets=offsets,
            hist_item=item,
            hist_rating=rating,
            hist_timestamp=ts,
        )

    def test_batches(
        self, inter: Interactions, chunk: int = 50_000
    ) -> Iterator[tuple[slice, HistoryBatch]]:
        """Test queries in bounded chunks, as (slice into the test arrays, batch)."""
        self._check(inter)
        store = inter.store()
        n = self.test_pos.shape[0]
        for lo in range(0, n, chunk):
            sl = slice(lo, min(n, lo + chunk))
            yield sl, HistoryBatch.from_store(store, self.test_user[sl], self.test_pos[sl])

    def test_truth(self, inter: Interactions) -> NDArray[np.float32]:
        """(K,) float32 the test ratings: for the metrics code only."""
        self._check(inter)
        return inter.rating[self.test_pos]

    def _check(self, inter: Interactions) -> None:
        if inter.hash != self.dataset_hash:
            raise ValueError("this split was built from a different dataset")


def _sample_users(inter: Interactions, n: int, seed: int) -> NDArray[np.bool_]:
    keep = np.zeros(inter.n_users, dtype=bool)
    if n >= inter.n_users:
        keep[:] = True
        return keep
    order = pd.Series(np.arange(inter.n_users, dtype=np.int32))  # ascending original id
    chosen = order.sample(n=n, random_state=seed).to_numpy()
    keep[chosen] = True
    return keep


def make_split(inter: Interactions, params: SplitParams | None = None) -> Split:
    """Build the leave-last-out split. Raises ``DataError`` when no user is long enough."""
    p = params or SplitParams()
    n_test = p.test_targets
    lens = np.diff(inter.user_offsets)
    starts = inter.user_offsets[:-1]
    eligible = lens >= p.min_history + n_test
    if p.sample_users is not None:
        eligible &= _sample_users(inter, p.sample_users, p.split_seed)
    kept = np.flatnonzero(eligible).astype(np.int32)
    if kept.size == 0:
        longest = int(lens.max()) if lens.size else 0
        if n_test > 1:
            could = int((lens >= p.min_history + 1).sum())
            raise DataError(
                f"{inter.name}: --test-targets {n_test} needs users with at least "
                f"min_history + {n_test} = {p.min_history + n_test} ratings, and none has "
                f"(longest history: {longest}; {could:,} users qualify for --test-targets 1)"
            )
        raise DataError(
            f"{inter.name}: no user has at least min_history + 1 = {p.min_history + 1} ratings "
            f"(longest history: {longest}); lower --min-history"
        )
    k_len = lens[kept]
    k_start = starts[kept]
    # (U, N) the last N positions of every kept user, oldest first, flattened by user
    test_pos = (k_start + k_len - n_test)[:, None] + np.arange(n_test, dtype=np.int64)
    test_user = np.repeat(kept, n_test)
    test_pos = test_pos.ravel()
    has_val = k_len >= p.min_history + n_test + 1
    val_user = kept[has_val]
    val_pos = (k_start + k_len - n_test - 1)[has_val]
    # training targets: local positions min_history .. n - N - 2
    n_pos = np.maximum(k_len - n_test - 1 - p.min_history, 0)
    if p.samples_per_user is None:
        take = n_pos
        step = np.ones_like(n_pos)
    else:
        s = p.samples_per_user
        many = n_pos > s
        take = np.where(many, s, n_pos)
        step = np.where(many, n_pos // s, 1)
    t_user = np.repeat(kept, take)
    grp_start = np.zeros(take.shape[0] + 1, dtype=np.int64)
    np.cumsum(take, out=grp_start[1:])
    j = np.arange(int(grp_start[-1]), dtype=np.int64) - np.repeat(grp_start[:-1], take)
    t_pos = np.repeat(k_start + p.min_history, take) + j * np.repeat(step, take)
    fit_len = np.zeros(inter.n_users, dtype=np.int64)
    fit_len[kept] = np.where(has_val, k_len - n_test - 1, k_len - n_test)
    digest = hash_arrays(test_pos, val_pos, t_pos, extra=inter.hash + repr(p.hash_items()))
    return Split(
        params=p,
        dataset_hash=inter.hash,
        n_users_total=inter.n_users,
        kept_users=kept,
        test_user=test_user.astype(np.int32),
        test_pos=test_pos.astype(np.int64),
        val_user=val_user.astype(np.int32),
        val_pos=val_pos.astype(np.int64),
        train_user=t_user.astype(np.int32),
        train_pos=t_pos.astype(np.int64),
        fit_len=fit_len,
        hash=digest,
    )
