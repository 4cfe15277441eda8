"""Loaded rating logs: raw columns with original ids, and the dense, user-sorted Interactions.

``RawRatings`` is what every reader returns (a file, a catalog dataset, the synthetic
generator). ``build_interactions`` turns it into ``Interactions``: dense int codes, events
sorted by (user, timestamp) with a stable tie-break (file order), CSR user offsets.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.errors import DataError
from predictors.types import EventStore, RatingScale

__all__ = [
    "Catalog",
    "Interactions",
    "RawRatings",
    "build_interactions",
    "drop_items",
    "hash_arrays",
]


@dataclass(frozen=True)
class RawRatings:
    """A ratings log as read, in file order, with original ids."""

    user_id: NDArray[np.int64]  # (N,) int64 original user ids
    item_id: NDArray[np.int64]  # (N,) int64 original movie ids
    rating: NDArray[np.float32]  # (N,) float32 on the original scale
    timestamp: NDArray[np.int64]  # (N,) int64 seconds
    scale: RatingScale
    source: str  # where it came from (dataset name or file), for messages and results

    def __len__(self) -> int:
        return int(self.user_id.shape[0])


@dataclass(frozen=True)
class Catalog:
    """Movie metadata: titles and genres (and tags when the dataset has them)."""

    item_id: NDArray[np.int64]  # (M,) int64 original movie ids, unique
    title: NDArray[np.object_]  # (M,) str
    genres: NDArray[np.object_]  # (M,) str, pipe-separated ("Action|Comedy"); "" if unknown
    tags: pd.DataFrame | None = None  # columns item_id (int64), tag (str); one row per application

    def titles_by_id(self) -> dict[int, str]:
        return dict(zip(self.item_id.tolist(), self.title.tolist(), strict=True))


def hash_arrays(*arrays: NDArray[Any], extra: str = "") -> str:
    """A short, stable content hash (blake2b, 16 hex chars) of arrays and a string."""
    h = hashlib.blake2b(digest_size=8)
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(memoryview(a).cast("B"))
    h.update(extra.encode())
    return h.hexdigest()


@dataclass(frozen=True)
class Interactions:
    """All ratings, one row per event, sorted by (user, timestamp), file order on ties."""

    user: NDArray[np.int32]  # (N,) int32 dense user codes, non-decreasing
    item: NDArray[np.int32]  # (N,) int32 dense item codes
    rating: NDArray[np.float32]  # (N,) float32 original scale
    timestamp: NDArray[np.int64]  # (N,) int64 seconds
    user_offsets: NDArray[np.int64]  # (n_users + 1,) int64 CSR offsets
    user_ids: NDArray[np.int64]  # (n_users,) int64 original id of each user code
    item_ids: NDArray[np.int64]  # (n_items,) int64 original id of each item code
    user_first_seen: NDArray[
        np.int32
    ]  # (n_users,) int32 user codes in order of first appearance in the file
    scale: RatingScale
    name: str
    hash: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    def __len__(self) -> int:
        return int(self.user.shape[0])

    def store(self) -> EventStore:
        return EventStore(
            user_offsets=self.user_offsets,
            item=self.item,
            rating=self.rating,
            timestamp=self.timestamp,
        )

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.hash,
            "n_ratings": len(self),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "scale": self.scale.to_dict(),
            **self.meta,
        }


def build_interactions(raw: RawRatings, *, name: str | None = None) -> Interactions:
    """Dense-code and sort a raw log. Vectorised; O(N log N).

    Raises ``DataError`` if the log is empty or a rating lies outside ``raw.scale``.
    """
    n = len(raw)
    if n == 0:
        raise DataError(f"{raw.source}: no ratings to load (the table is empty)")
    rating = np.asarray(raw.rating, dtype=np.float32)
    bad = ~np.isfinite(rating)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{raw.source}: column 'rating' has {int(bad.sum())} NaN/inf value(s) "
            f"(first at data row {i + 1}); expected finite numbers"
        )
    lo, hi = raw.scale.low, raw.scale.high
    out = (rating < lo) | (rating > hi)
    if out.any():
        i = int(np.flatnonzero(out)[0])
        raise DataError(
            f"{raw.source}: column 'rating' has {int(out.sum())} value(s) outside the rating "
            f"scale [{lo}, {hi}] (first: {rating[i]} at data row {i + 1})"
        )
    user_codes, user_ids = pd.factorize(raw.user_id, sort=True)
    item_codes, item_ids = pd.factorize(raw.item_id, sort=True)
    user_codes = user_codes.astype(np.int32)
    item_codes = item_codes.astype(np.int32)
    ts = np.asarray(raw.timestamp, dtype=np.int64)
    order = np.lexsort((ts, user_codes))  # stable: file order on equal (user, timestamp)
    user_sorted = user_codes[order]
    n_users = len(user_ids)
    counts = np.bincount(user_sorted, minlength=n_users)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # first appearance of every user in file order (pandas' drop_duplicates order)
    first_row = np.full(n_users, n, dtype=np.int64)
    np.minimum.at(first_row, user_codes, np.arange(n, dtype=np.int64))
    first_seen = np.argsort(first_row, kind="stable").astype(np.int32)
    item_s = item_codes[order]
    rating_s = rating[order]
    ts_s = ts[order]
    uid = np.asarray(user_ids, dtype=np.int64)
    iid = np.asarray(item_ids, dtype=np.int64)
    digest = hash_arrays(
        uid[user_sorted], iid[item_s], rating_s, ts_s, extra=repr(raw.scale.to_dict())
    )
    return Interactions(
        user=user_sorted,
        item=item_s,
        rating=rating_s,
        timestamp=ts_s,
        user_offsets=offsets,
        user_ids=uid,
        item_ids=iid,
        user_first_seen=first_seen,
        scale=raw.scale,
        name=name or raw.source,
        hash=digest,
    )


def drop_items(inter: Interactions, drop: NDArray[np.bool_]) -> Interactions:
    """``inter`` without the ratings of items where ``drop`` (n_items,) is True, re-coded
    densely. Event order (user, time, original tie order) and the users' first-seen order are
    kept, so seeded user samples stay comparable. Raises ``DataError`` if nothing is left."""
    keep_ev = ~np.asarray(drop, dtype=bool)[inter.item]
    if not keep_ev.any():
        raise DataError(f"{inter.name}: no rating is left after dropping the items")
    raw = RawRatings(
        user_id=inter.user_ids[inter.user[keep_ev]],
        item_id=inter.item_ids[inter.item[keep_ev]],
        rating=inter.rating[keep_ev],
        timestamp=inter.timestamp[keep_ev],
        scale=inter.scale,
        source=inter.name,
    )
    out = build_interactions(raw, name=inter.name)
    # first-seen order: the surviving users in the original first-seen order
    new_code = np.full(inter.n_users, -1, dtype=np.int64)
    surviving = np.searchsorted(out.user_ids, inter.user_ids)
    surviving = np.minimum(surviving, out.n_users - 1)
    hit = out.user_ids[surviving] == inter.user_ids
    new_code[hit] = surviving[hit]
    order = new_code[inter.user_first_seen]
    first_seen = order[order >= 0].astype(np.int32)
    return dataclasses.replace(out, user_first_seen=first_seen, meta=dict(inter.meta))
