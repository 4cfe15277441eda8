"""Leave-last-out split: positions computed by hand, the notebook's loop as an oracle."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.data.split import PROTOCOLS, SplitParams, make_split
from bench.data.types import build_interactions
from bench.errors import ConfigError, DataError
from tests.conftest import make_raw


def local(inter, user_codes, pos):
    return (np.asarray(pos) - inter.user_offsets[np.asarray(user_codes)]).tolist()


def test_default_split_by_hand(tiny):
    # codes: user 3 -> 0 (12 events), user 5 -> 1 (4 events), user 7 -> 2 (14 events)
    sp = make_split(tiny, SplitParams())
    assert tiny.user_ids.tolist() == [3, 5, 7]
    assert sp.kept_users.tolist() == [0, 2]
    assert local(tiny, sp.test_user, sp.test_pos) == [11, 13]
    assert local(tiny, sp.val_user, sp.val_pos) == [10, 12]
    assert sp.train_user.tolist() == [2, 2]
    assert local(tiny, sp.train_user, sp.train_pos) == [10, 11]
    assert sp.fit_len.tolist() == [10, 0, 12]
    assert sp.counts() == {"users": 2, "train": 2, "val": 2, "test": 2, "fit_events": 22}


def test_evenly_spaced_training_positions_by_hand(tiny):
    sp = make_split(tiny, SplitParams(min_history=2, samples_per_user=3))
    # user 7: positions 2..11 (10 of them), step 10 // 3 = 3 -> 2, 5, 8
    # user 3: positions 2..9 (8), step 2 -> 2, 4, 6 ; user 5 (4 events): none (2..1)
    got = dict()
    for u, p in zip(sp.train_user.tolist(), local(tiny, sp.train_user, sp.train_pos), strict=True):
        got.setdefault(int(tiny.user_ids[u]), []).append(p)
    assert got == {3: [2, 4, 6], 7: [2, 5, 8]}
    assert local(tiny, sp.test_user, sp.test_pos) == [11, 3, 13]
    sp_all = make_split(tiny, SplitParams(min_history=2, samples_per_user=None))
    assert sp_all.counts()["train"] == 10 + 8


def test_history_holds_every_earlier_event_and_not_the_target(tiny):
    sp = make_split(tiny)
    ((_, batch),) = list(sp.test_batches(tiny, chunk=10))
    # user 7 (second query): 13 earlier events, items 100..112 oldest first
    h = batch.hist_item[batch.hist_offsets[1] : batch.hist_offsets[2]]
    assert tiny.item_ids[h].tolist() == list(range(100, 113))
    assert tiny.item_ids[batch.target_item].tolist() == [111, 113]
    assert not hasattr(batch, "rating") and not hasattr(batch, "target_rating")


def test_train_set_excludes_validation_and_test_targets(tiny):
    sp = make_split(tiny)
    tr = sp.train_set(tiny)
    assert tr.events.lengths().tolist() == [10, 0, 12]
    # training targets point at the same events in the fit store
    q = tr.train_queries()
    assert tiny.item_ids[q.batch.target_item].tolist() == [110, 111]
    assert q.rating.tolist() == [1.0, 2.0]
    # adding the validation targets back gives everything before the test targets
    full = tr.val_events()
    assert full.lengths().tolist() == [11, 0, 13]
    assert full.rating[10] == 2.0  # user 3's validation target
    assert tiny.item_ids[full.item[full.user_offsets[2] : full.user_offsets[3]]].tolist() == list(
        range(100, 113)
    )


def test_split_hash_is_stable_and_sensitive(tiny):
    a = make_split(tiny).hash
    assert a == make_split(tiny).hash
    assert a != make_split(tiny, SplitParams(samples_per_user=2)).hash
    assert a != make_split(tiny, SplitParams(min_history=9)).hash


def test_sample_users_is_seeded(tiny):
    a = make_split(tiny, SplitParams(min_history=2, sample_users=2, split_seed=1))
    b = make_split(tiny, SplitParams(min_history=2, sample_users=2, split_seed=1))
    assert a.kept_users.tolist() == b.kept_users.tolist()
    assert len(a.kept_users) == 2


def test_all_users_too_short_is_a_clear_error(tiny):
    with pytest.raises(DataError, match="min_history"):
        make_split(tiny, SplitParams(min_history=50))


@pytest.mark.parametrize(
    "kw", [{"min_history": 0}, {"samples_per_user": 0}, {"sample_users": -1}, {"max_history": 0}]
)
def test_bad_split_options(kw):
    with pytest.raises(ConfigError):
        SplitParams(**kw)


def notebook_split(rows, min_len, max_samples):
    """The notebook's loop, verbatim in spirit: the oracle for the vectorised split."""
    seqs: dict[int, list] = {}
    for u, i, r, t, _order in sorted(
        [(u, i, r, t, k) for k, (u, i, r, t) in enumerate(rows)], key=lambda x: (x[0], x[3], x[4])
    ):
        seqs.setdefault(u, []).append((i, r, t))
    train, val, test = [], [], []
    for u, seq in seqs.items():
        if len(seq) < min_len + 1:
            continue
        test.append((u, len(seq) - 1))
        if len(seq) >= min_len + 2:
            val.append((u, len(seq) - 2))
        pos = list(range(min_len, len(seq) - 2))
        if max_samples is not None and len(pos) > max_samples:
            step = len(pos) // max_samples
            pos = pos[::step][:max_samples]
        train.extend((u, p) for p in pos)
    return train, val, test


