"""Saved models (``predictors.persist``, ``bench.checkpoints``, ``bench predict``): every
built-in model saved after a run and loaded back predicts the run's test queries exactly as
the run did (the sidecar's values); every refusal is one clear line."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from rich.console import Console

from bench import api
from bench.checkpoints import (
    CheckpointTarget,
    checkpoint_dir,
    checkpoint_keys,
    key_folder,
    load_checkpoint,
    models_dir,
    run_data,
    save_checkpoint,
)
from bench.cli.predict import predict_cmd
from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams, make_split
from bench.results import read_results
from bench.runkey import RunKey
from predictors import persist
from predictors.contract import Harnessed, Prediction, RunContext
from predictors.registry import REGISTRY, ModelSpec, class_of, create
from predictors.types import RatingScale
from tests.helpers import edit_json, refused

# quick options (tests/test_contract.py's FAST, and a short SVD++)
FAST: dict[str, str] = {
    "attention": "attention:epochs=2",
    "transformer": "transformer:epochs=2",
    "mf": "mf:factors=8:reg=0.05",
    "mf-temporal": "mf-temporal:factors=8:reg=0.05",
    "svdpp": "svdpp:factors=8:reg=0.05:max_epochs=5",
}
QUIET = Console(stderr=True, quiet=True)

PLUGIN = """
import numpy as np


class Offset:
    name = "offset"

    def __init__(self, *, shift=0.0):
        self.shift = shift

    def get_config(self):
        return {"shift": self.shift}

    def fit(self, train):
        self.mean_ = float(np.mean(train.events.rating)) + self.shift
        self.scale_ = (train.scale.low, train.scale.high)
        return self

    def predict(self, queries):
        return np.full(len(queries), self.mean_, dtype=np.float32)
