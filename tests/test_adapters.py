"""Library adapters (``surprise:MODEL``, ``cornac:MODEL``): faithful to the library called
directly, fallbacks, option and model errors, the missing-extra message, and a CLI run."""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from predictors import registry
from predictors.plugins import PluginError
from predictors.testing import check_predictor, synthetic_world
from predictors.types import EventStore, HistoryBatch
from tests.conftest import modules_loaded_by

# -- shared helpers --------------------------------------------------------------------------

SURPRISE_PARAMS: dict[str, dict[str, Any]] = {
    # small, fast settings; every model with its randomness seeded by the run's seed
    "SVD": {"n_factors": 8, "n_epochs": 10},
    "SVDpp": {"n_factors": 6, "n_epochs": 6},
    "KNNBaseline": {"k": 15, "sim_options.name": "pearson_baseline"},
    "KNNWithMeans": {"k": 15, "sim_options.user_based": False},
    "BaselineOnly": {},
    "NMF": {"n_factors": 5, "n_epochs": 15, "biased": True},
    "SlopeOne": {},
    "CoClustering": {"n_epochs": 5},
}


def _frame_rows(store: EventStore) -> tuple[list[int], list[int], list[float]]:
    return store.user().tolist(), store.item.tolist(), store.rating.tolist()


def _queries(world: Any) -> HistoryBatch:
    """The test queries plus queries of an unknown user code and an unknown item code."""
    test = world.test
    n_items = world.train.n_items
    extra_u = np.array([world.train.n_users + 5, 0], dtype=np.int32)  # unknown user; user 0
    extra_i = np.array([0, n_items + 7], dtype=np.int32)  # item 0; unknown item code
    return HistoryBatch(
        user=np.concatenate([test.user, extra_u]),
        target_item=np.concatenate([test.target_item, extra_i]),
        target_time=np.concatenate([test.target_time, np.full(2, 2_000_000_000)]),
        hist_offsets=np.concatenate([test.hist_offsets, np.full(2, test.hist_offsets[-1])]),
        hist_item=test.hist_item,
        hist_rating=test.hist_rating,
        hist_timestamp=test.hist_timestamp,
    )


# -- Surprise --------------------------------------------------------------------------------


def _surprise_direct(model: str, params: dict[str, Any], world: Any, queries: HistoryBatch):
    """The library called directly: a pandas frame of the fit's events, Dataset.load_from_df,
    build_full_trainset, the model with the same parameters and seed, predict(clip=False)."""
    pd = pytest.importorskip("pandas")
    surprise = pytest.importorskip("surprise")
    store = world.train.val_events()
    u, i, r = _frame_rows(store)
    df = pd.DataFrame({"user": u, "item": i, "rating": r})
    scale = world.train.scale
    reader = surprise.Reader(rating_scale=(scale.low, scale.high))
    trainset = surprise.Dataset.load_from_df(df, reader).build_full_trainset()
    kwargs: dict[str, Any] = {}
    for k, v in params.items():
        head, dot, sub = k.partition(".")
        if dot:
            kwargs.setdefault(head, {})[sub] = v
        else:
            kwargs[k] = v
    if model in ("SVD", "SVDpp", "NMF", "CoClustering"):
        kwargs["random_state"] = world.train.context.seed
    if model not in ("SlopeOne",):
        kwargs["verbose"] = False
    algo = getattr(surprise, model)(**kwargs).fit(trainset)
    preds = [
        algo.predict(int(a), int(b), clip=False)
        for a, b in zip(queries.user, queries.target_item, strict=True)
    ]
    est = np.array([p.est for p in preds])
    impossible = np.array([p.details["was_impossible"] for p in preds])
    known = np.array(
        [
            trainset.knows_user(trainset.to_inner_uid(int(a)))
            if int(a) in trainset._raw2inner_id_users
            else False
            for a in queries.user
        ]
    ) & np.array([int(b) in trainset._raw2inner_id_items for b in queries.target_item])
    return est, impossible, known


