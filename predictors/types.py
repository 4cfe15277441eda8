"""Array containers exchanged between the harness and the predictors.

Every container is a frozen dataclass of numpy arrays; each field is commented with its
shape and dtype. Users and items are dense integer codes (0..n_users-1, 0..n_items-1);
the harness keeps the maps back to the original ids. A predictor never sees the rating of
the target it is asked to predict: ``HistoryBatch`` carries history and target item only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.context import RunContext

__all__ = [
    "EventStore",
    "HistoryBatch",
    "ItemEmbeddings",
    "Queries",
    "RatingScale",
    "TrainSet",
    "gather_ranges",
    "last_k",
]


@dataclass(frozen=True)
class RatingScale:
    """The closed interval of valid ratings, and the grid step when ratings are discrete."""

    low: float
    high: float
    step: float | None = None  # e.g. 0.5 for MovieLens half stars; None when continuous

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high) and self.low < self.high):
            raise ValueError(f"rating scale needs finite low < high, got [{self.low}, {self.high}]")
        if self.step is not None and not self.step > 0:
            raise ValueError(f"rating scale step must be > 0, got {self.step}")

    @property
    def width(self) -> float:
        return float(self.high - self.low)

    @property
    def mid(self) -> float:
        return float(self.low + self.high) / 2.0

    def clip(self, x: NDArray[np.floating]) -> NDArray[np.float32]:
        return np.clip(x, self.low, self.high).astype(np.float32, copy=False)

    def to_unit(self, r: NDArray[np.floating]) -> NDArray[np.float32]:
        """Map ratings to [0, 1] (the notebook's normalisation)."""
        return ((np.asarray(r, dtype=np.float32) - self.low) / self.width).astype(np.float32)

    def from_unit(self, u: NDArray[np.floating]) -> NDArray[np.float32]:
        return (np.asarray(u, dtype=np.float32) * self.width + self.low).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "step": self.step}


@dataclass(frozen=True)
class ItemEmbeddings:
    """An item-code-aligned embedding matrix. Rows of items without an embedding are zero
    and flagged in ``present``."""

    name: str
    vectors: NDArray[np.float32]  # (n_items, D) float32
    present: NDArray[np.bool_]  # (n_items,) bool: True where the item has a real vector
    hash: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


@dataclass(frozen=True)
class EventStore:
    """Ratings grouped by user in CSR form, each user's events oldest first.

    User ``u``'s events are rows ``user_offsets[u]:user_offsets[u + 1]``.
    """

    user_offsets: NDArray[np.int64]  # (n_users + 1,) int64, non-decreasing, starts at 0
    item: NDArray[np.int32]  # (N,) int32 item codes
    rating: NDArray[np.float32]  # (N,) float32 on the original scale
    timestamp: NDArray[np.int64]  # (N,) int64 seconds

    @property
    def n_users(self) -> int:
        return int(self.user_offsets.shape[0] - 1)

    @property
    def n_events(self) -> int:
        return int(self.item.shape[0])

    def lengths(self) -> NDArray[np.int64]:
        """(n_users,) int64 number of events per user."""
        return np.diff(self.user_offsets)

    def user(self) -> NDArray[np.int32]:
        """(N,) int32 the user code of every event."""
        return np.repeat(np.arange(self.n_users, dtype=np.int32), self.lengths())