"""


class _Recording(Harnessed):
    """The runner's handle on a model, keeping every fitted model and the embedding its
    TrainSet carried: the test saves them as the runner hook does."""

    fitted: ClassVar[list[tuple[_Recording, object]]] = []

    def fit(self, train):  # type: ignore[no-untyped-def]
        report = super().fit(train)
        _Recording.fitted.append((self, train.embeddings))
        return report


def _run(out: Path, models: list[str], monkeypatch, *, save: bool = True) -> Path:
    """A run of ``models`` on synthetic data, each fitted model saved as the runner's hook
    would once its predictions are made. Returns the results JSON."""
    from bench import runner

    _Recording.fitted = []
    monkeypatch.setattr(runner, "Harnessed", _Recording)
    spec = api.make_spec(models, dataset="synthetic", users=150, out=out, resamples=200)
    outcome = runner.execute(spec, QUIET)
    monkeypatch.undo()
    if not save:
        return outcome.path
    doc = read_results(outcome.path, predictions=False)
    prep_like = load_source(spec.source).interactions
    target = CheckpointTarget(
        results=outcome.path,
        run_id=str(doc.raw["run_id"]),
        dataset={"name": prep_like.name, "hash": prep_like.hash},
        split_hash=str(doc.split_hash),
        device="cpu",
    )
    runs = [r for r in outcome.results if r.ok]
    assert len(runs) == len(_Recording.fitted)
    for r, (handle, emb) in zip(runs, _Recording.fitted, strict=True):
        save_checkpoint(r, handle, target, embedding=emb)  # type: ignore[arg-type]
    return outcome.path


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    mp = pytest.MonkeyPatch()
    try:
        models = [FAST.get(name, name) for name in REGISTRY]
        return _run(tmp_path_factory.mktemp("run"), models, mp)
    finally:
        mp.undo()


@pytest.fixture
def run_copy(saved_run: Path, tmp_path: Path) -> Path:
    """A copy of the saved run (results, sidecar, models) that a test may damage."""
    for p in saved_run.parent.iterdir():
        if p.name.startswith(saved_run.stem):
            dest = tmp_path / p.name
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, dest)
    return tmp_path / saved_run.name


def _test_batches(doc, inter):
    split = make_split(inter, SplitParams(**doc.split["params"]))
    assert split.hash == doc.split_hash
    return [b for _, b in split.test_batches(inter, 1000)]


# -- every built-in: the saved model predicts what the run predicted -----------------------
@pytest.mark.parametrize("name", list(REGISTRY))
def test_saved_model_predicts_the_sidecar_exactly(saved_run: Path, name: str):
    doc = read_results(saved_run)
    rec = next(m for m in doc.models if m.key.model == FAST.get(name, name))
    model, meta = load_checkpoint(saved_run, rec.key)
    assert type(model) is class_of(ModelSpec(name))
    assert meta["run_id"] == doc.raw["run_id"] and meta["dataset"]["hash"] == doc.dataset_hash
    assert meta["split"]["hash"] == doc.split_hash and meta["config"] == rec.record["config"]
    assert meta["learning_curve"] == rec.learning_curve
    inter = run_data(doc).interactions
    handle = Harnessed(model)
    handle.scale = RatingScale(*doc.scale)
    pred = Prediction.concat([handle.predict(b) for b in _test_batches(doc, inter)])
    assert rec.pred is not None and rec.fallback is not None
    np.testing.assert_array_equal(pred.values, rec.pred)
    np.testing.assert_array_equal(pred.fallback, rec.fallback)


def test_checkpoint_files_and_keys(saved_run: Path):
    doc = read_results(saved_run, predictions=False)
    assert sorted(checkpoint_keys(saved_run)) == sorted(str(m.key) for m in doc.models)
    folder = checkpoint_dir(saved_run, RunKey("mf:factors=8:reg=0.05"))
    assert folder.parent == models_dir(saved_run) == saved_run.with_name(saved_run.stem + ".models")
    assert sorted(p.name for p in folder.iterdir()) == [
        "arrays.npz",
        "checkpoint.json",
        "state.json",
    ]
    meta = json.loads((folder / "checkpoint.json").read_text())
    assert meta["class"] == "predictors.mf:MF" and meta["code"]["version"]
    assert meta["code"]["files"]["predictors.mf"]  # a sha256 of the class's file
    attention = persist.read_checkpoint(checkpoint_dir(saved_run, RunKey("attention:epochs=2")))
    assert attention["embedding"]["name"] == "synthetic" and attention["embedding"]["hash"]
    assert len(attention["learning_curve"]) == 2
    with np.load(folder / "arrays.npz", allow_pickle=False) as npz:  # plain arrays only
        assert all(npz[k].dtype != object for k in npz.files)
    assert not [p for p in models_dir(saved_run).iterdir() if p.name.startswith(".")]


def test_key_folder_is_safe_and_unique():
    assert key_folder(RunKey("bias")) == "bias"
    assert key_folder(RunKey("mf", None, 1)) == "mf@1"
    a, b = key_folder(RunKey("recent-k:k=10")), key_folder(RunKey("recent-k_k=10"))
    assert "/" not in a and ":" not in a and a != b
    assert "/" not in key_folder(RunKey("knn", "emb/x.parquet"))


# -- refusals ---------------------------------------------------------------------------
def _tamper(results: Path, key: str, name: str, where: tuple[str, ...], value: object) -> None:
    """Set ``where`` (a path of keys) in the JSON file ``name`` of ``key``'s checkpoint."""
    edit_json(checkpoint_dir(results, RunKey(key)) / name, where, value)


def test_refuses_a_key_not_in_the_run(saved_run: Path):
    msg = refused(saved_run, "nope")
    assert "no model run 'nope'" in msg and "bias" in msg and "models with a checkpoint" in msg


def test_refuses_a_run_saved_without_save_models(tmp_path: Path, monkeypatch):
    path = _run(tmp_path, ["bias"], monkeypatch, save=False)
    assert "without --save-models" in refused(path, "bias")


def test_refuses_another_dataset(saved_run: Path):
    msg = refused(saved_run, "bias", dataset_hash="0" * 16)
    assert "fitted on dataset" in msg and "0" * 16 in msg


def test_refuses_changed_builtin_code(run_copy: Path):
    code = ("code", "files", "predictors.baselines")
    _tamper(run_copy, "bias", "checkpoint.json", code, "f" * 64)
    msg = refused(run_copy, "bias")
    assert "code changed" in msg and "baselines.py" in msg


