"""Files that a reader opens are data, never instructions: a checkpoint's code identity is
checked without importing the modules it names, a results file's sidecar must sit beside it,
and a truncated archive or a wrong type under a valid schema tag is one line naming the file
and the field, in every command that reads it. Also: fallbacks a plain class does not report
read "not reported", never 0."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from rich.console import Console

from bench import api, runner
from bench.checkpoints import checkpoint_dir
from bench.cli import main
from bench.errors import ResultsError
from bench.results import read_results, resume_results
from bench.runkey import RunKey
from tests.helpers import edit_json, refused

QUIET = Console(stderr=True, quiet=True)

PLAIN = """
import numpy as np


class Plain:
    name = "plain"

    def get_config(self):
        return {}

    def fit(self, train):
        self.mean_ = float(np.mean(train.events.rating))
        return self

    def predict(self, queries):
        return np.full(len(queries), self.mean_, dtype=np.float32)
"""


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run of two built-ins and a plain-class plugin, every model saved."""
    folder = tmp_path_factory.mktemp("untrusted")
    plugin = folder / "plain_model.py"
    plugin.write_text(PLAIN)
    spec = api.make_spec(
        ["bias", "user-mean", f"{plugin}:Plain"],
        dataset="synthetic",
        users=80,
        out=folder / "out",
        resamples=100,
        save_models=True,
    )
    return runner.execute(spec, QUIET).path


@pytest.fixture
def copy(saved: Path, tmp_path: Path) -> Path:
    """A copy of the run (results, sidecar, models) that a test may damage."""
    for p in saved.parent.iterdir():
        if p.name.startswith(saved.stem):
            (shutil.copytree if p.is_dir() else shutil.copy2)(p, tmp_path / p.name)
    return tmp_path / saved.name


def _cli(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def _one_line_error(res, *expected: str) -> None:
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    text = " ".join(res.output.split())
    assert res.output.startswith("error: ") and "Traceback" not in res.output, res.output
    for e in expected:
        assert e in text, res.output


# -- checkpoints: nothing imported because checkpoint.json names it -------------------------
def test_a_module_in_the_code_identity_is_never_imported(copy: Path, monkeypatch):
    meta = checkpoint_dir(copy, RunKey("bias")) / "checkpoint.json"
    monkeypatch.delitem(sys.modules, "this", raising=False)
    edit_json(meta, ("code", "files", "this"), None)
    msg = refused(copy, "bias")
    assert "code changed" in msg and "this is neither a module of Bias" in msg
    assert "this" not in sys.modules


def test_a_module_on_the_path_is_not_imported_by_predict(copy: Path, tmp_path: Path, monkeypatch):
    probe = tmp_path / "probe_dir"
    probe.mkdir()
    marker = tmp_path / "imported"
    (probe / "untrusted_probe.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    monkeypatch.syspath_prepend(str(probe))
    meta = checkpoint_dir(copy, RunKey("bias")) / "checkpoint.json"
    edit_json(meta, ("code", "files", "untrusted_probe"), "0" * 64)
    res = _cli("predict", copy, "--model", "bias", "--user", 1, "--movie", 1)
    _one_line_error(res, "code changed", "untrusted_probe")
    assert not marker.exists() and "untrusted_probe" not in sys.modules


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("code",), "x", "'code' must be an object"),
        (("code", "files"), [1], "'code.files' must be an object"),
        (("code", "files", "predictors.baselines"), 5, "'code.files.predictors.baselines'"),
        (("code", "files", "../../etc/passwd"), None, "is not a module name"),
        (("code", "version"), 3, "'code.version' must be a string"),
        (("dataset",), [], "'dataset' must be a dict"),
        (("key",), "bias", "'key' must be a dict"),
        (("run_id",), 7, "'run_id' must be a str"),
        (("class",), ["x"], "'class' must be a string"),
    ],
)
def test_wrong_types_in_checkpoint_json_are_one_line(copy: Path, where, value, expected):
    edit_json(checkpoint_dir(copy, RunKey("bias")) / "checkpoint.json", where, value)
    msg = refused(copy, "bias")
    assert "checkpoint.json" in msg and expected in msg, msg


