"""The array containers: range gathering, left-padded windows, validation re-insertion."""

from __future__ import annotations

import numpy as np
import pytest

from predictors.types import EventStore, HistoryBatch, RatingScale, gather_ranges, last_k


def test_gather_ranges_by_hand():
    idx, off = gather_ranges(np.array([5, 0, 3]), np.array([7, 0, 6]))
    assert idx.tolist() == [5, 6, 3, 4, 5]
    assert off.tolist() == [0, 2, 2, 5]
    with pytest.raises(ValueError):
        gather_ranges(np.array([3]), np.array([2]))


def _store():
    # user 0: items 10, 11, 12 ; user 1: nothing ; user 2: items 20, 21
    return EventStore(
        user_offsets=np.array([0, 3, 3, 5]),
        item=np.array([10, 11, 12, 20, 21], dtype=np.int32),
        rating=np.array([1, 2, 3, 4, 5], dtype=np.float32),
        timestamp=np.arange(5, dtype=np.int64),
    )


def test_history_batch_from_store_and_take():
    s = _store()
    b = HistoryBatch.from_store(s, np.array([0, 2, 0]), np.array([2, 4, 0]))
    assert b.hist_offsets.tolist() == [0, 2, 3, 3]
    assert b.hist_item.tolist() == [10, 11, 20]
    assert b.target_item.tolist() == [12, 21, 10]
    t = b.take(np.array([1, 0]))
    assert t.hist_item.tolist() == [20, 10, 11]
    assert t.target_item.tolist() == [21, 12]


def test_last_k_left_pads_like_the_notebook():
    s = _store()
    b = HistoryBatch.from_store(s, np.array([0, 0]), np.array([2, 0]))
    rows, mask = last_k(b, 3)
    assert mask.tolist() == [[False, True, True], [False, False, False]]
    assert b.hist_item[rows[0, 1:]].tolist() == [10, 11]


def test_rating_scale():
    sc = RatingScale(0.5, 5.0, 0.5)
    assert sc.clip(np.array([0.0, 6.0, 3.0])).tolist() == [0.5, 5.0, 3.0]
    assert np.allclose(sc.from_unit(sc.to_unit(np.array([0.5, 2.75, 5.0]))), [0.5, 2.75, 5.0])
    with pytest.raises(ValueError):
        RatingScale(5, 1)
