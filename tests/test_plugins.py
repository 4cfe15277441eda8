"""Models from the user's code: files, modules, entry points; what the run does with them."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from predictors import plugins
from predictors.plugins import PluginError
from predictors.registry import create, parse_models, parse_spec

PLAIN = '''
import numpy as np

class ItemMean:
    """Damped item mean; keeps the protocol without inheriting from anything."""
    name = "item-mean-plain"

    def __init__(self, damping=5.0):
        self.damping = damping

    def get_config(self):
        return {"damping": self.damping}

    def fit(self, train):
        ev = train.events
        mu = float(np.mean(ev.rating, dtype=np.float64))
        sums = np.bincount(ev.item, weights=ev.rating, minlength=train.n_items)
        cnt = np.bincount(ev.item, minlength=train.n_items)
        self.mean_ = (sums + self.damping * mu) / (cnt + self.damping)
        self.seen_seed_ = train.context.seed
        return self

    def predict(self, queries):
        return self.mean_[queries.target_item].astype(np.float32)
'''

SYNTH = ["--dataset", "synthetic", "--users", "120", "--resamples", "200", "--offline"]


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


def _run(args: list[str], tmp_path: Path):
    return CliRunner().invoke(main, [*args, "--out", str(tmp_path / "results")])


def _results(tmp_path: Path) -> dict:
    (path,) = sorted((tmp_path / "results").glob("*.json"))
    return json.loads(path.read_text())


def test_a_plain_class_from_a_file_runs_next_to_the_built_ins(tmp_path):
    f = _write(tmp_path, "my_models.py", PLAIN)
    r = _run(["run", "--models", f"user-mean,{f}:ItemMean:damping=2", *SYNTH], tmp_path)
    assert r.exit_code == 0, r.output
    doc = _results(tmp_path)
    rec = next(m for m in doc["models"] if m["name"] == "item-mean-plain")
    assert rec["status"] == "ok" and rec["label"] == "item-mean-plain:damping=2"
    assert rec["options"] == {"damping": 2}
    assert rec["source"]["kind"] == "file"
    assert rec["source"]["sha256"] == __import__("hashlib").sha256(f.read_bytes()).hexdigest()
    assert rec["metrics"]["rmse"]["estimate"] > 0
    # the run spec records where the plugin came from: rerun loads it again
    spec = next(m for m in doc["run_spec"]["models"] if m["spec"].startswith("item-mean"))
    assert spec["source"]["ref"].endswith("my_models.py:ItemMean")


def test_module_plugin_and_seed_through_the_context(tmp_path, monkeypatch):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    _write(pkg, "models.py", PLAIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = parse_spec("mypkg.models:ItemMean")
    assert spec.name == "item-mean-plain" and spec.source is not None
    assert spec.source.kind == "module" and spec.source.sha256
    from bench.data.split import SplitParams, make_split
    from bench.data.types import build_interactions
    from predictors.contract import Harnessed, RunContext
    from tests.conftest import make_raw, tiny_rows

    inter = build_interactions(make_raw(tiny_rows()))
    split = make_split(inter, SplitParams(min_history=2))
    model = create(spec)
    report = Harnessed(model).fit(split.train_set(inter, context=RunContext(seed=7)))
    assert model.seen_seed_ == 7 and report.settings == {}


@pytest.mark.parametrize(
    ("source", "target", "message"),
    [
        (None, "missing.py:Foo", "the file missing.py does not exist"),
        (PLAIN, "{f}:Nope", "has no class 'Nope' (classes defined there: ItemMean)"),
        (PLAIN, "{f}", "say which class"),
        (
            "class NotAModel:\n    def fit(self, t):\n        return self\n",
            "{f}:NotAModel",
            "is not a predictor: it has no predict(), get_config()",
        ),
        ("def helper():\n    return 1\n", "{f}:helper", "is a function, not a class"),
        (
            "import numpy\nx = 1 / 0\n",
            "{f}:Foo",
            "importing it raised ZeroDivisionError: division by zero",
        ),
        (PLAIN.replace('"item-mean-plain"', '"mf"'), "{f}:ItemMean", "the name of a built-in"),
        ("import no_such_module_here\n", "{f}:Foo", "ModuleNotFoundError"),
    ],
)
def test_bad_plugins_get_a_clear_message(tmp_path, source, target, message):
    f = tmp_path / "plug.py"
    if source is not None:
        f.write_text(source)
    with pytest.raises(PluginError) as e:
        parse_spec(target.format(f=f) if "{f}" in target else target)
    assert message in str(e.value)
    assert "plug" in str(e.value) or "missing" in str(e.value)  # names the plugin


def test_an_import_error_shows_the_plugins_own_frames(tmp_path):
    f = _write(tmp_path, "boom.py", "def inner():\n    raise RuntimeError('kaboom')\n\ninner()\n")
    with pytest.raises(PluginError) as e:
        parse_spec(f"{f}:Foo")
    text = str(e.value)
    assert "the plugin's traceback" in text and "boom.py" in text and "inner" in text
    assert "importlib" not in text


def test_missing_module():
    with pytest.raises(PluginError, match=r"no module named 'nosuch_pkg_xyz\.models'"):
        parse_spec("nosuch_pkg_xyz.models:Foo")


def test_two_plugins_with_one_name_are_refused(tmp_path):
    a = _write(tmp_path, "a.py", PLAIN)
    b = _write(tmp_path, "b.py", PLAIN)
    with pytest.raises(PluginError, match=r"is named 'item-mean-plain', as is .*a\.py.*rename one"):
        parse_spec(f"{b}:ItemMean") if parse_spec(f"{a}:ItemMean") else None
    # in a run, the second is a failed model with that message and the first runs
    plugins._LOADED.clear()
    plugins._BY_NAME.clear()
    first, second = parse_models(f"{a}:ItemMean,{b}:ItemMean")
    assert first.error is None and first.name == "item-mean-plain"
    assert second.error is not None and "rename one" in second.error


# each broken only in what it returns (predict before fit still raises: the quick checks pass)
BROKEN_PREDICT = {
    "shape": "return np.zeros(len(queries) + 1, dtype=np.float32) + self.mean_[0]",
    "nan": "return np.full(len(queries), np.nan) + self.mean_[0]",
    "scale": "return np.full(len(queries), 99.0) + self.mean_[0]",
}


@pytest.mark.parametrize("kind", list(BROKEN_PREDICT))
def test_broken_predictions_fail_that_model_and_the_run_goes_on(tmp_path, kind):
    src = PLAIN.replace(
        "return self.mean_[queries.target_item].astype(np.float32)", BROKEN_PREDICT[kind]
    )
    f = _write(tmp_path, "bad.py", src)
    r = _run(["run", "--models", f"user-mean,bias,{f}:ItemMean", *SYNTH], tmp_path)
    assert r.exit_code == 1, r.output
    doc = _results(tmp_path)
    status = {m["key"]: m["status"] for m in doc["models"]}
    assert status == {"user-mean": "ok", "bias": "ok", "item-mean-plain": "failed"}
    err = next(m["error"] for m in doc["models"] if m["key"] == "item-mean-plain")
    expected = {"shape": "expected (", "nan": "non-finite", "scale": "outside the rating scale"}
    assert "item-mean-plain" in err and expected[kind] in err


def test_the_quick_checks_stop_a_plugin_before_the_run(tmp_path):
    silent = PLAIN.replace(
        "return self.mean_[queries.target_item].astype(np.float32)",
        "return np.full(len(queries), 3.0, dtype=np.float32)",
    )
    f = _write(tmp_path, "silent.py", silent)
    r = _run(["run", "--models", f"user-mean,{f}:ItemMean", *SYNTH], tmp_path)
    assert r.exit_code == 1
    err = next(m["error"] for m in _results(tmp_path)["models"] if m["key"] != "user-mean")
    assert "predict_before_fit" in err and "--check none" in err
    # --check none benchmarks it anyway
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--models",
            f"user-mean,{f}:ItemMean",
            *SYNTH,
            "--check",
            "none",
            "--out",
            str(tmp_path / "unchecked"),
        ],
    )
    assert r.exit_code == 0, r.output


def test_a_plugin_that_cannot_load_fails_alone(tmp_path):
    f = _write(tmp_path, "crash.py", "raise ImportError('needs a GPU library')\n")
    r = _run(["run", "--models", f"user-mean,{f}:Model", *SYNTH], tmp_path)
    assert r.exit_code == 1
    doc = _results(tmp_path)
    by_key = {m["key"]: m for m in doc["models"]}
    assert by_key["user-mean"]["status"] == "ok"
    bad = [m for k, m in by_key.items() if k != "user-mean"]
    assert len(bad) == 1 and bad[0]["status"] == "failed"
    assert "needs a GPU library" in bad[0]["error"] and "crash.py" in bad[0]["error"]


def test_a_plugin_reimplementing_a_built_in_scores_exactly_as_it(tmp_path):
    f = _write(
        tmp_path,
        "same.py",
        """
        from predictors.baselines import UserMean

        class MyUserMean(UserMean):
            name = "my-user-mean"
        """,
    )
    r = _run(["run", "--models", f"user-mean,{f}:MyUserMean", *SYNTH], tmp_path)
    assert r.exit_code == 0, r.output
    doc = _results(tmp_path)
    by = {m["key"]: m for m in doc["models"]}
    assert by["my-user-mean"]["metrics"]["rmse"] == by["user-mean"]["metrics"]["rmse"]
    assert by["my-user-mean"]["vs_reference"]["rmse"]["estimate"] == 0.0


def test_rerun_says_when_the_plugins_code_changed(tmp_path):
    f = _write(tmp_path, "ver.py", PLAIN)
    r = _run(["run", "--models", f"user-mean,{f}:ItemMean", *SYNTH], tmp_path)
    assert r.exit_code == 0, r.output
    (path,) = sorted((tmp_path / "results").glob("*.json"))
    f.write_text(PLAIN.replace("damping=5.0", "damping=4.0"))
    plugins._LOADED.clear()
    plugins._BY_NAME.clear()
    r2 = CliRunner().invoke(main, ["rerun", str(path), "--out", str(tmp_path / "again")])
    assert r2.exit_code == 0, r2.output
    assert "plugin item-mean-plain: its file changed" in r2.output


def test_bench_check_passes_a_good_plugin_and_fails_a_peeking_one(tmp_path):
    good = _write(tmp_path, "good.py", PLAIN)
    r = CliRunner().invoke(main, ["check", f"{good}:ItemMean"])
    assert r.exit_code == 0, r.output
    assert "FAIL" not in r.output and "PASS" in r.output
    peek = _write(
        tmp_path,
        "peek.py",
        PLAIN.replace(
            "return self.mean_[queries.target_item].astype(np.float32)",
            "return (self.mean_[queries.target_item] * 0 + queries.target_time % 5).clip(0.5, 5)"
            ".astype(np.float32)",
        ),
    )
    r = CliRunner().invoke(main, ["check", f"{peek}:ItemMean"])
    assert r.exit_code == 1


def test_bench_list_shows_entry_points(monkeypatch, tmp_path):
    from importlib import metadata

    _write(tmp_path, "epmod.py", PLAIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    ep = metadata.EntryPoint("plain-ep", "epmod:ItemMean", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "_entry_points", lambda: {"plain-ep": ep})
    r = CliRunner().invoke(main, ["list"])
    assert r.exit_code == 0
    row = next(ln for ln in r.output.splitlines() if ln.strip().startswith("plain-ep"))
    assert "entry point" in row
    spec = parse_spec("plain-ep:damping=1")
    assert spec.name == "plain-ep" and spec.source is not None
    assert spec.source.kind == "entry-point"
    assert create(spec).damping == 1
    bad = metadata.EntryPoint("mf", "epmod:ItemMean", plugins.ENTRY_POINT_GROUP)
    monkeypatch.setattr(plugins, "_entry_points", lambda: {"mf": bad, "plain-ep": ep})
    # a built-in name wins; the clashing entry point is refused where it is loaded
    with pytest.raises(PluginError, match="name of a built-in"):
        plugins.load_entry_point("mf", builtins={"mf": None})


def test_api_run_returns_metrics_and_predictions(tmp_path):
    from bench import api

    f = _write(tmp_path, "api_models.py", PLAIN)
    res = api.run(
        ["user-mean", f"{f}:ItemMean"],
        dataset="synthetic",
        users=120,
        resamples=200,
        offline=True,
        out=tmp_path / "r",
    )
    assert res.path.is_file() and res.complete and res.failed == []
    m = res.metrics
    assert set(m["key"]) == {"user-mean", "item-mean-plain"}
    row = m[(m.key == "item-mean-plain") & (m.metric == "rmse")].iloc[0]
    from bench.stats import VERDICTS

    assert row.low <= row.estimate <= row.high and row.verdict in VERDICTS
    assert len(res.predictions) == res.doc["split"]["counts"]["test"]
    truth = res.predictions["truth"].to_numpy()
    pred = res.predictions["pred:item-mean-plain"].to_numpy()
    assert np.isclose(np.sqrt(np.mean((truth - pred) ** 2)), row.estimate, atol=1e-5)
    wide = res.table()
    assert list(wide.columns[:4]) == ["key", "rmse", "rmse_low", "rmse_high"]


def test_api_bad_choice_raises_the_clis_message(tmp_path):
    from bench import api
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="--test-targets must be an integer >= 1"):
        api.make_spec("user-mean", dataset="synthetic", test_targets=0)
    with pytest.raises(ConfigError, match="give either --dataset or --ratings"):
        api.make_spec("user-mean", dataset="synthetic", ratings=tmp_path / "x.csv")


@pytest.fixture(autouse=True)
def _forget_plugins():
    yield
    plugins._LOADED.clear()
    plugins._BY_NAME.clear()
    for name in [n for n in sys.modules if n.startswith("ratingbench_plugin_")]:
        del sys.modules[name]


EMB = """
import numpy as np