def test_refusing_another_class_names_both_classes(copy: Path):
    folder = checkpoint_dir(copy, RunKey("bias"))
    edit_json(folder / "checkpoint.json", ("class",), "predictors.baselines:UserMean")
    msg = refused(copy, "bias")
    assert "checkpoint.json: the checkpoint holds a predictors.baselines:UserMean, not a " in msg
    assert msg.count("predictors.baselines:Bias") == 1


@pytest.mark.parametrize("cut", [0.5, 0.9])
def test_a_truncated_arrays_npz_is_one_line(copy: Path, cut: float):
    npz = checkpoint_dir(copy, RunKey("bias")) / "arrays.npz"
    data = npz.read_bytes()
    npz.write_bytes(data[: int(len(data) * cut)])
    msg = refused(copy, "bias")
    assert "arrays.npz: unreadable, truncated or corrupt" in msg
    res = _cli("predict", copy, "--model", "bias", "--user", 1, "--movie", 1)
    _one_line_error(res, "arrays.npz")


def test_a_corrupt_arrays_npz_member_is_one_line(copy: Path):
    npz = checkpoint_dir(copy, RunKey("bias")) / "arrays.npz"
    data = bytearray(npz.read_bytes())
    for i in range(200, min(len(data) - 200, 400)):  # inside the first member's data
        data[i] ^= 0xFF
    npz.write_bytes(bytes(data))
    assert "arrays.npz" in refused(copy, "bias")


@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("arrays", "a0"), 3, "'arrays.a0' must be an object"),
        (("model", "state", "predict"), 1.0, "names the attribute 'predict'"),
        (("model", "unsaved"), 4, "'unsaved' is not a list"),
        (("model", "unsaved"), ["__class__"], "names the attribute '__class__'"),
    ],
)
def test_wrong_types_in_state_json_are_one_line(copy: Path, where, value, expected):
    edit_json(checkpoint_dir(copy, RunKey("bias")) / "state.json", where, value)
    assert expected in refused(copy, "bias")


# -- results: the sidecar is a plain name beside the file -----------------------------------
BAD_SIDECARS = ["/etc/passwd", "../x.predictions.parquet", "sub/x.parquet", "..", "", 5, "a\\b"]


@pytest.mark.parametrize("name", BAD_SIDECARS)
def test_a_sidecar_that_is_not_a_plain_name_is_refused(copy: Path, name):
    edit_json(copy, ("predictions_file",), name)
    with pytest.raises(ResultsError) as e:
        read_results(copy)
    want = "a string or null" if name == 5 else "a plain file name beside the results file"
    assert f"'predictions_file' must be {want}" in str(e.value)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(
    "command",
    [
        ["compare", "{f}"],
        ["compare", "{f}", "{f}"],
        ["report", "{f}"],
        ["rerun", "{f}"],
        ["run", "--resume", "{f}"],
        ["predict", "{f}", "--model", "bias", "--user", "1", "--movie", "1"],
    ],
)
def test_every_command_refuses_a_sidecar_outside(copy: Path, command):
    edit_json(copy, ("predictions_file",), "../" + copy.with_suffix(".predictions.parquet").name)
    res = _cli(*(a.format(f=copy) for a in command))
    _one_line_error(res, "'predictions_file' must be a plain file name")


def test_resume_refuses_a_sidecar_outside(copy: Path):
    edit_json(copy, ("predictions_file",), "/tmp/x.parquet")
    doc = json.loads(copy.read_text())
    with pytest.raises(ResultsError, match="'predictions_file' must be a plain file name"):
        resume_results(
            copy,
            dataset_hash=doc["dataset"]["hash"],
            split_hash=doc["split"]["hash"],
            queries=None,  # type: ignore[arg-type]
        )


def test_a_broken_parquet_sidecar_is_one_line(copy: Path):
    side = copy.with_name(json.loads(copy.read_text())["predictions_file"])
    side.write_bytes(side.read_bytes()[:100])
    with pytest.raises(ResultsError, match="predictions sidecar is unreadable"):
        read_results(copy)
    _one_line_error(_cli("compare", copy, copy), "predictions sidecar is unreadable")