def test_refuses_a_checkpoint_of_another_run(run_copy: Path):
    _tamper(run_copy, "bias", "checkpoint.json", ("run_id",), "0123456789abcdef")
    assert "belongs to another run" in refused(run_copy, "bias")


def test_refuses_a_corrupt_checkpoint(run_copy: Path):
    mf = checkpoint_dir(run_copy, RunKey("mf:factors=8:reg=0.05"))
    (mf / "arrays.npz").unlink()
    msg = refused(run_copy, "mf:factors=8:reg=0.05")
    assert msg.startswith("corrupt checkpoint") and "arrays.npz" in msg and "missing" in msg

    bias = checkpoint_dir(run_copy, RunKey("bias"))
    (bias / "state.json").write_text('{"format": "ratingbench.mo')
    assert "not valid JSON" in refused(run_copy, "bias")

    knn = checkpoint_dir(run_copy, RunKey("knn")) / "arrays.npz"
    with np.load(knn, allow_pickle=False) as npz:
        arrays = {k: npz[k] for k in npz.files}
    first = next(iter(arrays))
    arrays[first] = np.zeros(3, dtype=np.int8)  # the wrong array
    np.savez(knn, **arrays)  # type: ignore[arg-type]
    assert "the state says" in refused(run_copy, "knn")


def test_refuses_a_config_the_class_rejects(run_copy: Path):
    _tamper(run_copy, "user-mean", "state.json", ("model", "config"), {"nope": 1})
    msg = refused(run_copy, "user-mean")
    assert "rejects the saved config" in msg and "nope" in msg


def test_refuses_a_class_from_elsewhere(run_copy: Path):
    where = ("model", "state", "scale_", "class")
    _tamper(run_copy, "bias", "state.json", where, "subprocess:Popen")
    assert "may not build" in refused(run_copy, "bias")


def test_refuses_a_changed_plugin(tmp_path: Path, monkeypatch):
    file = tmp_path / "offset_model.py"
    file.write_text(PLUGIN)
    path = _run(tmp_path, ["global-mean", f"{file}:Offset:shift=0.5"], monkeypatch)
    model, meta = load_checkpoint(path, "offset:shift=0.5")
    assert model.mean_ == pytest.approx(read_results(path).model("offset:shift=0.5").pred[0])
    assert meta["plugin"]["sha256"]
    file.write_text(PLUGIN + "\n# changed\n")
    msg = refused(path, "offset:shift=0.5")
    assert "code changed" in msg and "offset_model.py is not the file it was" in msg


# -- what cannot be saved ------------------------------------------------------------------
class _Holds:
    name = "holds"

    def get_config(self):
        return {}

    def fit(self, train):
        return self

    def predict(self, queries):
        return np.zeros(len(queries), np.float32)


def test_unsavable_state_names_the_attribute(tmp_path: Path):
    m = _Holds()
    m.mean_ = 1.0
    m.hook_ = lambda x: x
    with pytest.raises(persist.NotSavable, match=r"holds\.hook_ is a builtins\.function"):
        persist.save_model(m, tmp_path / "m", meta={})
    assert not list(tmp_path.iterdir())  # nothing left behind
    m.hook_ = np.array([object()], dtype=object)
    with pytest.raises(persist.NotSavable, match="hook_ is an array of Python objects"):
        persist.save_model(m, tmp_path / "m", meta={})


def test_save_checkpoint_records_a_note_instead_of_failing(saved_run: Path, tmp_path: Path):
    from bench.jobs import FitJob, FitResult, Status

    m = _Holds()
    m.file_ = open(__file__)
    try:
        run = FitResult(FitJob(run_key=RunKey("holds"), spec=ModelSpec("holds"), seed=0), Status.OK)
        target = CheckpointTarget(tmp_path / "r.json", "id", {"name": "x", "hash": "h"}, "s", "cpu")
        note = save_checkpoint(run, m, target)
    finally:
        m.file_.close()
    assert note is not None and note.startswith("model not saved: ") and "file_" in note
    assert "TextIOWrapper" in note