def build(catalog, item_ids=None, seed=0):
    ids = catalog.item_id if catalog is not None else item_ids
    rng = np.random.default_rng(seed)
    return ids, rng.normal(size=(len(ids), 8))
"""


def test_embedding_from_a_users_function_is_cached_by_its_code(tmp_path, monkeypatch):
    from bench.data.loading import DataSource, load_source
    from bench.embeddings import build_embeddings

    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path / "cache"))
    # with Python's bytecode cache on, as on most machines: the edit below keeps the file's
    # size and may fall in the same second, which a cached .pyc cannot tell apart
    monkeypatch.setattr(sys, "dont_write_bytecode", False)
    f = _write(tmp_path, "my_emb.py", EMB)
    loaded = load_source(DataSource(dataset="synthetic", users=100, data_seed=1))
    kw = {"catalog": loaded.catalog, "item_ids": loaded.interactions.item_ids}
    a = build_embeddings(f"{f}:build", **kw)
    assert a.name == "my_emb.build" and a.present.all() and a.dim == 8
    files = sorted((tmp_path / "cache" / "embeddings").glob("my_emb.build-*.parquet"))
    assert len(files) == 1
    assert build_embeddings(f"{f}:build", **kw).hash == a.hash  # from the cache
    f.write_text(EMB.replace("size=(len(ids), 8)", "size=(len(ids), 4)"))
    plugins._LOADED.clear()
    b = build_embeddings(f"{f}:build", **kw)  # the code changed: built again
    assert b.dim == 4
    assert len(list((tmp_path / "cache" / "embeddings").glob("my_emb.build-*.parquet"))) == 2


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("return ids, np.zeros((len(ids) + 1, 3))", "one row per movie id"),
        ("return ids, np.full((len(ids), 3), np.nan)", "NaN or inf"),
        ("return [1, 2, 3]", "must return (movie_ids, matrix)"),
        ("raise KeyError('title')", "raised KeyError"),
    ],
)
def test_bad_embedding_functions_get_a_clear_message(tmp_path, monkeypatch, body, message):
    from bench.data.loading import DataSource, load_source
    from bench.embeddings import build_embeddings
    from bench.errors import BenchError

    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path / "cache"))
    f = _write(
        tmp_path,
        "bad_emb.py",
        f"import numpy as np\n\ndef build(catalog):\n    ids = catalog.item_id\n    {body}\n",
    )
    loaded = load_source(DataSource(dataset="synthetic", users=100, data_seed=1))
    with pytest.raises(BenchError) as e:
        build_embeddings(
            f"{f}:build", catalog=loaded.catalog, item_ids=loaded.interactions.item_ids
        )
    assert message in str(e.value) and "bad_emb.py:build" in str(e.value)


def test_a_run_with_an_embedding_function(tmp_path, monkeypatch):
    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path / "cache"))
    f = _write(tmp_path, "run_emb.py", EMB)
    r = _run(["run", "--models", "user-mean,knn", "--embedding", f"{f}:build", *SYNTH], tmp_path)
    assert r.exit_code == 0, r.output
    doc = _results(tmp_path)
    assert doc["embeddings"]["names"] == ["run_emb.build"]
    knn = next(m for m in doc["models"] if m["name"] == "knn")
    assert knn["status"] == "ok" and knn["embedding"] == "run_emb.build"