def test_a_sidecar_column_of_the_wrong_type_is_one_line(copy: Path):
    side = copy.with_name(json.loads(copy.read_text())["predictions_file"])
    table = pq.read_table(side)
    i = table.schema.get_field_index("pred:bias")
    col = pa.array([str(x) for x in table.column(i).to_pylist()])
    table = table.set_column(i, "pred:bias", col)
    pq.write_table(table, side)
    with pytest.raises(ResultsError, match="column 'pred:bias' must be numeric, got string"):
        read_results(copy)


# -- results: wrong types under a valid schema tag ------------------------------------------
@pytest.mark.parametrize(
    ("where", "value", "expected"),
    [
        (("models",), {"a": 1}, "'models' must be an array, got an object"),
        (("models", 0), 1, "'models[0]' must be an object (a model record), got an integer"),
        (("models", 0), {}, "'models[0]' has no 'key'"),
        (("models", 0, "key"), 5, "'models[0].key' must be a string, got an integer"),
        (("models", 0, "status"), None, "'models[0].status' must be a string, got null"),
        (("models", 0, "metrics", "rmse"), "x", "'models[0].metrics.rmse' must be an object"),
        (
            ("models", 0, "metrics", "rmse", "estimate"),
            "0.9",
            "'models[0].metrics.rmse.estimate' must be a number or null, got a string",
        ),
        (("models", 0, "n_fallback"), True, "'models[0].n_fallback' must be an integer"),
        (("models", 0, "timings"), [], "'models[0].timings' must be an object or null"),
        (("dataset",), [], "'dataset' must be an object, got an array"),
        (("split", "counts", "test"), "5", "'split.counts.test' must be an integer or null"),
        (("statistics", "reference"), 1, "'statistics.reference' must be a string or null"),
    ],
)
def test_wrong_types_in_a_results_file_are_one_line(copy: Path, where, value, expected):
    edit_json(copy, where, value)
    with pytest.raises(ResultsError) as e:
        read_results(copy)
    msg = str(e.value)
    assert msg.startswith(str(copy)) and expected in msg and "\n" not in msg, msg
    _one_line_error(_cli("compare", copy), expected)
    _one_line_error(_cli("report", copy, "--out", copy.parent / "rep"), expected)


# -- fallbacks a model does not report ------------------------------------------------------
def test_a_plain_class_reports_no_fallbacks(saved: Path):
    doc = read_results(saved)
    plain = doc.model("plain")
    bias = doc.model("bias")
    assert plain is not None and bias is not None
    assert plain.record["fallback_reported"] is False and plain.record["n_fallback"] is None
    assert not plain.fallback_reported and plain.n_fallback is None
    assert "fallback_reported" not in bias.record and bias.fallback_reported
    assert isinstance(bias.n_fallback, int)
    assert doc.predictions is not None and "fallback:plain" in doc.predictions.columns
    assert plain.fallback is not None and not plain.fallback.any()


def test_compare_says_fallbacks_are_not_reported(saved: Path):
    from rich.console import Console

    from bench.compare import build_comparison, render_markdown
    from bench.tables import print_comparison

    comparison = build_comparison([saved])
    text = render_markdown(comparison)
    (row,) = [line for line in text.splitlines() if line.startswith("| plain")]
    assert row.rstrip(" |").split("|")[-2].strip() == "not reported"
    console = Console(width=200, record=True, emoji=False)
    print_comparison(console, comparison)
    (line,) = [x for x in console.export_text().splitlines() if x.lstrip().startswith("plain")]
    assert "not reported" in line


def test_an_older_file_without_the_flag_reads_its_count(copy: Path):
    doc = json.loads(copy.read_text())
    for m in doc["models"]:
        m.pop("fallback_reported", None)
        m["n_fallback"] = 0
    copy.write_text(json.dumps(doc))
    assert read_results(copy).model("plain").n_fallback == 0  # type: ignore[union-attr]


def test_a_class_named_by_the_state_is_not_imported(copy: Path, monkeypatch):
    monkeypatch.delitem(sys.modules, "predictors.device", raising=False)
    where = ("model", "state", "scale_", "class")
    edit_json(checkpoint_dir(copy, RunKey("bias")) / "state.json", where, "predictors.device:X")
    assert "whose module the model's code has not loaded" in refused(copy, "bias")
    assert "predictors.device" not in sys.modules