# -- the format itself ----------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Pair:
    a: np.ndarray
    b: float


class _Everything(_Holds):
    name = "everything"


def test_values_round_trip_exactly(tmp_path: Path):
    import torch

    m = _Everything()
    m.values_ = {
        "tuple": (1, "x", None),
        "ints": {3: 1.5, 7: -2.0},
        "floats": [float("nan"), float("inf"), -0.0],
        "scalar": np.float32(0.1),
        "pair": _Pair(np.arange(4, dtype=np.int16), 2.5),
        "scale": RatingScale(1.0, 5.0, 1.0),
    }
    m.tensor_ = torch.arange(6, dtype=torch.bfloat16).reshape(2, 3) / 7
    m.device_ = torch.device("cpu")
    persist.save_model(m, tmp_path / "m", meta={"seed": 3})
    back = persist.load_model(tmp_path / "m", _Everything)
    v = back.values_
    assert v["tuple"] == (1, "x", None) and v["ints"] == {3: 1.5, 7: -2.0}
    assert np.isnan(v["floats"][0]) and v["floats"][1] == np.inf
    assert str(v["floats"][2]) == "-0.0"
    assert v["scalar"].dtype == np.float32 and v["scalar"] == np.float32(0.1)
    assert isinstance(v["pair"], _Pair) and v["pair"].a.dtype == np.int16
    np.testing.assert_array_equal(v["pair"].a, np.arange(4))
    assert v["scale"] == RatingScale(1.0, 5.0, 1.0)
    assert back.tensor_.dtype == torch.bfloat16 and torch.equal(back.tensor_, m.tensor_)
    assert back.device_ == torch.device("cpu")
    assert persist.read_checkpoint(tmp_path / "m")["seed"] == 3
    with pytest.raises(persist.CheckpointError, match=r"holds a .*_Everything, not a .*_Holds"):
        persist.load_model(tmp_path / "m", _Holds)


def test_saving_again_replaces_the_folder_whole(tmp_path: Path):
    m = _Holds()
    m.a_ = np.ones(3)
    persist.save_model(m, tmp_path / "m", meta={})
    (tmp_path / "m" / "stray.txt").write_text("x")
    del m.a_
    m.b_ = 2
    persist.save_model(m, tmp_path / "m", meta={})
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [
        "arrays.npz",
        "checkpoint.json",
        "state.json",
    ]
    back = persist.load_model(tmp_path / "m", _Holds)
    assert back.b_ == 2 and not hasattr(back, "a_")
    assert [p.name for p in tmp_path.iterdir()] == ["m"]


# -- library adapters --------------------------------------------------------------------
@pytest.fixture(scope="module")
def small():
    loaded = load_source(DataSource(dataset="synthetic", users=80, data_seed=2))
    inter = loaded.interactions
    split = make_split(inter, SplitParams(min_history=10, samples_per_user=5))
    train = split.train_set(inter, context=RunContext(seed=0, device="cpu"))
    ((_, batch),) = list(split.test_batches(inter, chunk=10**9))
    return train, batch


def test_surprise_vectorised_model_round_trips(small, tmp_path: Path):
    pytest.importorskip("surprise")
    train, batch = small
    spec = ModelSpec("surprise:SVD", {"n_factors": 4, "n_epochs": 3})
    model = create(spec).fit(train)
    persist.save_model(model, tmp_path / "svd", meta={})
    back = persist.load_model(tmp_path / "svd", class_of(spec))
    assert back.algo_ is None  # the library's object is not saved: predict reads arrays
    a, b = model.predict_detailed(batch), back.predict_detailed(batch)
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.fallback, b.fallback)


@pytest.mark.parametrize("name", ["surprise:SlopeOne", "cornac:PMF"])
def test_library_object_models_are_not_saved(small, tmp_path: Path, name: str):
    pytest.importorskip(name.split(":")[0])
    model = create(ModelSpec(name, {"max_iter": 3} if name == "cornac:PMF" else {}))
    model.fit(small[0])
    with pytest.raises(persist.NotSavable, match="predicts through the library's own fitted"):
        persist.save_model(model, tmp_path / "m", meta={})


