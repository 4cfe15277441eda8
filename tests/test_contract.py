"""One contract, every registered predictor (docs/ARCHITECTURE.md, "The model–harness contract")."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams, make_split
from bench.data.types import build_interactions
from predictors.base import NotFittedError
from predictors.contract import RunContext
from predictors.registry import REGISTRY, ModelSpec, create

# Options that keep the learned models quick here; the contract is the same at any size.
FAST: dict[str, dict] = {
    "attention": {"epochs": 2},
    "transformer": {"epochs": 2},
    "mf": {"factors": 8, "reg": 0.05},
    "mf-temporal": {"factors": 8, "reg": 0.05},
}
CPU = RunContext(seed=0, device="cpu")


@pytest.fixture(scope="module")
def world():
    loaded = load_source(DataSource(dataset="synthetic", users=150, data_seed=4))
    inter = loaded.interactions
    split = make_split(inter, SplitParams(min_history=10, samples_per_user=5))
    return loaded, inter, split


def _model(name: str):
    """The model with its quick options. An option renamed in the model fails here (no
    silent fallback to the defaults): FAST names only options the model takes."""
    return create(ModelSpec(name, dict(FAST.get(name, {}))))


def test_fast_options_are_the_models_own():
    for name, opts in FAST.items():
        assert name in REGISTRY, f"FAST names unknown model {name}"
        create(ModelSpec(name, dict(opts)))  # raises on an option the model does not take


def _test_batch(inter, split):
    ((_, batch),) = list(split.test_batches(inter, chunk=10**9))
    return batch


def _snapshot(obj) -> list[bytes]:
    out = []
    for v in vars(obj).values():
        if isinstance(v, np.ndarray):
            out.append(v.tobytes())
        elif hasattr(v, "__dataclass_fields__"):
            out.extend(_snapshot(v))
    return out


@pytest.mark.parametrize("name", list(REGISTRY))
def test_contract(name, world):
    loaded, inter, split = world
    train = split.train_set(inter, embeddings=loaded.embeddings, context=CPU)
    batch = _test_batch(inter, split)
    before = _snapshot(train) + _snapshot(train.val.batch) + _snapshot(batch)

    model = _model(name)
    with pytest.raises(NotFittedError):
        model.predict(batch)
    assert model.fit(train) is model
    json.dumps(model.get_config())  # JSON-able

    pred = model.predict(batch)
    assert pred.shape == (len(batch),) and pred.dtype == np.float32
    assert np.all(np.isfinite(pred))
    assert pred.min() >= inter.scale.low and pred.max() <= inter.scale.high

    # no mutation of inputs
    assert _snapshot(train) + _snapshot(train.val.batch) + _snapshot(batch) == before

    # batch-order invariance and chunking (to float rounding: a batched matmul may sum in
    # another order when the batch changes; determinism below is exact)
    perm = np.random.default_rng(0).permutation(len(batch))
    np.testing.assert_allclose(model.predict(batch.take(perm)), pred[perm], rtol=0, atol=1e-5)
    half = len(batch) // 2
    parts = np.concatenate(
        [
            model.predict(batch.take(np.arange(half))),
            model.predict(batch.take(np.arange(half, len(batch)))),
        ]
    )
    np.testing.assert_allclose(parts, pred, rtol=0, atol=1e-5)

    # determinism under a seed
    again = _model(name).fit(split.train_set(inter, embeddings=loaded.embeddings, context=CPU))
    assert np.array_equal(again.predict(batch), pred)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_blind_to_the_future(name, world):
    """Changing every rating at or after the test targets (the test targets themselves)
    changes no prediction: the model never sees them."""
    loaded, inter, split = world
    raw = _raw_from(inter)
    changed = raw.rating.copy()
    order = np.lexsort((raw.timestamp, raw.user_id))
    # rows of the original file order that are test targets
    test_rows = order[split.test_pos]
    changed[test_rows] = np.where(changed[test_rows] > 2.5, 0.5, 5.0)
    inter2 = build_interactions(
        type(raw)(raw.user_id, raw.item_id, changed, raw.timestamp, raw.scale, "changed")
    )
    split2 = make_split(inter2, split.params)
    assert np.array_equal(split2.test_pos, split.test_pos)
    a = _model(name).fit(split.train_set(inter, embeddings=loaded.embeddings, context=CPU))
    b = _model(name).fit(split2.train_set(inter2, embeddings=loaded.embeddings, context=CPU))
    assert np.array_equal(
        a.predict(_test_batch(inter, split)), b.predict(_test_batch(inter2, split2))
    )


def _raw_from(inter):
    from bench.data.types import RawRatings

    return RawRatings(
        user_id=inter.user_ids[inter.user],
        item_id=inter.item_ids[inter.item],
        rating=inter.rating.copy(),
        timestamp=inter.timestamp.copy(),
        scale=inter.scale,
        source="copy",
    )


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_built_in_passes_the_public_conformance_suite(name):
    """The suite researchers run on their own models (``bench check``) passes on every
    built-in, with the quick options above."""
    from predictors.testing import check_predictor

    check_predictor(lambda: _model(name)).raise_for_failures()
