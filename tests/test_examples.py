"""The example models run through the plugin path, as a researcher would run them."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from bench.cli import main
from predictors.testing import CHECKS
from tests.conftest import REPO

NUMPY = f"{REPO / 'examples' / 'decayed_bias.py'}:DecayedBias"
TORCH = f"{REPO / 'examples' / 'gru_rec.py'}:GRURec"


def test_examples_pass_bench_check():
    r = CliRunner().invoke(main, ["check", NUMPY, f"{TORCH}:epochs=1:hidden=16"])
    assert r.exit_code == 0, r.output
    assert r.output.count("PASS") == 2 * len(CHECKS) and "FAIL" not in r.output


def test_examples_run_next_to_the_built_ins(tmp_path: Path):
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--models",
            f"user-mean,{NUMPY}:half_life_days=60,{TORCH}:epochs=2:hidden=16",
            "--dataset",
            "synthetic",
            "--users",
            "150",
            "--resamples",
            "200",
            "--offline",
            "--check",
            "full",
            "--out",
            str(tmp_path),
        ],
    )
    assert r.exit_code == 0, r.output
    (path,) = tmp_path.glob("*.json")
    doc = json.loads(path.read_text())
    by = {m["name"]: m for m in doc["models"]}
    assert set(by) == {"user-mean", "decayed-bias", "gru-rec"}
    for name in ("decayed-bias", "gru-rec"):
        assert by[name]["status"] == "ok", by[name]["error"]
        assert by[name]["source"]["kind"] == "file" and by[name]["source"]["sha256"]
        assert by[name]["vs_reference"]["rmse"]["verdict"]
    assert by["gru-rec"]["learning_curve"] and len(by["gru-rec"]["learning_curve"]) == 2
    assert by["gru-rec"]["embedding"] == "synthetic"


def test_examples_import_from_predictors_api_only():
    """What a model author needs comes from one module: the examples import nothing else of
    ``predictors`` (and nothing of ``bench``)."""
    import ast

    for example in ("decayed_bias.py", "gru_rec.py"):
        tree = ast.parse((REPO / "examples" / example).read_text())
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        ours = {m for m in modules if m.split(".")[0] in ("predictors", "bench")}
        assert ours <= {"predictors.api"}, (example, ours)
