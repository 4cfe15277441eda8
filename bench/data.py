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
    """A short, stable content hash (the first 16 hex chars of a SHA-256) of arrays and a
    string. SHA-256 rather than BLAKE2: CPUs with SHA extensions hash it about twice as fast
    (measured 0.21 s vs 0.41 s for 384 MB), and the dataset hash runs on every load."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.data.cast("B"))
    h.update(extra.encode())
    return h.hexdigest()[:16]


def _dense_codes(ids: NDArray[np.int64]) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """(codes (N,) int32, sorted unique ids): code = rank of the id among the unique ids.

    A lookup table when the ids are small non-negative integers (MovieLens), else a sort."""
    n = ids.shape[0]
    if n and ids.min() >= 0 and ids.max() < 4 * n + (1 << 20):
        present = np.zeros(int(ids.max()) + 1, dtype=bool)
        present[ids] = True
        lut = np.cumsum(present, dtype=np.int32) - 1
        return lut[ids], np.flatnonzero(present).astype(np.int64)
    codes, uniq = pd.factorize(ids, sort=True)
    return codes.astype(np.int32), np.asarray(uniq, dtype=np.int64)


def _user_time_order(user: NDArray[np.int32], ts: NDArray[np.int64]) -> NDArray[np.int64]:
    """Row order sorting by (user, timestamp), stable (file order on ties)."""
    n = user.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    tmin, tmax = int(ts.min()), int(ts.max())
    bits_t = max(1, (tmax - tmin).bit_length())
    bits_u = max(1, int(user.max()).bit_length())
    if bits_t + bits_u <= 62:  # one combined int64 key: one stable sort instead of lexsort
        key = (user.astype(np.int64) << bits_t) + (ts - tmin)
        if np.all(key[1:] >= key[:-1]):
            return np.arange(n, dtype=np.int64)
        return np.argsort(key, kind="stable")
    return np.lexsort((ts, user))


def content_hash(
    user_ids: NDArray[np.int64],
    user: NDArray[np.int32],
    item_ids: NDArray[np.int64],
    item: NDArray[np.int32],
    rating: NDArray[np.float32],
    timestamp: NDArray[np.int64],
    scale: RatingScale,
    chunk: int = 1 << 20,
) -> str:
    """The dataset hash: ``hash_arrays(user_ids[user], item_ids[item], rating, timestamp,
    extra=repr(scale))``, streamed ``chunk`` rows at a time so that it holds no (N,) int64
    temporaries. It depends on the original ids and values only, not on the dense codes."""
    h = hashlib.sha256()  # as hash_arrays
    for id_map, col in ((user_ids, user), (item_ids, item), (None, rating), (None, timestamp)):
        dtype = col.dtype if id_map is None else id_map.dtype
        h.update(str(dtype).encode())
        h.update(str(col.shape).encode())
        for lo in range(0, col.shape[0], chunk):
            piece = col[lo : lo + chunk] if id_map is None else id_map[col[lo : lo + chunk]]
            h.update(np.ascontiguousarray(piece).data.cast("B"))
    h.update(repr(scale.to_dict()).encode())
    return h.hexdigest()[:16]


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
    user_codes, uid = _dense_codes(np.asarray(raw.user_id, dtype=np.int64))
    item_codes, iid = _dense_codes(np.asarray(raw.item_id, dtype=np.int64))
    ts = np.asarray(raw.timestamp, dtype=np.int64)
    order = _user_time_order(user_codes, ts)  # stable: file order on equal (user, timestamp)
    n_users = int(uid.shape[0])
    user_sorted = user_codes[order]
    counts = np.bincount(user_sorted, minlength=n_users)
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    # first appearance of every user in file order (pandas' drop_duplicates order): the
    # smallest original row among each user's rows
    first_row = np.minimum.reduceat(order, offsets[:-1]) if n_users else order[:0]
    first_seen = np.argsort(first_row, kind="stable").astype(np.int32)
    item_s = item_codes[order]
    rating_s = rating[order]
    ts_s = ts[order]
    digest = content_hash(uid, user_sorted, iid, item_s, rating_s, ts_s, raw.scale)
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
