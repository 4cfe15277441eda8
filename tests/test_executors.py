"""Executors: the same predictions (bit for bit for the NumPy models, within 8 float32 ulps
for the torch model) whether the jobs run one after another, in worker processes or as Ray
tasks; a killed worker's job retried once; bad choices refused before anything is written; an
interrupted parallel run resumed (real processes)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from tests.conftest import REPO
from tests.helpers import needs_ray, results_of

SYNTH = ["--dataset", "synthetic", "--users", "100", "--resamples", "200", "--offline"]
# a seeded classic, a torch model on few epochs, two seeds: six jobs
MODELS = "user-mean,bias,mf,attention:epochs=1"


# fit() SIGKILLs its own process: the first time only (a marker file), or every time
DIES = """
import os, signal
from pathlib import Path
import numpy as np

class Dies:
    name = "dies"

    def __init__(self, mode="once"):
        self.mode = mode

    def get_config(self):
        return {"mode": self.mode}

    def fit(self, train):
        marker = Path(__file__).with_name(f"died-{self.mode}")
        if self.mode == "always" or not marker.exists():
            marker.touch()
            os.kill(os.getpid(), signal.SIGKILL)
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        return self

    def predict(self, queries):
        return np.full(len(queries), self.mu_, dtype=np.float32)
"""

# fit() waits while a marker file exists: the job that is running when the run is interrupted
BLOCKS = """
import time
import warnings
from pathlib import Path
import numpy as np

class Blocks:
    name = "blocks"

    def get_config(self):
        return {}

    def fit(self, train):
        marker = Path(__file__).with_name("block")
        t0 = time.time()
        while marker.exists() and time.time() - t0 < 300:
            time.sleep(0.1)
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        return self

    def predict(self, queries):
        return np.full(len(queries), self.mu_, dtype=np.float32)
"""

# reports the torch intra-op threads it ran with
THREADS = """
import numpy as np
import torch
from predictors.base import BasePredictor
from predictors.contract import FitReport

class Threads(BasePredictor):
    name = "threads"

    def get_config(self):
        return {}

    def _fit(self, train):
        self.mu_ = float(np.mean(train.events.rating, dtype=np.float64))
        return FitReport(settings={"torch_threads": torch.get_num_threads()})

    def _predict(self, batch):
        return np.full(len(batch), self.mu_), np.zeros(len(batch), dtype=bool)