# -- bench predict ----------------------------------------------------------------------
def _invoke(*args: object):
    return CliRunner().invoke(predict_cmd, [str(a) for a in args])


def test_predict_one_user_and_movie(saved_run: Path):
    doc = read_results(saved_run)
    inter = run_data(doc).interactions
    user, movie = int(inter.user_ids[3]), int(inter.item_ids[5])
    res = _invoke(saved_run, "--model", "bias", "--user", user, "--movie", movie)
    assert res.exit_code == 0, res.output
    line = next(x for x in res.output.splitlines() if x.strip().startswith(str(user))).split()
    n_hist = int(inter.user_offsets[4] - inter.user_offsets[3])
    assert int(line[1]) == movie and int(line[3]) == n_hist
    assert int(line[2]) == int(inter.timestamp[inter.user_offsets[4] - 1]) + 1
    model, _ = load_checkpoint(saved_run, "bias")
    mu = model.mu_
    b_u = (
        inter.rating[inter.user_offsets[3] : inter.user_offsets[4]]
        - mu
        - model.item_bias_[inter.item[inter.user_offsets[3] : inter.user_offsets[4]]]
    ).sum() / (n_hist + model.user_damping_)
    expected = np.clip(mu + b_u + model.item_bias_[5], 0.5, 5.0)
    assert float(line[4]) == pytest.approx(expected, abs=1e-4)


def test_predict_queries_file_matches_the_run(saved_run: Path, tmp_path: Path):
    doc = read_results(saved_run)
    side = doc.predictions
    assert side is not None
    key = "mf:factors=8:reg=0.05"
    q = pd.DataFrame(
        {"user_id": side["user_id"], "movie_id": side["movie_id"], "timestamp": side["target_time"]}
    )
    q.to_csv(tmp_path / "q.csv", index=False)
    out = tmp_path / "pred.parquet"
    res = _invoke(saved_run, "--model", key, "--queries", tmp_path / "q.csv", "--out", out)
    assert res.exit_code == 0, res.output
    got = pd.read_parquet(out)
    assert list(got.columns) == [
        "user_id",
        "movie_id",
        "target_time",
        "history",
        "prediction",
        "fallback",
    ]
    # the test histories: every earlier event; a query's history here stops before its second
    inter = run_data(doc).interactions
    split = make_split(inter, SplitParams(**doc.split["params"]))
    split_hist = split.test_pos - inter.user_offsets[split.test_user]
    same = got["history"].to_numpy() == split_hist
    assert same.mean() > 0.9
    np.testing.assert_array_equal(
        got["prediction"].to_numpy()[same], side[f"pred:{key}"].to_numpy()[same]
    )
    np.testing.assert_array_equal(
        got["fallback"].to_numpy()[same], side[f"fallback:{key}"].to_numpy()[same]
    )
    # without a timestamp: the whole history
    q[["user_id", "movie_id"]].head(3).to_parquet(tmp_path / "q.parquet")
    res = _invoke(saved_run, "--model", key, "--queries", tmp_path / "q.parquet")
    assert res.exit_code == 0, res.output


