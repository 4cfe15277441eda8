"""The torch models and their shared trainer: shapes, masking, causality, determinism,
fallbacks, the learning curve, failure modes, and that training learns something real.

Everything runs on CPU on tiny synthetic data with 1-3 epochs and small widths.
"""

from __future__ import annotations

import contextlib
import dataclasses

import numpy as np
import pytest
import torch

from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams, make_split
from predictors.attention import Attention, AttentionConfig, RatingPredictor
from predictors.contract import RunContext
from predictors.torch.batches import SequenceData, history_batch, normalised_embeddings
from predictors.torch.device import torch_device
from predictors.torch.trainer import (
    AutoSettings,
    TrainConfig,
    ValSet,
    _epoch_orders,
    resolve_schedule,
    train_model,
    val_subsample,
)
from predictors.transformer import HistoryTransformer, Transformer, TransformerConfig
from predictors.types import EventStore, HistoryBatch, ItemEmbeddings, TrainSet
from tests.conftest import HALF_STARS as SCALE
from tests.conftest import detailed

CPU = torch.device("cpu")

# small, fast settings shared by the fit tests
ATT = dict(epochs=2, hidden=16, batch_size=64, device="cpu", progress=False)
TRF = dict(epochs=2, d_model=16, heads=2, layers=1, batch_size=64, device="cpu", progress=False)


def _train_set(n_users: int, samples_per_user: int = 3, seed: int = 0) -> TrainSet:
    loaded = load_source(DataSource(dataset="synthetic", users=n_users, data_seed=0))
    split = make_split(
        loaded.interactions, SplitParams(samples_per_user=samples_per_user, max_history=12)
    )
    return split.train_set(loaded.interactions, embeddings=loaded.embeddings, seed=seed)


@pytest.fixture(scope="module")
def tiny_train() -> TrainSet:
    return _train_set(120)


@pytest.fixture(scope="module")
def fitted(tiny_train: TrainSet) -> dict[str, object]:
    return {
        "attention": Attention(seed=0, **ATT).fit(tiny_train),
        "transformer": Transformer(seed=0, **TRF).fit(tiny_train),
    }


def _rmse(p: np.ndarray, t: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(p, np.float64) - t) ** 2)))


# --------------------------------------------------------------------------------------
# device and gathering


def _expected_auto() -> str:
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    return "mps" if mps is not None and mps.is_available() else "cpu"


def test_resolve_device() -> None:
    assert torch_device("cpu") == CPU
    # auto is the first available of cuda, mps, cpu: exactly that one, here
    assert torch_device("auto") == torch.device(_expected_auto())
    assert torch_device(None) == torch.device(_expected_auto())
    with pytest.raises(ValueError, match="known: auto, cpu, cuda, mps"):
        torch_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            torch_device("cuda")


def _hand_store() -> EventStore:
    # user 0: rows 0..2, user 1: rows 3..7 (ratings 1..5 on 0.5..5)
    return EventStore(
        user_offsets=np.array([0, 3, 8], dtype=np.int64),
        item=np.array([1, 2, 3, 4, 5, 6, 7, 8], dtype=np.int32),
        rating=np.array([5, 5, 5, 1, 2, 3, 4, 5], dtype=np.float32),
        timestamp=np.arange(8, dtype=np.int64),
    )


def test_gather_by_hand() -> None:
    """Target row 5 (user 1, starts at row 3) with window 4: rows 1..4, left-padded."""
    data = SequenceData(_hand_store(), np.array([5, 7, 0]), SCALE, window=4, device=CPU)
    b = data.gather(torch.tensor([0, 1, 2]))
    assert b.mask.tolist() == [
        [False, False, True, True],
        [True, True, True, True],
        [False, False, False, False],
    ]
    assert b.hist_item.tolist() == [[0, 0, 4, 5], [4, 5, 6, 7], [0, 0, 0, 0]]
    # ratings 1, 2 -> (r - 0.5) / 4.5
    np.testing.assert_allclose(b.hist_rating[0].numpy(), [0, 0, 0.5 / 4.5, 1.5 / 4.5], rtol=1e-6)
    assert b.target_item.tolist() == [6, 8, 1]
    np.testing.assert_allclose(b.target_rating.numpy(), [2.5 / 4.5, 1.0, 1.0], rtol=1e-6)
    # timestamps are the row numbers: seconds to the target = target row - history row
    assert b.hist_gap.tolist() == [[0, 0, 2, 1], [4, 3, 2, 1], [0, 0, 0, 0]]