@settings(max_examples=60, deadline=None)
@given(
    lens=st.lists(st.integers(1, 30), min_size=1, max_size=8),
    min_history=st.integers(1, 6),
    samples=st.one_of(st.none(), st.integers(1, 6)),
    data=st.data(),
)
def test_split_matches_the_notebook_loop(lens, min_history, samples, data):
    rows = []
    for u, n in enumerate(lens):
        times = data.draw(st.lists(st.integers(0, 20), min_size=n, max_size=n))
        for j, t in enumerate(times):
            rows.append((u + 1, 1000 * u + j, 0.5 + (j % 10) * 0.5, t))
    if max(lens) < min_history + 1:
        return
    inter = build_interactions(make_raw(rows))
    sp = make_split(inter, SplitParams(min_history=min_history, samples_per_user=samples))
    train, val, test = notebook_split(rows, min_history, samples)

    def pairs(users, pos):
        return [
            (int(inter.user_ids[u]), int(p - inter.user_offsets[u]))
            for u, p in zip(users.tolist(), pos.tolist(), strict=True)
        ]

    assert pairs(sp.train_user, sp.train_pos) == train
    assert pairs(sp.val_user, sp.val_pos) == val
    assert pairs(sp.test_user, sp.test_pos) == test
    # every history precedes its target; targets are disjoint
    all_targets = set(pairs(sp.train_user, sp.train_pos)) | set(pairs(sp.val_user, sp.val_pos))
    assert len(all_targets) == len(train) + len(val)
    assert not all_targets & set(pairs(sp.test_user, sp.test_pos))
    tr = sp.train_set(inter)
    tq = tr.train_queries().batch
    assert np.all(tq.hist_lengths() == np.array([p for _, p in train], dtype=np.int64))


def test_notebook_protocol_counts_on_ml_latest_small(data_dir):
    from bench.data.locate import load_dataset

    raw, _ = load_dataset("ml-latest-small", data_dir=data_dir, download=False)
    inter = build_interactions(raw, name="ml-latest-small")
    sp = make_split(inter, PROTOCOLS["notebook"])
    c = sp.counts()
    assert (c["train"], c["val"], c["test"]) == (3050, 610, 610)


# --------------------------------------------------------------------------- row order


def _shuffled(raw, seed: int):
    from dataclasses import replace

    perm = np.random.default_rng(seed).permutation(len(raw))
    return replace(
        raw,
        user_id=raw.user_id[perm],
        item_id=raw.item_id[perm],
        rating=raw.rating[perm],
        timestamp=raw.timestamp[perm],
    )