@pytest.mark.parametrize("model", list(SURPRISE_PARAMS))
def test_surprise_adapter_equals_the_library_called_directly(model):
    pytest.importorskip("surprise")
    world = synthetic_world(3)
    queries = _queries(world)
    params = SURPRISE_PARAMS[model]
    adapter = registry.create(registry.ModelSpec(f"surprise:{model}", dict(params)))
    adapter.fit(world.train)
    raw, fallback = adapter._predict(queries)  # before the harness's clipping
    est, impossible, known = _surprise_direct(model, params, world, queries)
    np.testing.assert_allclose(raw, est, rtol=0, atol=1e-6)
    # fallback = the library's PredictionImpossible, or a user/item it does not know
    np.testing.assert_array_equal(fallback, impossible | ~known)
    assert fallback[-2] and fallback[-1]  # the unknown user code, the unknown item code
    assert not fallback.all()
    # and the harness's clipped, checked predictions agree with the library's clipped ones
    out = adapter.predict_detailed(queries)
    np.testing.assert_allclose(out.values, np.clip(est, 0.5, 5.0), atol=1e-6)
    rep = adapter.fit_report_
    assert rep.refit and rep.val_rmse is None
    assert rep.settings["fit_on"].startswith("training events + validation targets")
    assert rep.settings["events"] == world.train.val_events().n_events
    json.dumps(rep.settings)


def test_surprise_seed_is_the_runs_unless_given():
    pytest.importorskip("surprise")
    from predictors.contract import RunContext

    def fitted(seed: int, **params: Any) -> Any:
        world = synthetic_world(0, context=RunContext(seed=seed))
        m = registry.create(registry.ModelSpec("surprise:SVD", {"n_factors": 4, **params}))
        return m.fit(world.train), world

    a, world = fitted(1)
    b, _ = fitted(2)
    assert a.fit_report_.settings["params"]["random_state"] == 1
    assert not np.allclose(a.predict(world.test), b.predict(world.test))
    c, _ = fitted(1, random_state=7)
    d, _ = fitted(2, random_state=7)
    np.testing.assert_array_equal(c.predict(world.test), d.predict(world.test))
    assert c.fit_report_.settings["params"]["random_state"] == 7


@pytest.mark.parametrize("model", list(SURPRISE_PARAMS))
def test_surprise_adapters_pass_the_conformance_suite(model):
    pytest.importorskip("surprise")
    cls = registry.get_class(f"surprise:{model}")
    check_predictor(cls, SURPRISE_PARAMS[model]).raise_for_failures()
    assert cls.capabilities.seeded == (model in ("SVD", "SVDpp", "NMF", "CoClustering"))


def test_surprise_spec_options_parse_and_round_trip():
    pytest.importorskip("surprise")
    spec = registry.parse_spec(
        "surprise:KNNBaseline:k=20:sim_options.name=pearson_baseline:sim_options.user_based=false"
    )
    assert spec.name == "surprise:KNNBaseline"
    m = registry.create(spec)
    cfg = m.get_config()
    assert cfg == {"k": 20, "sim_options.name": "pearson_baseline", "sim_options.user_based": False}
    assert type(m)(**cfg).get_config() == cfg
    kw = m._library_kwargs(seed=0)
    assert kw["sim_options"] == {"name": "pearson_baseline", "user_based": False}
    # a dict from Python works as well
    m2 = type(m)(sim_options={"name": "cosine"})
    assert m2._library_kwargs(seed=0)["sim_options"] == {"name": "cosine"}


@pytest.mark.parametrize(
    "spec, message",
    [
        (
            "surprise:SVD:n_factor=5",
            "unknown option 'n_factor' for model 'surprise:SVD'. Did you mean 'n_factors'",
        ),
        ("surprise:SVD:k=5", "Accepted: n_factors, n_epochs, biased"),
        ("surprise:KNNBaseline:sim_options.nme=cosine", "unknown option 'sim_options.nme'"),
        ("surprise:SlopeOne:k=3", "Accepted: (none)"),
        ("surprise:NMF:init_low=-1", "init_low should be greater than zero"),
    ],
)
def test_surprise_unknown_or_bad_options_fail_with_the_accepted_ones(spec, message):
    pytest.importorskip("surprise")
    with pytest.raises(ValueError) as e:
        registry.create(spec)
    assert message in str(e.value)


def test_unknown_surprise_model_lists_the_known_ones():
    with pytest.raises(PluginError) as e:
        registry.parse_spec("surprise:SVDPP")
    msg = str(e.value)
    assert "unknown Surprise model 'SVDPP'" in msg and "Did you mean 'surprise:SVDpp'" in msg
    assert "surprise:KNNBaseline" in msg and "surprise:CoClustering" in msg
    assert isinstance(e.value, ValueError)


def test_missing_surprise_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "surprise", None)  # `import surprise` raises ImportError
    with pytest.raises(PluginError) as e:
        registry.parse_spec("surprise:SVD")
    msg = str(e.value)
    assert "pip install ratingbench[surprise]" in msg and "\n" not in msg


def test_importing_the_adapter_modules_imports_no_library():
    code = "import predictors.adapters.surprise, predictors.adapters.cornac, predictors.registry"
    assert modules_loaded_by(code, ["surprise", "cornac"]) == []