"""


def _run(out: Path, *args: str):
    return CliRunner().invoke(main, ["run", *SYNTH, *args, "--out", str(out)])


def _plugin(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    out = tmp_path_factory.mktemp("serial")
    r = _run(out, "--models", MODELS, "--seeds", "0,1")
    assert r.exit_code == 0, r.output
    return results_of(out)


def _same_predictions(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns)
    preds = [c for c in a.columns if c.startswith(("pred:", "fallback:"))]
    assert len(preds) == 2 * 6  # six jobs: user-mean, bias, mf and attention on two seeds
    for c in a.columns:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        if c.startswith("pred:attention"):
            # the same fit, float32 kernels: within 8 ulps query by query (the same bytes on
            # most CPUs; a float32 kernel is not bound to round alike in another process)
            np.testing.assert_array_max_ulp(x, y, maxulp=8)
            if x.tobytes() != y.tobytes():  # allowed, and worth seeing in the log
                ulps = np.abs(x.view(np.int32).astype(np.int64) - y.view(np.int32))
                warnings.warn(
                    f"{c}: {int((ulps > 0).sum())} of {ulps.size} predictions differ from the "
                    f"serial run's, by at most {int(ulps.max())} ulp(s)",
                    stacklevel=2,
                )
        else:  # the NumPy models and every fallback flag: exactly equal, query by query
            assert x.tobytes() == y.tobytes(), c


def _untimed(info: dict) -> dict:
    return {k: v for k, v in info.items() if k != "timings" and not k.endswith("seconds")}


@pytest.mark.parametrize("executor", ["processes", pytest.param("ray", marks=needs_ray)])
def test_every_executor_gives_the_serial_predictions(serial, executor, tmp_path, request):
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    args = ["--jobs", "2"] if executor == "processes" else ["--executor", "ray"]
    r = _run(tmp_path, "--models", MODELS, "--seeds", "0,1", *args)
    assert r.exit_code == 0, r.output
    doc, side = results_of(tmp_path)
    _same_predictions(serial[1], side)
    assert doc["executor"]["name"] == executor and serial[0]["executor"]["name"] == "serial"
    # the metrics (one resampling, the same predictions) agree too; only timings differ
    for m, s in zip(doc["models"], serial[0]["models"], strict=True):
        assert m["key"] == s["key"] and m["metrics"] == s["metrics"]
        assert m["config"] == s["config"] and m["val_rmse"] == s["val_rmse"]
        assert _untimed(m["fit_info"]) == _untimed(s["fit_info"])
    assert set(doc["executor"]["jobs"]) == {m["key"] for m in doc["models"]}
    workers = {j["worker"] for j in doc["executor"]["jobs"].values()}
    assert len(workers) == 2 and "driver" not in workers


@pytest.mark.parametrize("executor", ["serial", "processes", pytest.param("ray", marks=needs_ray)])
def test_every_job_runs_on_the_drivers_torch_threads(executor, tmp_path, request):
    import torch

    if executor == "ray":
        request.getfixturevalue("ray_instance")
    plugin = _plugin(tmp_path, "threads.py", THREADS)
    args = {"serial": [], "processes": ["--jobs", "2"], "ray": ["--executor", "ray"]}[executor]
    r = _run(tmp_path / "o", "--models", f"user-mean,{plugin}:Threads", *args)
    assert r.exit_code == 0, r.output
    doc, _ = results_of(tmp_path / "o")
    want = torch.get_num_threads()
    assert doc["executor"]["torch_threads"] == want
    (rec,) = [m for m in doc["models"] if m["name"] == "threads"]
    assert rec["fit_info"]["torch_threads"] == want
    # and --torch-threads sets them everywhere
    r = _run(tmp_path / "t1", "--models", f"{plugin}:Threads", "--torch-threads", "1", *args)
    assert r.exit_code == 0, r.output
    doc, _ = results_of(tmp_path / "t1")
    (rec,) = [m for m in doc["models"] if m["name"] == "threads"]
    assert rec["fit_info"]["torch_threads"] == 1 == doc["executor"]["torch_threads"]


@pytest.mark.parametrize("executor", ["processes", pytest.param("ray", marks=needs_ray)])
def test_a_killed_worker_is_retried_once_then_its_job_fails(executor, tmp_path, request):
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    plugin = _plugin(tmp_path, "dies.py", DIES)
    args = ["--jobs", "2"] if executor == "processes" else ["--executor", "ray"]
    models = f"user-mean,bias,{plugin}:Dies,{plugin}:Dies:mode=always"
    r = _run(tmp_path / "o", "--models", models, *args)
    assert r.exit_code == 1, r.output  # one job failed
    doc, side = results_of(tmp_path / "o")
    status = {m["name"] + ":" + str(m["options"]): m for m in doc["models"]}
    assert status["dies:{}"]["status"] == "ok"  # killed once, retried on a fresh worker
    always = status["dies:{'mode': 'always'}"]
    assert always["status"] == "failed" and "WorkerDied" in always["error"]
    assert "on each of 2 attempt(s)" in always["error"]
    assert status["user-mean:{}"]["status"] == "ok" and status["bias:{}"]["status"] == "ok"
    assert (tmp_path / "died-once").exists() and doc["status"] == "complete"
    once_key = status["dies:{}"]["key"]
    if executor == "processes":
        assert "SIGKILL" in always["error"]
        assert doc["executor"]["jobs"][once_key]["attempts"] == 2
    assert f"pred:{once_key}" in side.columns


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--jobs", "0"], "--jobs must be an integer >= 1, got 0"),
        (["--jobs", "-3"], "--jobs must be an integer >= 1, got -3"),
        (["--executor", "nonsense"], "--executor must be one of serial, processes, ray"),
        (["--ray-address", "127.0.0.1:6379"], "--ray-address 127.0.0.1:6379 needs --executor ray"),
        (["--jobs", "2", "--executor", "serial"], "--jobs 2 needs worker processes"),
        (["--torch-threads", "0"], "--torch-threads must be an integer >= 1, got 0"),
    ],
)
def test_bad_executor_choices_are_one_line_errors(args, message, tmp_path):
    r = _run(tmp_path / "o", "--models", "user-mean", *args)
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()


def test_ray_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    r = _run(tmp_path / "o", "--models", "user-mean", "--executor", "ray")
    assert r.exit_code == 2
    text = " ".join(r.output.split())
    assert "ray is not installed" in text and "pip install 'ratingbench[ray]'" in text
    assert not (tmp_path / "o").exists()


@needs_ray
def test_an_unreachable_ray_address_fails_fast_naming_it(tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"127.0.0.1:{port}"
    t0 = time.monotonic()
    r = _run(tmp_path / "o", "--models", "user-mean", "--executor", "ray", "--ray-address", address)
    assert time.monotonic() - t0 < 30
    assert r.exit_code == 2 and f"--ray-address {address}" in " ".join(r.output.split())
    assert not (tmp_path / "o").exists()


def test_the_base_install_and_the_serial_and_process_executors_never_import_ray(tmp_path):
    code = textwrap.dedent(
        f"""
        import sys
        import bench.cli, bench.runner, bench.executors, bench.api
        assert "ray" not in sys.modules, "imported at start"
        from bench import api
        for jobs in (1, 2):
            api.run("user-mean,bias", dataset="synthetic", users=60, resamples=200,
                    out={str(tmp_path)!r} + f"/{{jobs}}", jobs=jobs)
            assert "ray" not in sys.modules, f"imported by jobs={{jobs}}"
        print("no ray")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=REPO, capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert "no ray" in r.stdout