def gather_ranges(
    starts: NDArray[np.int64], ends: NDArray[np.int64]
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Concatenate index ranges ``[starts[b], ends[b])`` without a Python loop.

    Returns ``(index, offsets)``: ``index`` (sum of lengths,) int64 and ``offsets`` (B+1,)
    int64 so that range ``b`` is ``index[offsets[b]:offsets[b+1]]``.
    """
    starts = np.asarray(starts, dtype=np.int64)
    lens = np.asarray(ends, dtype=np.int64) - starts
    if np.any(lens < 0):
        raise ValueError("gather_ranges: every end must be >= its start")
    offsets = np.zeros(lens.shape[0] + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    total = int(offsets[-1])
    # position within the range, plus the range's start
    index = np.arange(total, dtype=np.int64) - np.repeat(offsets[:-1] - starts, lens)
    return index, offsets


@dataclass(frozen=True)
class HistoryBatch:
    """B queries: each a user's history (oldest first), a target item and a target time.

    Query ``b``'s history is rows ``hist_offsets[b]:hist_offsets[b + 1]`` of the ``hist_*``
    arrays. It holds every earlier event of the user (models truncate to their own window).
    The target rating is deliberately absent.
    """

    user: NDArray[np.int32]  # (B,) int32 user codes
    target_item: NDArray[np.int32]  # (B,) int32 item codes
    target_time: NDArray[np.int64]  # (B,) int64 seconds
    hist_offsets: NDArray[np.int64]  # (B + 1,) int64
    hist_item: NDArray[np.int32]  # (H,) int32
    hist_rating: NDArray[np.float32]  # (H,) float32
    hist_timestamp: NDArray[np.int64]  # (H,) int64

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def hist_lengths(self) -> NDArray[np.int64]:
        """(B,) int64 history length of every query."""
        return np.diff(self.hist_offsets)

    def hist_query(self) -> NDArray[np.int64]:
        """(H,) int64 the query index of every history row."""
        return np.repeat(np.arange(len(self), dtype=np.int64), self.hist_lengths())

    def history_store(self) -> EventStore:
        """The histories as an ``EventStore`` of B row groups, group ``b`` query ``b``'s
        history (the arrays shared, not copied)."""
        return EventStore(
            user_offsets=self.hist_offsets,
            item=self.hist_item,
            rating=self.hist_rating,
            timestamp=self.hist_timestamp,
        )

    @staticmethod
    def of_rows(
        user: NDArray[np.int32],
        target_item: NDArray[np.int32],
        target_time: NDArray[np.int64],
        events: EventStore,
        rows: NDArray[np.integer] | NDArray[np.bool_],
        offsets: NDArray[np.int64],
    ) -> HistoryBatch:
        """B queries whose histories are rows of ``events``: ``rows`` (H,) int64 row numbers
        (or an (N,) bool mask of the rows kept, in store order), query ``b``'s history its
        entries ``offsets[b]:offsets[b + 1]`` ((B + 1,) int64)."""
        return HistoryBatch(
            user=user,
            target_item=target_item,
            target_time=target_time,
            hist_offsets=offsets,
            hist_item=events.item[rows],
            hist_rating=events.rating[rows],
            hist_timestamp=events.timestamp[rows],
        )

    def take(self, rows: NDArray[np.integer]) -> HistoryBatch:
        """The sub-batch of the given query rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        idx, off = gather_ranges(self.hist_offsets[rows], self.hist_offsets[rows + 1])
        hist = self.history_store()
        return HistoryBatch.of_rows(
            self.user[rows], self.target_item[rows], self.target_time[rows], hist, idx, off
        )

    @staticmethod
    def from_store(
        store: EventStore, user: NDArray[np.integer], target_pos: NDArray[np.integer]
    ) -> HistoryBatch:
        """Queries whose target is event ``target_pos[b]`` (absolute row) of ``store`` and
        whose history is the user's events before it. The target's rating is not copied."""
        codes = np.asarray(user, dtype=np.int32)
        target_pos = np.asarray(target_pos, dtype=np.int64)
        idx, off = gather_ranges(store.user_offsets[codes], target_pos)  # type: ignore[arg-type]
        return HistoryBatch.of_rows(
            codes, store.item[target_pos], store.timestamp[target_pos], store, idx, off
        )


def last_k(batch: HistoryBatch, k: int) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """The last ``k`` history rows of every query, left-padded as the notebook did.

    Returns ``(rows, mask)``, both (B, k): ``rows`` indexes the ``hist_*`` arrays (0 where
    padded) and ``mask`` is True on real events. The newest event is in column ``k - 1``.
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    end = batch.hist_offsets[1:]  # (B,)
    start = batch.hist_offsets[:-1]
    cols = np.arange(-k, 0, dtype=np.int64)  # (k,)
    rows = end[:, None] + cols[None, :]  # (B, k)
    mask = rows >= start[:, None]
    rows = np.where(mask, rows, 0)
    return rows, mask


@dataclass(frozen=True)
class Queries:
    """A set of queries with their truth, for model selection (validation) only."""

    batch: HistoryBatch
    rating: NDArray[np.float32]  # (B,) float32 truth on the original scale


@dataclass(frozen=True)
class TrainSet:
    """Everything fitting may see.

    ``events`` holds, for every user in the split, the events before the user's validation
    target (before the test target for users too short to have one). Training targets are
    rows of ``events`` (``train_pos``); a target's history is the user's earlier rows.
    ``val`` are the validation queries with their truth, for model selection and early
    stopping only. ``val_events()`` adds the validation targets back into the store, for
    models that refit once their hyper-parameters are chosen (every test history contains
    its validation target anyway).
    """

    events: EventStore
    train_user: NDArray[np.int32]  # (T,) int32 user of each training target
    train_pos: NDArray[np.int64]  # (T,) int64 row of each training target in ``events``
    val: Queries
    n_items: int
    scale: RatingScale
    embeddings: ItemEmbeddings | None = None
    context: RunContext = field(default_factory=RunContext)  # seed, device, progress
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        """The run's seed (``context.seed``)."""
        return self.context.seed

    @property
    def n_users(self) -> int:
        return self.events.n_users

    def train_queries(self) -> Queries:
        """The training targets as queries (history = earlier events of the user)."""
        batch = HistoryBatch.from_store(self.events, self.train_user, self.train_pos)
        return Queries(batch=batch, rating=self.events.rating[self.train_pos])

    def val_events(self) -> EventStore:
        """``events`` with each user's validation target appended at the end of the user's
        rows: everything before the test targets. Vectorised; returns a new store."""
        ev = self.events
        n_users = ev.n_users
        extra = np.zeros(n_users, dtype=np.int64)
        vu = self.val.batch.user
        extra[vu] = 1
        lens = ev.lengths() + extra
        offsets = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        n = int(offsets[-1])
        item = np.empty(n, dtype=np.int32)
        rating = np.empty(n, dtype=np.float32)
        ts = np.empty(n, dtype=np.int64)
        # old rows shift by the number of extra rows inserted before their user
        shift = np.repeat(offsets[:-1] - ev.user_offsets[:-1], ev.lengths())
        dest = np.arange(ev.n_events, dtype=np.int64) + shift
        item[dest] = ev.item
        rating[dest] = ev.rating
        ts[dest] = ev.timestamp
        last = offsets[vu + 1] - 1
        item[last] = self.val.batch.target_item
        rating[last] = self.val.rating
        ts[last] = self.val.batch.target_time
        return EventStore(user_offsets=offsets, item=item, rating=rating, timestamp=ts)