def test_predict_flags_a_movie_the_model_never_saw(tmp_path: Path, monkeypatch):
    rows = [(u, m, 1.0 + (u + m) % 5, 1000 * u + 10 * m) for u in (1, 2, 3) for m in range(1, 16)]
    rows.append((3, 77, 4.0, 10**6))  # movie 77: only user 3's last event, a test target
    frame = pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"])
    frame.to_csv(tmp_path / "ratings.csv", index=False)
    from bench import runner

    _Recording.fitted = []
    monkeypatch.setattr(runner, "Harnessed", _Recording)
    spec = api.make_spec(
        ["bias"], ratings=tmp_path / "ratings.csv", out=tmp_path, resamples=200, min_test_users=1
    )
    outcome = runner.execute(spec, QUIET)
    monkeypatch.undo()
    doc = read_results(outcome.path)
    assert doc.model("bias").fallback.tolist() == [False, False, True]
    inter = run_data(doc).interactions
    target = CheckpointTarget(
        outcome.path, str(doc.raw["run_id"]), {"hash": inter.hash}, "s", "cpu"
    )
    (run,) = [r for r in outcome.results if r.key == "bias"]
    (handle,) = [h for h, _ in _Recording.fitted if h.name == "bias"]
    assert save_checkpoint(run, handle, target) is None
    res = _invoke(outcome.path, "--model", "bias", "--user", 3, "--movie", 77)
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1].split()
    assert last[0] == "3" and last[1] == "77" and last[-1] == "True"
    # with the target's own time, the history is the test query's: the run's prediction
    pd.DataFrame({"user_id": [3], "movie_id": [77], "timestamp": [10**6]}).to_csv(
        tmp_path / "q.csv", index=False
    )
    res = _invoke(
        outcome.path,
        "--model",
        "bias",
        "--queries",
        tmp_path / "q.csv",
        "--out",
        tmp_path / "p.csv",
    )
    assert res.exit_code == 0, res.output
    got = pd.read_csv(tmp_path / "p.csv")
    assert got["history"].tolist() == [15] and got["fallback"].tolist() == [True]
    assert np.float32(got["prediction"][0]) == doc.model("bias").pred[2]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--model", "bias", "--user", 0, "--movie", 999999],
            "movie id 999999 is not in the run's data",
        ),
        (
            ["--model", "bias", "--user", 999999, "--movie", 1],
            "user id 999999 is not in the run's data",
        ),
        (["--model", "zzz", "--user", 0, "--movie", 1], "models with a checkpoint:"),
        (["--model", "bias"], "give either --user ID --movie ID or --queries FILE"),
        (["--model", "bias", "--user", 0], "--user and --movie go together"),
    ],
)
def test_predict_errors_are_one_line(saved_run: Path, args, expected):
    doc = read_results(saved_run, predictions=False)
    inter = run_data(doc).interactions
    args = [int(inter.user_ids[0]) if a == 0 else a for a in args]
    args = [int(inter.item_ids[0]) if a == 1 else a for a in args]
    res = _invoke(saved_run, *args)
    assert res.exit_code == 2
    assert res.output.startswith("error: ") and expected in " ".join(res.output.split()), res.output


def test_predict_refuses_changed_code_and_a_run_without_models(
    run_copy: Path, tmp_path: Path, monkeypatch
):
    code = ("code", "files", "predictors.baselines")
    _tamper(run_copy, "bias", "checkpoint.json", code, "0" * 64)
    res = _invoke(run_copy, "--model", "bias", "--user", 1, "--movie", 1)
    assert res.exit_code == 2 and "code changed" in res.output
    shutil.rmtree(models_dir(run_copy))
    res = _invoke(run_copy, "--model", "bias", "--user", 1, "--movie", 1)
    assert res.exit_code == 2 and "without --save-models" in res.output


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_bench_run_save_models_then_predict(tmp_path: Path, jobs: str):
    """The whole path a user takes: ``bench run --save-models`` (in the driver, or in worker
    processes), then every saved model predicts the run's test queries as the sidecar holds."""
    from bench.cli import main

    out = tmp_path / "r"
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--models",
            "user-mean,bias,mf:factors=4,attention:epochs=1",
            "--dataset",
            "synthetic",
            "--users",
            "120",
            "--resamples",
            "200",
            "--offline",
            "--save-models",
            "--jobs",
            jobs,
            "--out",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    (path,) = out.glob("*.json")
    doc = read_results(path)
    from bench.spec import RunSpec

    assert RunSpec.from_dict(doc.raw["run_spec"]).output.save_models is True
    inter = run_data(doc).interactions
    batches = _test_batches(doc, inter)
    for rec in doc.models:
        assert not any("not saved" in n for n in rec.record["notes"]), rec.record["notes"]
        model, meta = load_checkpoint(path, rec.key, dataset_hash=inter.hash)
        assert meta["run_id"] == doc.raw["run_id"]
        handle = Harnessed(model)
        handle.scale = RatingScale(*doc.scale)
        pred = Prediction.concat([handle.predict(b) for b in batches])
        np.testing.assert_array_equal(pred.values, rec.pred)