def test_an_interrupted_parallel_run_keeps_its_finished_jobs_and_resumes(tmp_path, serial):
    plugin = _plugin(tmp_path, "blocks.py", BLOCKS)
    (tmp_path / "block").touch()
    out = tmp_path / "o"
    models = f"{MODELS},{plugin}:Blocks"
    argv = ["run", *SYNTH, "--models", models, "--seeds", "0,1", "--jobs", "2", "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Ctrl-C as a user's terminal sends it: a process started from a background job (as a
    # test runner may be) inherits SIGINT ignored or blocked, and would rightly ignore it
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
        "from bench.cli import main; sys.argv[0] = 'bench'; main()"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv], env=env, cwd=REPO, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until every job but the blocked one is done
            docs = list(out.glob("*.json"))
            if docs:
                with_status = json.loads(docs[0].read_text())["models"]
                if sum(m["status"] == "ok" for m in with_status) == 6:
                    break
            time.sleep(0.3)
        else:
            pytest.fail("the six other jobs did not finish")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err.decode()[-2000:]
    (path,) = out.glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["status"] == "incomplete"
    status = {m["key"]: m["status"] for m in doc["models"]}
    assert status[next(m["key"] for m in doc["models"] if m["name"] == "blocks")] == "not run"
    assert sum(s == "ok" for s in status.values()) == 6  # user-mean/bias/mf/attention on 2

    (tmp_path / "block").unlink()
    r = CliRunner().invoke(main, ["run", "--resume", str(path), "--jobs", "2"])
    assert r.exit_code == 0, r.output
    doc, side = results_of(out)
    assert doc["status"] == "complete" and all(m["status"] == "ok" for m in doc["models"])
    blocks = next(m["key"] for m in doc["models"] if m["name"] == "blocks")
    _same_predictions(serial[1], side.drop(columns=[f"pred:{blocks}", f"fallback:{blocks}"]))


def test_ctrl_c_while_the_driver_waits_is_taken_at_a_safe_point():
    from bench.executors import DeferredInterrupt

    # as in a foreground process (a test runner started in the background inherits SIGINT
    # ignored or blocked): Python's own handler, SIGINT deliverable
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    try:
        d = DeferredInterrupt()
        d.install()
        try:
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C only sets the flag
            time.sleep(0.05)
            assert d.requested.is_set()
            with pytest.raises(KeyboardInterrupt):
                d.check()  # ... which the driver's wait loop turns into KeyboardInterrupt
            with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C interrupts at once
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
        finally:
            d.restore()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        # a process that ignores SIGINT keeps ignoring it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        d = DeferredInterrupt()
        d.install()
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.05)
        assert not d.requested.is_set() and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        d.restore()
    finally:
        signal.signal(signal.SIGINT, outer)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
