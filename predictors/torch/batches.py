"""Array-backed history windows of the torch models, gathered by tensor indexing.

- ``SequenceData`` holds an event store as tensors on the device (plus the training target
  positions) and gathers a training batch of B targets purely by tensor indexing: for target
  row ``p`` of a user whose rows start at ``s``, the history rows are ``p - L .. p - 1`` and
  a column is real where its row is ``>= s`` (left padding, the notebook's layout; the newest
  event is column ``L - 1``). No per-sample ``Dataset.__getitem__``, no Python list per batch.
- ``history_batch`` does the same for a ``HistoryBatch`` (validation and test queries).
- ``filter_store``/``filter_batch`` drop the events of items without an embedding (the
  notebook dropped every rating of such a movie before building sequences), vectorised.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from predictors.torch.device import owned
from predictors.types import EventStore, HistoryBatch, RatingScale, TrainSet, last_k

__all__ = [
    "SeqBatch",
    "SequenceData",
    "filter_batch",
    "filter_store",
    "history_batch",
    "normalised_embeddings",
]


def normalised_embeddings(vectors: NDArray[np.floating], device: torch.device) -> Tensor:
    """(n_items, D) float32 L2-normalised rows on ``device`` (zero rows stay zero), as the
    notebook's ``embeddings / (norm + 1e-12)``."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return owned(v / (norms + 1e-12), device)


@dataclass(frozen=True)
class SeqBatch:
    """B left-padded history windows of length L, with their targets, on one device."""

    hist_item: Tensor  # (B, L) int64 item codes, 0 where padded
    hist_rating: Tensor  # (B, L) float32 ratings scaled to [0, 1], 0 where padded
    mask: Tensor  # (B, L) bool, True on real events; column L - 1 is the newest
    target_item: Tensor  # (B,) int64
    target_rating: Tensor | None = None  # (B,) float32 in [0, 1]; None for queries
    # (B, L) float32 seconds from each history event to the target time (>= 0), 0 where
    # padded; None when the batch was built without times
    hist_gap: Tensor | None = None

    def __len__(self) -> int:
        return int(self.target_item.shape[0])

    def slice(self, lo: int, hi: int) -> SeqBatch:
        tr = None if self.target_rating is None else self.target_rating[lo:hi]
        gap = None if self.hist_gap is None else self.hist_gap[lo:hi]
        return SeqBatch(
            self.hist_item[lo:hi],
            self.hist_rating[lo:hi],
            self.mask[lo:hi],
            self.target_item[lo:hi],
            tr,
            gap,
        )

    def index(self, idx: Tensor) -> SeqBatch:
        tr = None if self.target_rating is None else self.target_rating[idx]
        gap = None if self.hist_gap is None else self.hist_gap[idx]
        return SeqBatch(
            self.hist_item[idx],
            self.hist_rating[idx],
            self.mask[idx],
            self.target_item[idx],
            tr,
            gap,
        )