def test_all_targets_and_epoch_stream(tiny_train: TrainSet) -> None:
    data, info = SequenceData.from_train(tiny_train, 12, CPU, targets="all")
    assert len(data) == tiny_train.events.n_events and info["n_targets"] == len(data)
    with pytest.raises(ValueError, match="targets"):
        SequenceData.from_train(tiny_train, 12, CPU, targets="some")
    # epoch_size 4 of 10: every target once in the first 10 draws, seeded
    g = torch.Generator().manual_seed(0)
    orders = _epoch_orders(10, 4, g)
    first = torch.cat([next(orders) for _ in range(3)])  # 12 draws: 10 + 2 of the next perm
    assert sorted(first[:10].tolist()) == list(range(10))
    g2 = torch.Generator().manual_seed(0)
    again = torch.cat([o for o, _ in zip(_epoch_orders(10, 4, g2), range(3), strict=False)])
    assert torch.equal(first, again)


def test_gather_matches_history_batch_and_ignores_the_future(tiny_train: TrainSet) -> None:
    store, pos, user = tiny_train.events, tiny_train.train_pos, tiny_train.train_user
    data = SequenceData(store, pos, SCALE, window=12, device=CPU)
    idx = torch.arange(len(data))
    a = data.gather(idx)
    b = history_batch(HistoryBatch.from_store(store, user, pos), 12, SCALE, CPU)
    for f in ("hist_item", "hist_rating", "mask", "target_item", "hist_gap"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f
    # scramble every rating and item at or after each user's first target: histories of
    # that target must not change (only its own target rating)
    first = np.full(store.n_users, np.iinfo(np.int64).max)
    np.minimum.at(first, user, pos)
    after = np.arange(store.n_events) >= first[store.user()]
    rng = np.random.default_rng(1)
    changed = dataclasses.replace(
        store,
        rating=np.where(after, rng.choice([0.5, 5.0], store.n_events), store.rating).astype(
            np.float32
        ),
        item=np.where(after, 0, store.item).astype(np.int32),
    )
    is_first = pos == first[user]
    sel = torch.from_numpy(np.flatnonzero(is_first))
    a2 = SequenceData(changed, pos, SCALE, window=12, device=CPU).gather(sel)
    a1 = a.index(sel)
    for f in ("hist_item", "hist_rating", "mask", "hist_gap"):
        assert torch.equal(getattr(a1, f), getattr(a2, f)), f


def _misaligned(a: np.ndarray, offset: int) -> np.ndarray:
    """A copy of ``a`` whose buffer starts ``offset`` bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-buf.ctypes.data) % 64 + offset
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    assert out.ctypes.data % 64 == offset
    return out


@pytest.mark.parametrize("offset", [4, 16, 36])
def test_model_inputs_live_in_torchs_own_memory(tiny_train: TrainSet, offset: int) -> None:
    # where NumPy put an input (its alignment) differs between processes, and a float32
    # kernel may round a row differently at another alignment: every tensor the models
    # compute on is a copy in torch's memory, aligned alike in every process
    store, pos, user = tiny_train.events, tiny_train.train_pos, tiny_train.train_user
    q = HistoryBatch.from_store(store, user, pos)
    moved = dataclasses.replace(
        q, **{f: _misaligned(getattr(q, f), offset) for f in ("hist_rating", "target_item")}
    )
    moved_store = dataclasses.replace(store, rating=_misaligned(store.rating, offset))
    vectors = _misaligned(np.random.default_rng(0).random((5, 3), dtype=np.float32), offset)
    tensors = {
        "embeddings": normalised_embeddings(vectors, CPU),
        **{f"query {k}": v for k, v in vars(history_batch(moved, 12, SCALE, CPU)).items()},
        **{
            f"store {k}": v
            for k, v in vars(SequenceData(moved_store, pos, SCALE, 12, CPU)).items()
            if isinstance(v, torch.Tensor)
        },
    }
    for name, t in tensors.items():
        if isinstance(t, torch.Tensor):
            assert t.data_ptr() % 64 == 0, name
    want = history_batch(q, 12, SCALE, CPU)
    got = history_batch(moved, 12, SCALE, CPU)
    for f in ("hist_item", "hist_rating", "mask", "target_item", "hist_gap"):
        assert torch.equal(getattr(want, f), getattr(got, f)), f
    # a copy: writing to the NumPy array afterwards does not reach the tensor
    v0 = tensors["embeddings"].clone()
    vectors[...] = 0.0
    assert torch.equal(tensors["embeddings"], v0)


# --------------------------------------------------------------------------------------
# modules


def test_attention_parameter_count_is_the_notebooks() -> None:
    m = RatingPredictor(AttentionConfig(emb_dim=300, hidden=128, dropout=0.1))
    assert sum(p.numel() for p in m.parameters()) == 181_762


def _module_inputs(B: int = 5, T: int = 7, E: int = 12, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(B, T, E, generator=g)
    r = torch.rand(B, T, generator=g)
    n_real = torch.tensor([7, 3, 1, 5, 2])[:B]
    mask = torch.arange(T)[None, :] >= (T - n_real)[:, None]  # left padding
    target = torch.randn(B, E, generator=g)
    items = torch.randint(0, 9, (B, T), generator=g)
    target_item = torch.randint(0, 9, (B,), generator=g)
    # seconds to the target time, non-increasing along the row (column T - 1 is the newest)
    steps = torch.rand(B, T, generator=g) * 10.0 ** torch.randint(0, 6, (B, T), generator=g)
    gap = steps.flip(1).cumsum(1).flip(1)
    return emb, r, mask, target, items, target_item, gap


def _modules() -> list[tuple[str, torch.nn.Module]]:
    torch.manual_seed(0)  # the test process's own generator: module init only
    att = RatingPredictor(AttentionConfig(emb_dim=12, hidden=8, dropout=0.1)).eval()
    trf = HistoryTransformer(
        TransformerConfig(emb_dim=12, n_items=9, window=7, d_model=8, heads=2, layers=2)
    ).eval()
    torch.nn.init.normal_(trf.head[-1].weight)  # non-zero head, so the encoder matters
    return [("attention", att), ("transformer", trf)]


def _call(name: str, m: torch.nn.Module, emb, r, mask, target, items, titem, gap) -> torch.Tensor:
    if name == "attention":
        return m(emb, r, mask, target)
    return m(emb, r, mask, target, items, titem, gap)


@pytest.mark.parametrize("which", [0, 1])
def test_module_shapes_and_padding_is_ignored(which: int) -> None:
    name, m = _modules()[which]
    emb, r, mask, target, items, titem, gap = _module_inputs()
    with torch.no_grad():
        out = _call(name, m, emb, r, mask, target, items, titem, gap)
        assert out.shape == (5,) and torch.all(torch.isfinite(out))
        pad = ~mask
        emb2 = torch.where(pad[..., None], torch.randn_like(emb) * 10, emb)
        r2 = torch.where(pad, torch.rand_like(r), r)
        items2 = torch.where(pad, (items + 3) % 9, items)
        gap2 = torch.where(pad, gap + 1e6, gap)
        out2 = _call(name, m, emb2, r2, mask, target, items2, titem, gap2)
    torch.testing.assert_close(out, out2, rtol=1e-5, atol=1e-6)
    # a real position does matter
    with torch.no_grad():
        r3 = r.clone()
        r3[:, -1] = 1.0 - r3[:, -1]
        out3 = _call(name, m, emb, r3, mask, target, items, titem, gap)
    assert not torch.allclose(out, out3)


def test_session_offset_by_hand() -> None:
    """One real event with rating 1.0 (unit), item biases 0, mu 0.5, user_damping 1, the
    head at zero: dev = 0.5, b_user = 0.5 / 2 = 0.25; at the gap tau0 the weight is
    sigmoid(0) * exp(-gamma * 0) = 0.5, so o = 0.5 * 0.25 / (0.5 + 1) = 1/12."""
    cfg = TransformerConfig(
        emb_dim=4, n_items=3, window=2, d_model=8, heads=2, mu=0.5, user_damping=1.0
    )
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m = HistoryTransformer(cfg).eval()
    emb = torch.ones(1, 2, 4)
    r = torch.tensor([[0.0, 1.0]])
    mask = torch.tensor([[False, True]])
    items, titem = torch.tensor([[0, 1]]), torch.tensor([2])
    gap = torch.tensor([[0.0, cfg.session_tau]])
    with torch.no_grad():
        out = m(emb, r, mask, torch.ones(1, 4), items, titem, gap)
        torch.testing.assert_close(out, torch.tensor([0.5 + 0.25 + 1 / 12]))
        # the same event a week earlier barely moves the session offset
        far = m(emb, r, mask, torch.ones(1, 4), items, titem, gap * 0 + 7 * 86400.0)
        assert 0.75 <= float(far) < 0.75 + 1e-3
    with torch.random.fork_rng():
        torch.manual_seed(0)
        m0 = HistoryTransformer(dataclasses.replace(cfg, session=False)).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            m0(emb, r, mask, torch.ones(1, 4), items, titem, gap), torch.tensor([0.75])
        )


def test_transformer_empty_history_is_finite() -> None:
    _, m = _modules()[1]
    emb, r, mask, target, items, titem, gap = _module_inputs()
    mask[:] = False
    with torch.no_grad():
        out = m(emb, r, mask, target, items, titem, gap)
    assert torch.all(torch.isfinite(out))


# --------------------------------------------------------------------------------------
# adapters


@pytest.mark.parametrize("name", ["attention", "transformer"])
def test_fit_predict_contract(name: str, fitted: dict, tiny_train: TrainSet) -> None:
    model = fitted[name]
    assert model.fit_report_.settings["n_train"] == tiny_train.train_pos.shape[0]
    p, fb = detailed(model, tiny_train.val.batch)
    assert p.dtype == np.float32 and p.shape == (len(tiny_train.val.batch),)
    assert np.all(np.isfinite(p)) and p.min() >= 0.5 and p.max() <= 5.0
    assert not fb.any()
    # curve: one row per epoch, best epoch = argmin validation RMSE, val metric recomputed
    curve = model.fit_report_.learning_curve
    assert [c["epoch"] for c in curve] == [1, 2]
    assert set(curve[0]) == {"epoch", "train_loss", "val_rmse", "val_mae", "lr", "seconds"}
    best = int(np.argmin([c["val_rmse"] for c in curve])) + 1
    assert model.fit_report_.settings["best_epoch"] == best
    assert _rmse(p, tiny_train.val.rating) == pytest.approx(curve[best - 1]["val_rmse"], rel=1e-5)
    # batch order does not matter
    order = np.arange(len(tiny_train.val.batch))[::-1].copy()
    p_rev = model.predict(tiny_train.val.batch.take(order))
    np.testing.assert_allclose(p_rev, p[order], rtol=1e-5, atol=1e-5)


def test_fallbacks(fitted: dict, tiny_train: TrainSet) -> None:
    # three validation queries with distinct target items
    _, first = np.unique(tiny_train.val.batch.target_item, return_index=True)
    vb = tiny_train.val.batch.take(np.sort(first)[:3])
    # query 0: empty history; query 1: target item without an embedding
    empty = HistoryBatch(
        user=vb.user,
        target_item=vb.target_item.copy(),
        target_time=vb.target_time,
        hist_offsets=np.concatenate([[0, 0], vb.hist_offsets[2:] - vb.hist_offsets[1]]),
        hist_item=vb.hist_item[vb.hist_offsets[1] :],
        hist_rating=vb.hist_rating[vb.hist_offsets[1] :],
        hist_timestamp=vb.hist_timestamp[vb.hist_offsets[1] :],
    )
    att, trf = fitted["attention"], fitted["transformer"]
    present = tiny_train.embeddings.present.copy()
    missing_item = int(vb.target_item[1])
    for m in (att, trf):
        m.keep_item_ = present.copy()
        m.keep_item_[missing_item] = False
    try:
        pa, fa = detailed(att, empty)
        pt, ft = detailed(trf, empty)
    finally:
        att.keep_item_ = present
        trf.keep_item_ = present
    assert fa.tolist() == [True, True, False]
    np.testing.assert_allclose(pa[:2], att.mean_, rtol=1e-6)
    assert ft.tolist() == [False, True, False]  # the transformer predicts empty histories
    assert np.isfinite(pt).all()


def test_needs_embeddings(tiny_train: TrainSet) -> None:
    with pytest.raises(ValueError, match="attention needs item embeddings"):
        Attention(**ATT).fit(dataclasses.replace(tiny_train, embeddings=None))


def test_missing_embeddings_are_dropped_from_histories(tiny_train: TrainSet) -> None:
    e = tiny_train.embeddings
    present = e.present.copy()
    present[::3] = False
    emb = ItemEmbeddings(e.name, np.where(present[:, None], e.vectors, 0.0), present, "x")
    m = Attention(seed=0, **{**ATT, "epochs": 1}).fit(
        dataclasses.replace(tiny_train, embeddings=emb)
    )
    assert m.fit_report_.settings["skipped_no_embedding"] > 0
    p, fb = detailed(m, tiny_train.val.batch)
    np.testing.assert_array_equal(fb, ~present[tiny_train.val.batch.target_item])
    # a history item without an embedding is invisible: dropping it changes nothing
    keep = present[tiny_train.val.batch.hist_item]
    vb = tiny_train.val.batch
    q = vb.hist_query()
    counts = np.bincount(q[keep], minlength=len(vb))
    off = np.concatenate([[0], np.cumsum(counts)])
    vb2 = HistoryBatch(
        vb.user,
        vb.target_item,
        vb.target_time,
        off,
        vb.hist_item[keep],
        vb.hist_rating[keep],
        vb.hist_timestamp[keep],
    )
    np.testing.assert_array_equal(m.predict(vb2), p)


@pytest.mark.parametrize("cls,kw", [(Attention, ATT), (Transformer, TRF)])
def test_determinism_and_global_rng_untouched(cls, kw, tiny_train: TrainSet) -> None:
    kw = {**kw, "epochs": 1}
    state = torch.random.get_rng_state()
    p1 = cls(seed=3, **kw).fit(tiny_train).predict(tiny_train.val.batch)
    assert torch.equal(torch.random.get_rng_state(), state)
    p2 = cls(seed=3, **kw).fit(tiny_train).predict(tiny_train.val.batch)
    p3 = cls(seed=4, **kw).fit(tiny_train).predict(tiny_train.val.batch)
    np.testing.assert_array_equal(p1, p2)
    assert not np.array_equal(p1, p3)


def test_seed_defaults_to_the_train_set_seed(tiny_train: TrainSet) -> None:
    kw = {**ATT, "epochs": 1}
    a = Attention(**kw).fit(dataclasses.replace(tiny_train, context=RunContext(seed=5)))
    assert a.fit_report_.settings["seed"] == 5
    b = Attention(seed=5, **kw).fit(tiny_train)
    np.testing.assert_array_equal(a.predict(tiny_train.val.batch), b.predict(tiny_train.val.batch))


class _Recorder:
    """A ProgressReporter that records the bars opened and every step."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, int, dict]] = []
        self.steps: list[tuple[int, dict]] = []

    @contextlib.contextmanager
    def bar(self, description: str, total: int, **fields):
        self.bars.append((description, total, fields))
        yield lambda completed, **kw: self.steps.append((completed, kw))


def test_training_progress_goes_to_the_run_context(tiny_train: TrainSet) -> None:
    rec = _Recorder()
    train = dataclasses.replace(tiny_train, context=RunContext(seed=0, progress=rec))
    m = Attention(**{**ATT, "progress": True}).fit(train)
    n_batches = -(-m.fit_report_.settings["n_train"] // ATT["batch_size"])
    assert rec.bars == [("attention", n_batches, {"loss": "-"})]
    starts = [kw["description"] for c, kw in rec.steps if c == 0]
    assert starts == ["attention 1/2", "attention 2/2"]
    last = rec.steps[-1]
    assert last[0] == n_batches and set(last[1]) == {"loss"}
    # progress=False shows nothing, and the run's device and seed reach the model
    quiet = _Recorder()
    train = dataclasses.replace(
        tiny_train, context=RunContext(seed=4, device="cpu", progress=quiet)
    )
    m = Attention(**{**ATT, "device": None}).fit(train)
    assert quiet.bars == [] and quiet.steps == []
    assert m.fit_report_.settings["device"] == "cpu" and m.fit_report_.settings["seed"] == 4


@pytest.mark.parametrize(
    ("cls", "options", "match"),
    [
        (Attention, {"epochs": 0}, "epochs"),
        (Attention, {"hidden": 7}, "hidden"),
        (Transformer, {"d_model": 10, "heads": 4}, "divisible"),
        (Transformer, {"device": "tpu"}, "unknown device"),
        # the training budget
        (Attention, {"max_samples": 0}, "max_samples"),
        (Transformer, {"val_max": 0}, "val_max"),
        (Attention, {"batch_size": "big"}, "batch_size"),
        (Attention, {"lr": "fast"}, "lr"),
        (Transformer, {"patience": "soon"}, "patience"),
    ],
)
def test_options_are_validated(cls: type, options: dict[str, object], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        cls(**options)


# --------------------------------------------------------------------------------------
# the trainer


def _toy_problem(n: int = 64):
    store = EventStore(
        user_offsets=np.array([0, n], dtype=np.int64),
        item=np.zeros(n, dtype=np.int32),
        rating=np.full(n, 3.0, dtype=np.float32),
        timestamp=np.arange(n, dtype=np.int64),
    )
    data = SequenceData(store, np.arange(1, n), SCALE, window=4, device=CPU)
    with torch.random.fork_rng():  # an init independent of the tests that ran before
        torch.manual_seed(0)
        lin = torch.nn.Linear(1, 1)
    return data, lin


def test_nan_loss_raises() -> None:
    data, lin = _toy_problem()

    def fwd(b):
        return lin(b.hist_rating[:, -1:]).squeeze(-1) * float("nan")

    with pytest.raises(FloatingPointError, match="non-finite training loss"):
        train_model(lin, fwd, data, None, SCALE, TrainConfig(epochs=1, progress=False))


def test_early_stopping_and_best_state() -> None:
    data, lin = _toy_problem()
    vb = history_batch(
        HistoryBatch.from_store(
            EventStore(
                np.array([0, 5]), np.zeros(5, np.int32), np.full(5, 3.0, np.float32), np.arange(5)
            ),
            np.array([0]),
            np.array([4]),
        ),
        4,
        SCALE,
        CPU,
    )
    val = ValSet(vb, np.array([0]), np.array([3.0], np.float32), fallback=3.0)

    def fwd(b):
        return lin(b.hist_rating[:, -1:]).squeeze(-1)

    # lr = 0: validation never improves after epoch 1, so patience 2 stops after epoch 3
    res = train_model(
        lin,
        fwd,
        data,
        val,
        SCALE,
        TrainConfig(epochs=10, lr=0.0, eta_min=0.0, patience=2, progress=False),
    )
    assert res.stopped_early and len(res.curve) == 3 and res.best_epoch == 1
    # with learning the loss falls and the best state is the best epoch's
    res = train_model(
        lin, fwd, data, val, SCALE, TrainConfig(epochs=4, lr=0.05, batch_size=8, progress=False)
    )
    rmses = [c["val_rmse"] for c in res.curve]
    assert res.best_epoch == int(np.argmin(rmses)) + 1
    assert rmses[-1] < rmses[0]
    assert res.curve[1]["lr"] < res.curve[0]["lr"]  # cosine schedule


# --------------------------------------------------------------------------------------
# learning works


@pytest.fixture(scope="module")
def learn_train() -> TrainSet:
    return _train_set(400, samples_per_user=5, seed=0)


def _global_mean_rmse(train: TrainSet) -> float:
    mu = float(np.mean(train.events.rating, dtype=np.float64))
    return _rmse(np.full(len(train.val.rating), mu), train.val.rating)


def test_attention_beats_global_mean(learn_train: TrainSet) -> None:
    m = Attention(
        seed=0, epochs=3, hidden=32, batch_size=64, lr=3e-3, device="cpu", progress=False
    ).fit(learn_train)
    gm = _global_mean_rmse(learn_train)
    assert m.fit_report_.settings["best_val_rmse"] < gm - 0.03, (
        m.fit_report_.settings["best_val_rmse"],
        gm,
    )


def test_transformer_beats_global_mean(learn_train: TrainSet) -> None:
    m = Transformer(seed=0, **{**TRF, "epochs": 2}).fit(learn_train)
    gm = _global_mean_rmse(learn_train)
    assert m.fit_report_.settings["best_val_rmse"] < gm - 0.03, (
        m.fit_report_.settings["best_val_rmse"],
        gm,
    )


# --------------------------------------------------------------------------------------
# the sample budget and the "auto" options


def test_budget_is_nil_at_notebook_size() -> None:
    """10,000 targets (the notebook's quick test) and 3,050 (ml-latest-small): 30 full epochs
    of batch 128 at lr 1e-3 without early stopping, exactly the notebook's training."""
    for n in (10_000, 3_050):
        s = Attention().schedule_for(n)
        assert (s.epochs, s.epoch_size, s.batch_size, s.lr, s.patience) == (
            30,
            None,
            128,
            1e-3,
            None,
        )
        assert not s.budget_binds
        t = Transformer().schedule_for(n)  # its own small-size defaults, unchanged
        assert (t.epochs, t.epoch_size, t.batch_size, t.lr, t.patience) == (20, None, 256, 1e-3, 3)


def test_budget_binds_at_scale() -> None:
    a = Attention()
    cap = a.max_samples
    assert cap is not None
    s = a.schedule_for(1_000_000)
    assert s.budget_binds and s.epochs == 30
    assert s.epoch_size == -(-cap // 30)  # ceil: about max_samples samples in 30 rounds
    assert (s.batch_size, s.lr, s.patience) == (
        a.auto_large.batch_size,
        a.auto_large.lr,
        a.auto_large.patience,
    )
    # explicit values are kept in both regimes
    s = Attention(batch_size=128, lr=1e-3, patience=None).schedule_for(1_000_000)
    assert (s.batch_size, s.lr, s.patience) == (128, 1e-3, None) and s.budget_binds
    assert not Attention(max_samples=None).schedule_for(10**9).budget_binds


def test_resolve_schedule_boundary_and_epoch_size() -> None:
    small, large = AutoSettings(128, 1e-3, None), AutoSettings(512, 2e-3, 5)
    kw = dict(batch_size="auto", lr="auto", patience="auto", small=small, large=large)
    at = resolve_schedule(100, epochs=10, epoch_size=None, max_samples=1000, **kw)
    assert not at.budget_binds and at.epoch_size is None and at.batch_size == 128
    over = resolve_schedule(101, epochs=10, epoch_size=None, max_samples=1000, **kw)
    assert over.budget_binds and over.epoch_size == 100 and over.batch_size == 512
    # an explicit epoch_size counts as the round size; one above the target count is a pass
    e = resolve_schedule(50, epochs=10, epoch_size=80, max_samples=1000, **kw)
    assert not e.budget_binds and e.epoch_size == 80
    e = resolve_schedule(500, epochs=10, epoch_size=400, max_samples=1000, **kw)
    assert e.budget_binds and e.epoch_size == 100 and e.patience == 5


def test_val_subsample() -> None:
    assert val_subsample(100, None, 0) is None and val_subsample(100, 100, 0) is None
    rows = val_subsample(100, 30, 7)
    assert rows is not None and rows.shape == (30,) and np.all(np.diff(rows) > 0)
    assert rows.max() < 100
    np.testing.assert_array_equal(rows, val_subsample(100, 30, 7))
    assert not np.array_equal(rows, val_subsample(100, 30, 8))


def test_auto_is_the_notebooks_training_at_small_size(tiny_train: TrainSet) -> None:
    """Below the budget the defaults train exactly as the explicit notebook settings."""
    kw = dict(epochs=2, hidden=16, device="cpu", progress=False, seed=1)
    auto = Attention(**kw).fit(tiny_train)
    explicit = Attention(**kw, batch_size=128, lr=1e-3, patience=None, max_samples=None).fit(
        tiny_train
    )
    np.testing.assert_array_equal(
        auto.predict(tiny_train.val.batch), explicit.predict(tiny_train.val.batch)
    )
    info = auto.fit_report_.settings
    assert (info["batch_size"], info["lr"], info["patience"], info["budget_binds"]) == (
        128,
        1e-3,
        None,
        False,
    )
    assert info["samples_seen"] == 2 * info["n_train"] and info["stop_reason"] == "all epochs run"
    assert info["n_val_used"] == info["n_val"] == len(tiny_train.val.batch)


@pytest.mark.parametrize("cls,kw", [(Attention, ATT), (Transformer, TRF)])
def test_budget_and_val_subsample_are_recorded(cls, kw, tiny_train: TrainSet) -> None:
    kw = {**kw, "epochs": 3, "batch_size": "auto", "max_samples": 100, "val_max": 40}
    m = cls(seed=2, **kw).fit(tiny_train)
    info = m.fit_report_.settings
    n_train = info["n_train"]
    assert n_train * 3 > 100  # the budget binds here
    assert info["budget_binds"] and info["epoch_size"] == 34 and info["epochs_run"] == 3
    assert info["samples_seen"] == 3 * 34
    assert info["batch_size"] == cls.auto_large.batch_size and info["lr"] == cls.auto_large.lr
    assert info["steps"] == 3  # one batch of 34 per round
    assert info["stop_reason"] == "sample budget spent"
    assert 0 < info["val_seconds"] < info["train_seconds"]
    assert info["n_val"] == len(tiny_train.val.batch) and info["n_val_used"] == 40
    # the recorded best validation RMSE is that of the seeded subsample
    rows = val_subsample(len(tiny_train.val.batch), 40, 2)
    assert rows is not None
    p = m.predict(tiny_train.val.batch.take(rows))
    assert _rmse(p, tiny_train.val.rating[rows]) == pytest.approx(info["best_val_rmse"], rel=1e-5)
    # determinism under a seed, with the budget and the subsample
    again = cls(seed=2, **kw).fit(tiny_train)
    np.testing.assert_array_equal(
        again.predict(tiny_train.val.batch), m.predict(tiny_train.val.batch)
    )
    assert again.fit_report_.settings["best_val_rmse"] == info["best_val_rmse"]
    other = cls(seed=3, **kw).fit(tiny_train)
    assert not np.array_equal(other.predict(tiny_train.val.batch), m.predict(tiny_train.val.batch))