def test_ties_are_broken_by_item_id_then_rating_not_by_row_order():
    # user 1 rates items 30, 10, 20 in one second; user 2 rates item 5 twice at one time
    rows = [(1, 30, 1.0, 100), (1, 10, 2.0, 100), (1, 20, 3.0, 100), (1, 40, 4.0, 50)]
    rows += [(2, 5, 4.5, 7), (2, 5, 0.5, 7), (2, 6, 1.0, 3)]
    for perm in ([0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [2, 4, 0, 6, 1, 5, 3]):
        inter = build_interactions(make_raw([rows[i] for i in perm]))
        assert inter.item_ids[inter.item].tolist() == [40, 10, 20, 30, 6, 5, 5]
        assert inter.rating.tolist() == [4.0, 2.0, 3.0, 1.0, 1.0, 0.5, 4.5]


def test_shuffled_rows_give_the_same_interactions_hash_and_split(tiny):
    from tests.conftest import tiny_rows

    raw = make_raw(tiny_rows())
    for seed in range(3):
        other = build_interactions(_shuffled(raw, seed), name="tiny")
        assert other.hash == tiny.hash
        sampled = SplitParams(min_history=2, sample_users=2, split_seed=1)
        for p in (SplitParams(min_history=2), sampled):
            assert make_split(other, p).hash == make_split(tiny, p).hash


def test_published_order_and_splits_are_unchanged_and_shuffling_changes_nothing(data_dir):
    """On ml-latest-small (sorted by user, then movie) the content tie-break gives the order
    that a stable sort of the file by (user, timestamp) gave; a shuffled copy gives the same
    dataset hash and the same splits (94 users tie at their last timestamp)."""
    from bench.data.locate import load_dataset

    raw, _ = load_dataset("ml-latest-small", data_dir=data_dir, download=False)
    inter = build_interactions(raw, name="ml-latest-small")
    file_order = np.lexsort((raw.timestamp, raw.user_id))  # stable: file order on ties
    np.testing.assert_array_equal(inter.item_ids[inter.item], raw.item_id[file_order])
    np.testing.assert_array_equal(inter.rating, raw.rating[file_order])
    last = inter.user_offsets[1:] - 1
    ties = inter.timestamp[last] == inter.timestamp[last - 1]
    assert int(ties.sum()) > 50  # the tie-break decides many test targets
    shuffled = build_interactions(_shuffled(raw, 0), name="ml-latest-small")
    assert shuffled.hash == inter.hash
    sampled = SplitParams(sample_users=100, split_seed=3)
    for p in (PROTOCOLS["default"], PROTOCOLS["notebook"], sampled):
        a, b = make_split(inter, p), make_split(shuffled, p)
        assert a.hash == b.hash
        np.testing.assert_array_equal(a.test_pos, b.test_pos)


# --------------------------------------------------------------------------- several targets


def test_several_test_targets_by_hand(tiny):
    # user 3 -> code 0 (12 events), user 7 -> code 2 (14 events); N = 3, min_history 2
    sp = make_split(tiny, SplitParams(min_history=2, test_targets=3, samples_per_user=None))
    # user 5 (4 events) needs min_history + 3 = 5: dropped
    assert sp.kept_users.tolist() == [0, 2]
    assert sp.test_user.tolist() == [0, 0, 0, 2, 2, 2]
    assert local(tiny, sp.test_user, sp.test_pos) == [9, 10, 11, 11, 12, 13]
    assert local(tiny, sp.val_user, sp.val_pos) == [8, 10]
    # training targets: positions 2 .. n - N - 2
    got = dict()
    for u, p in zip(sp.train_user.tolist(), local(tiny, sp.train_user, sp.train_pos), strict=True):
        got.setdefault(int(tiny.user_ids[u]), []).append(p)
    assert got == {3: list(range(2, 8)), 7: list(range(2, 10))}
    assert sp.fit_len.tolist() == [8, 0, 10]  # the events before each validation target
    assert sp.hash != make_split(tiny, SplitParams(min_history=2, samples_per_user=None)).hash


def test_later_test_targets_see_the_earlier_ones_and_never_themselves(tiny):
    sp = make_split(tiny, SplitParams(min_history=2, test_targets=3))
    ((_, batch),) = list(sp.test_batches(tiny, chunk=100))
    lengths = batch.hist_lengths().tolist()
    assert lengths == [9, 10, 11, 11, 12, 13]  # each target's full past, rolling
    for q in range(len(batch)):
        h = batch.hist_item[batch.hist_offsets[q] : batch.hist_offsets[q + 1]]
        assert batch.target_item[q] not in h.tolist()
        # the history ends right before the target: its previous event is the last row
        assert h[-1] == tiny.item[sp.test_pos[q] - 1]
    truth = sp.test_truth(tiny)
    assert truth.tolist() == tiny.rating[sp.test_pos].tolist()


def test_one_test_target_keeps_the_split_and_its_hash(tiny):
    default = make_split(tiny, SplitParams())
    explicit = make_split(tiny, SplitParams(test_targets=1))
    assert default.hash == explicit.hash
    np.testing.assert_array_equal(default.test_pos, explicit.test_pos)
    assert "test_targets" not in dict(SplitParams().hash_items())
    assert dict(SplitParams(test_targets=2).hash_items())["test_targets"] == 2


def test_too_many_test_targets_says_how_many_users_qualify(tiny):
    with pytest.raises(DataError, match="--test-targets 30 needs users with at least") as e:
        make_split(tiny, SplitParams(test_targets=30))
    assert "2 users qualify for --test-targets 1" in str(e.value)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ConfigError, match="--test-targets"):
            SplitParams(test_targets=bad)  # type: ignore[arg-type]


def test_default_split_hash_on_ml_latest_small_is_unchanged(data_dir):
    from bench.data.locate import load_dataset

    raw, _ = load_dataset("ml-latest-small", data_dir=data_dir, download=False)
    inter = build_interactions(raw, name="ml-latest-small")
    assert inter.hash == "4ec864bfac4b3920"
    assert make_split(inter, PROTOCOLS["default"]).hash == "d03a558789291b5e"
    five = make_split(inter, SplitParams(test_targets=5))
    assert five.counts()["test"] == 5 * five.counts()["users"]