def filter_store(
    store: EventStore, keep: NDArray[np.bool_]
) -> tuple[EventStore, NDArray[np.int64]]:
    """Drop the events where ``keep`` (N,) is False. Returns the new store and (N,) int64
    the new row of every old row (-1 for dropped rows). Vectorised."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return store, np.arange(store.n_events, dtype=np.int64)
    user = store.user()
    counts = np.bincount(user[keep], minlength=store.n_users)
    offsets = np.zeros(store.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    new_row = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)
    new = EventStore(
        user_offsets=offsets,
        item=store.item[keep],
        rating=store.rating[keep],
        timestamp=store.timestamp[keep],
    )
    return new, new_row


def filter_batch(batch: HistoryBatch, keep_item: NDArray[np.bool_] | None) -> HistoryBatch:
    """``batch`` without the history rows whose item is not in ``keep_item`` (n_items,)."""
    if keep_item is None or batch.hist_item.size == 0:
        return batch
    keep = keep_item[batch.hist_item]
    if keep.all():
        return batch
    counts = np.bincount(batch.hist_query()[keep], minlength=len(batch))
    offsets = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    hist = batch.history_store()
    return HistoryBatch.of_rows(
        batch.user, batch.target_item, batch.target_time, hist, keep, offsets
    )


def history_batch(
    batch: HistoryBatch,
    window: int,
    scale: RatingScale,
    device: torch.device,
    *,
    keep_item: NDArray[np.bool_] | None = None,
) -> SeqBatch:
    """The last ``window`` history events of every query as a left-padded ``SeqBatch`` on
    ``device`` (history rows whose item is not in ``keep_item`` are dropped first)."""
    batch = filter_batch(batch, keep_item)
    rows, mask = last_k(batch, window)  # (B, L) each
    if batch.hist_item.size:
        item = np.where(mask, batch.hist_item[rows], 0).astype(np.int64)
        rating = np.where(mask, scale.to_unit(batch.hist_rating)[rows], 0.0).astype(np.float32)
        dt = batch.target_time[:, None] - batch.hist_timestamp[rows]  # (B, L) int64
        gap = np.where(mask, np.maximum(dt, 0), 0).astype(np.float32)
    else:
        item = np.zeros(rows.shape, dtype=np.int64)
        rating = np.zeros(rows.shape, dtype=np.float32)
        gap = np.zeros(rows.shape, dtype=np.float32)
    return SeqBatch(
        hist_item=owned(item, device),
        hist_rating=owned(rating, device),
        mask=owned(mask, device),
        target_item=owned(batch.target_item.astype(np.int64), device),
        hist_gap=owned(gap, device),
    )


class SequenceData:
    """An event store as tensors on the device, plus the training targets (rows of it).

    ``gather(idx)`` returns the ``SeqBatch`` of targets ``idx`` (B,) by pure indexing::

        rows = target_pos[:, None] - L + arange(L)      # (B, L)
        mask = rows >= target_start[:, None]           # same user, left padding
    """

    def __init__(
        self,
        store: EventStore,
        target_pos: NDArray[np.integer],
        scale: RatingScale,
        window: int,
        device: torch.device,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        target_pos = np.asarray(target_pos, dtype=np.int64)
        user = store.user()
        self.window = int(window)
        self.device = device
        self.item = owned(store.item.astype(np.int64), device)  # (N,) int64
        self.rating = owned(scale.to_unit(store.rating), device)  # (N,) float32
        self.timestamp = owned(store.timestamp.astype(np.int64), device)  # (N,)
        self.target_pos = owned(target_pos, device)  # (T,) int64
        start = store.user_offsets[:-1][user[target_pos]] if target_pos.size else target_pos
        self.target_start = owned(np.asarray(start, dtype=np.int64), device)
        self._cols = torch.arange(-self.window, 0, device=device)  # (L,)

    def __len__(self) -> int:
        return int(self.target_pos.shape[0])

    @classmethod
    def from_train(
        cls,
        train: TrainSet,
        window: int,
        device: torch.device,
        *,
        keep_item: NDArray[np.bool_] | None = None,
        min_history: int = 0,
        targets: str = "split",
    ) -> tuple[SequenceData, dict[str, int]]:
        """Training targets of ``train`` over ``train.events``: the split's ``train_pos``
        (``targets="split"``) or every event of ``train.events`` (``"all"``; each with the
        user's earlier events as history: all of them precede the validation targets).
        Events of items outside ``keep_item`` are dropped first (targets on them are
        skipped); targets with fewer than ``min_history`` remaining history events are
        skipped. Returns the data and the counts of skipped targets."""
        if targets == "split":
            pos = np.asarray(train.train_pos, dtype=np.int64)
        elif targets == "all":
            pos = np.arange(train.events.n_events, dtype=np.int64)
        else:
            raise ValueError(f"targets must be 'split' or 'all', got {targets!r}")
        store = train.events
        n0 = int(pos.size)
        skipped_item = 0
        if keep_item is not None:
            keep = keep_item[store.item]
            store, new_row = filter_store(store, keep)
            pos = new_row[pos]
            skipped_item = int((pos < 0).sum())
            pos = pos[pos >= 0]
        skipped_hist = 0
        if min_history > 0 and pos.size:
            start = store.user_offsets[:-1][store.user()[pos]]
            ok = pos - start >= min_history
            skipped_hist = int((~ok).sum())
            pos = pos[ok]
        info = {
            "n_targets": n0,
            "skipped_no_embedding": skipped_item,
            "skipped_short_history": skipped_hist,
        }
        return cls(store, pos, train.scale, window, device), info

    def gather(self, idx: Tensor) -> SeqBatch:
        """The ``SeqBatch`` of training targets ``idx`` (B,) int64 (device tensor)."""
        pos = self.target_pos[idx]  # (B,)
        rows = pos[:, None] + self._cols  # (B, L)
        mask = rows >= self.target_start[idx][:, None]  # (B, L)
        rows = torch.where(mask, rows, torch.zeros_like(rows))
        hist_item = torch.where(mask, self.item[rows], torch.zeros_like(rows))
        hist_rating = self.rating[rows] * mask
        gap = (self.timestamp[pos][:, None] - self.timestamp[rows]).clamp_min(0) * mask
        return SeqBatch(hist_item, hist_rating, mask, self.item[pos], self.rating[pos], gap.float())