def test_bench_run_with_surprise_adapters(tmp_path, monkeypatch):
    pytest.importorskip("surprise")
    from bench.cli import main

    out = tmp_path / "res"
    args = [
        "run",
        "--models",
        "user-mean,surprise:SVD,surprise:BaselineOnly,"
        "surprise:KNNBaseline:sim_options.name=no-such-similarity",
        "--dataset",
        "synthetic",
        "--users",
        "150",
        "--offline",
        "--out",
        str(out),
    ]
    r = CliRunner().invoke(main, args)
    assert "1 model(s) failed: surprise:KNNBaseline" in r.output, r.output
    doc = json.loads(next(out.glob("*.json")).read_text())
    models = {m["key"]: m for m in doc["models"]}
    for key in ("user-mean", "surprise:SVD", "surprise:BaselineOnly"):
        assert models[key]["status"] == "ok", models[key]
        rmse = models[key]["metrics"]["rmse"]
        assert 0 < rmse["low"] <= rmse["estimate"] <= rmse["high"] < 4.5
    assert models["surprise:SVD"]["refit"] is True
    assert models["surprise:SVD"]["fit_info"]["library"] == "scikit-surprise"
    assert "estimate" in models["surprise:SVD"]["vs_reference"]["rmse"]
    knn = models["surprise:KNNBaseline:sim_options.name=no-such-similarity"]
    assert knn["status"] == "failed" and "no-such-similarity" in knn["error"]


# -- Cornac ----------------------------------------------------------------------------------

CORNAC_PARAMS: dict[str, dict[str, Any]] = {
    "MF": {"k": 6, "max_iter": 15},
    "PMF": {"k": 4, "max_iter": 30},
    "BaselineOnly": {"max_iter": 15},
    "SVD": {"k": 6, "max_iter": 15},
    "NMF": {"k": 5, "max_iter": 20, "use_bias": True},
}


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("model", list(CORNAC_PARAMS))
def test_cornac_adapter_equals_the_library_called_directly(model):
    cornac = pytest.importorskip("cornac")
    world = synthetic_world(4)
    queries = _queries(world)
    params = CORNAC_PARAMS[model]
    adapter = registry.create(registry.ModelSpec(f"cornac:{model}", dict(params)))
    adapter.fit(world.train)
    raw, fallback = adapter._predict(queries)
    # the library directly: the same triples, seed and declared scale
    store = world.train.val_events()
    u, i, r = _frame_rows(store)
    seed = world.train.context.seed
    data = cornac.data.Dataset.from_uir(list(zip(u, i, r, strict=True)), seed=seed)
    data.min_rating, data.max_rating = world.train.scale.low, world.train.scale.high
    algo = getattr(cornac.models, model)(**params, seed=seed).fit(data)
    est, flag = [], []
    for a, b in zip(queries.user.tolist(), queries.target_item.tolist(), strict=True):
        ui, ii = data.uid_map.get(a), data.iid_map.get(b)
        if ui is None or ii is None:
            est.append(data.global_mean)
            flag.append(True)
            continue
        try:
            est.append(float(algo.score(ui, ii)))
            flag.append(False)
        except cornac.exception.ScoreException:
            est.append(data.global_mean)
            flag.append(True)
    np.testing.assert_allclose(raw, est, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(fallback, flag)
    assert fallback[-2] and fallback[-1] and not fallback.all()
    assert adapter.fit_report_.refit and adapter.fit_report_.settings["library"] == "cornac"


@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.parametrize("model", list(CORNAC_PARAMS))
def test_cornac_adapters_pass_the_conformance_suite(model):
    pytest.importorskip("cornac")
    cls = registry.get_class(f"cornac:{model}")
    check_predictor(cls, CORNAC_PARAMS[model]).raise_for_failures()


def test_unknown_cornac_model_lists_the_known_ones():
    with pytest.raises(PluginError) as e:
        registry.parse_spec("cornac:mf")
    assert "unknown Cornac model 'mf'. Did you mean 'cornac:MF'?" in str(e.value)
    assert "cornac:PMF" in str(e.value)


def test_unknown_cornac_option_lists_the_accepted_ones():
    pytest.importorskip("cornac")
    with pytest.raises(ValueError) as e:
        registry.create("cornac:MF:factors=3")
    assert "unknown option 'factors' for model 'cornac:MF'." in str(e.value)
    assert "Accepted: name, k, backend" in str(e.value)


def test_missing_cornac_extra_names_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "cornac", None)
    with pytest.raises(PluginError) as e:
        registry.parse_spec("cornac:MF")
    assert "pip install ratingbench[cornac]" in str(e.value) and "\n" not in str(e.value)
