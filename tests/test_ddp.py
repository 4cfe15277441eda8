"""Data-parallel training (``--ddp N`` / torchrun, gloo on CPU): two ranks give the
single-process fit with the same global batch, up to float rounding; ``bench run --ddp 2``
writes one results file, the serial run's predictions (the classic models bit for bit, the
torch models to 1e-4), and refuses bad choices before launching.

What matches and to which tolerance (measured on this file's fixtures: 4.8e-7): with dropout
off, every rank draws the same seeded order of targets and takes its contiguous shard of each
global batch, and DDP's gradient average is the global batch's mean gradient, so the weights
follow the single-process run up to the order of float32 sums. We assert test predictions
within 1e-4 rating points, every epoch's validation RMSE within 1e-5 and training loss within
1e-6, the same best epoch and the same number of samples seen. With dropout on, the ranks
draw their own masks, so the runs differ like two seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from tests.conftest import REPO
from tests.helpers import results_of

PRED_TOL = 1e-4  # rating points, test predictions of a data-parallel vs a single-process fit
VAL_TOL = 1e-5  # validation RMSE per epoch
LOSS_TOL = 1e-6  # training loss (MSE in [0, 1] units) per epoch


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(k, None)
    return env


def _torchrun(n: int, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1"]
    cmd += [f"--nproc-per-node={n}", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize(
    ("model", "batch"),
    [("attention", 64), ("transformer", 64), ("attention", 63)],  # 63: a padded shard
)
def test_two_ranks_match_one_process(tmp_path: Path, model: str, batch: int) -> None:
    script = str(REPO / "tests" / "ddp_fit.py")
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    single = subprocess.run(
        [sys.executable, script, model, str(one), str(batch)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    ddp = _torchrun(2, script, model, str(two), str(batch))
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    a, b = np.load(one), np.load(two)
    assert a["pred"].shape == b["pred"].shape and a["pred"].size > 100
    assert np.max(np.abs(a["pred"] - b["pred"])) <= PRED_TOL
    assert np.max(np.abs(a["val_rmse"] - b["val_rmse"])) <= VAL_TOL
    assert np.max(np.abs(a["train_loss"] - b["train_loss"])) <= LOSS_TOL
    assert int(a["best_epoch"]) == int(b["best_epoch"])
    assert int(a["samples"]) == int(b["samples"])  # every target once per epoch, over the ranks
    # the fit changed the model: a match of two untrained models would prove nothing
    assert a["train_loss"][-1] < a["train_loss"][0]


SYNTH = ["--dataset", "synthetic", "--users", "300", "--resamples", "200", "--offline"]
MODELS = "user-mean,bias,attention:dropout=0:epochs=2:hidden=16"


def test_bench_run_ddp_matches_serial(tmp_path: Path) -> None:
    ddp_out, ser_out = tmp_path / "ddp", tmp_path / "serial"
    cmd = [sys.executable, "-m", "bench.cli", "run", *SYNTH, "--models", MODELS]
    ran = subprocess.run(
        [*cmd, "--ddp", "2", "--out", str(ddp_out)],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert "data-parallel: 2 ranks" in ran.stderr
    serial = CliRunner().invoke(
        main, ["run", *SYNTH, "--models", MODELS, "--torch-threads", "1", "--out", str(ser_out)]
    )
    assert serial.exit_code == 0, serial.output
    doc, side = results_of(ddp_out)  # exactly one results file: rank 1 wrote nothing
    _, side0 = results_of(ser_out)
    assert doc["status"] == "complete"
    ex = doc["executor"]
    assert (ex["name"], ex["world_size"], ex["backend"]) == ("ddp", 2, "gloo")
    key = "attention:dropout=0:epochs=2:hidden=16"
    assert ex["jobs"][key]["worker"].startswith("2 ranks")
    assert ex["jobs"]["bias"]["worker"].startswith("rank 0")
    rec = next(m for m in doc["models"] if m["run_key"]["model"] == key)
    assert rec["fit_info"]["distributed"]["world_size"] == 2
    for m in ("user-mean", "bias"):  # fitted by rank 0 alone: the serial run's, bit for bit
        assert np.array_equal(side[f"pred:{m}"], side0[f"pred:{m}"])
    diff = np.abs(side[f"pred:{key}"].to_numpy() - side0[f"pred:{key}"].to_numpy())
    assert diff.max() <= PRED_TOL
    assert np.array_equal(side[f"fallback:{key}"], side0[f"fallback:{key}"])


FAILS = """
class Fails:
    name = "fails"

    def get_config(self):
        return {}

    def fit(self, train):
        raise RuntimeError("this model always fails")

    def predict(self, queries):
        raise AssertionError("never called")
"""


def test_ddp_run_with_a_failed_model_exits_1_and_keeps_the_others(tmp_path: Path) -> None:
    plugin = tmp_path / "fails.py"
    plugin.write_text(FAILS)
    out = tmp_path / "out"
    ran = subprocess.run(
        [
            *(sys.executable, "-m", "bench.cli", "run", *SYNTH, "--ddp", "2", "--check", "none"),
            *("--models", f"user-mean,{plugin}:Fails,attention:epochs=1:hidden=8"),
            *("--out", str(out)),
        ],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 1, ran.stderr[-3000:]
    assert "ChildFailedError" not in ran.stderr  # rank 0 handed its status back cleanly
    doc, _ = results_of(out)
    status = {m["run_key"]["model"]: m["status"] for m in doc["models"]}
    assert status["fails"] == "failed"
    assert status["attention:epochs=1:hidden=8"] == "ok"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ddp", "0"], "--ddp must be an integer >= 1"),
        (["--ddp", "2", "--jobs", "2"], "--jobs 2 with --ddp"),
        (["--ddp", "2", "--executor", "processes"], "--executor processes with --ddp"),
        (["--executor", "ddp"], "runs on the ranks of a torchrun job"),
        (["--ddp", "2"], "--ddp launches torchrun from the command line"),  # not from Python
    ],
)
def test_bad_ddp_choices_fail_before_anything_runs(
    tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "out"
    res = CliRunner().invoke(
        main, ["run", *SYNTH, "--models", "user-mean", *args, "--out", str(out)]
    )
    assert res.exit_code == 2, res.output
    assert message in " ".join(res.output.split())
    assert not out.exists() or not any(out.iterdir())
