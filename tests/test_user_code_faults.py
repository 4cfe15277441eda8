"""User code that misbehaves fails itself, never the run nor another model: anything a model
raises (``SystemExit``, ``GeneratorExit``, its own ``KeyboardInterrupt``, ``os._exit``) is
recorded on that model under every executor and the run exits 1; a worker that ends with its
own exit code fails its job without a retry; every array a model is handed is read-only, and a
write names the array and the model's line; no process outlives a driver killed with SIGKILL."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from bench.cli import main
from tests.conftest import REPO, synthetic_world
from tests.helpers import needs_ray, results_of

SYNTH = ["--dataset", "synthetic", "--users", "100", "--resamples", "100", "--offline"]
SYNTH += ["--check", "none"]

EXECUTORS = {
    "serial": [],
    "processes": ["--jobs", "2"],
    "ray": ["--executor", "ray", "--jobs", "2"],
}
ALL = ["serial", "processes", pytest.param("ray", marks=needs_ray)]

MISBEHAVES = """
import ctypes, os, sys
import numpy as np
from predictors.api import Capabilities

class Mine(BaseException):
    pass

class Raises:
    name = "raises"

    def __init__(self, how="sys"):
        self.how = how

    def get_config(self):
        return {"how": self.how}

    def fit(self, train):
        if self.how == "sys":
            sys.exit(0)
        if self.how == "gen":
            raise GeneratorExit
        if self.how == "kbd":
            raise KeyboardInterrupt
        if self.how == "mine":
            raise Mine("of my own")
        if self.how == "os":
            os._exit(0)
        if self.how == "libc":  # past every Python hook: the process ends with code 3
            ctypes.CDLL(None)._exit(3)
        return self

    def predict(self, queries):
        return np.full(len(queries), 3.0, dtype=np.float32)

class Centres:
    name = "centres"

    def __init__(self, where="fit"):
        self.where = where

    def get_config(self):
        return {"where": self.where}

    def fit(self, train):
        if self.where == "fit":
            r = train.events.rating
            r -= r.mean()
        if self.where == "embeddings":
            train.embeddings.vectors[:] = 0
        if self.where == "val":
            train.val.batch.hist_rating[0] = 0
        self.mu_ = 3.0
        return self

    def predict(self, queries):
        queries.hist_rating[:] = 0
        return np.full(len(queries), self.mu_, dtype=np.float32)

class CentresEmbeddings(Centres):
    name = "centres-embeddings"
    capabilities = Capabilities(embeddings=True)
"""


@pytest.fixture(scope="module")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("plugin") / "misbehaves.py"
    path.write_text(textwrap.dedent(MISBEHAVES))
    return path


def _run(out: Path, executor: str, request: pytest.FixtureRequest, *args: str):
    if executor == "ray":
        request.getfixturevalue("ray_instance")
    argv = ["run", *SYNTH, *EXECUTORS[executor], *args, "--out", str(out)]
    return CliRunner().invoke(main, argv)


@pytest.mark.parametrize("executor", ALL)
def test_anything_a_model_raises_fails_that_model_and_the_run_goes_on(
    executor, plugin, tmp_path, request
):
    hows = ["sys", "gen", "kbd", "mine", "os"]
    models = ",".join([f"{plugin}:Raises:how={h}" for h in hows] + ["bias"])
    r = _run(tmp_path / "o", executor, request, "--models", models)
    assert r.exit_code == 1, r.output  # models failed: never 0
    doc, side = results_of(tmp_path / "o")
    assert doc["status"] == "complete"
    by_key = {m["key"]: m for m in doc["models"]}
    assert by_key["bias"]["status"] == "ok" and "pred:bias" in side.columns
    errors = {h: by_key[f"raises:how={h}"]["error"] for h in hows}
    assert all(by_key[f"raises:how={h}"]["status"] == "failed" for h in hows)
    assert (
        errors["sys"] == "SystemExit: the model called sys.exit(0), which would have ended the run"
    )
    assert errors["gen"] == "GeneratorExit raised by the model"
    assert errors["kbd"] == "KeyboardInterrupt raised by the model"
    assert errors["mine"] == "Mine: of my own"
    assert errors["os"].startswith("ModelExit: the model called os._exit(0)")
    assert "misbehaves.py" in by_key["raises:how=mine"]["traceback"]
    assert "failed raises:how=sys: SystemExit" in " ".join(r.output.split())


def test_a_worker_that_ends_itself_fails_its_job_without_a_retry(plugin, tmp_path, request):
    models = f"user-mean,{plugin}:Raises:how=libc,bias"
    r = _run(tmp_path / "o", "processes", request, "--models", models)
    assert r.exit_code == 1, r.output
    doc, _ = results_of(tmp_path / "o")
    by_key = {m["key"]: m for m in doc["models"]}
    rec = by_key["raises:how=libc"]
    assert rec["status"] == "failed"
    assert rec["error"].startswith("WorkerExited: the worker running this job ended itself")
    assert "exit code 3" in rec["error"] and "not retried" in rec["error"]
    assert doc["executor"]["jobs"]["raises:how=libc"]["attempts"] == 1
    assert by_key["bias"]["status"] == "ok" and by_key["user-mean"]["status"] == "ok"


def test_a_failed_os_exit_under_serial_is_resumed(plugin, tmp_path, request):
    r = _run(tmp_path / "o", "serial", request, "--models", f"bias,{plugin}:Raises:how=os")
    assert r.exit_code == 1, r.output
    (path,) = (tmp_path / "o").glob("*.json")
    r = CliRunner().invoke(main, ["run", "--resume", str(path)])
    assert "2 of 3 model runs finished" in " ".join(r.output.split()), r.output
    assert r.exit_code == 1, r.output  # it fails again, the file stays whole
    doc = json.loads(path.read_text())
    assert doc["status"] == "complete"
    assert [m["status"] for m in doc["models"]] == ["ok", "ok", "failed"]  # user-mean first


@pytest.mark.parametrize("executor", ALL)
def test_a_model_writing_into_the_ratings_cannot_change_the_next_models_results(
    executor, plugin, tmp_path, request
):
    r = _run(tmp_path / "alone", "serial", request, "--models", "bias")
    assert r.exit_code == 0, r.output
    _, alone = results_of(tmp_path / "alone")
    models = f"{plugin}:Centres,{plugin}:Centres:where=predict,bias"
    r = _run(tmp_path / "o", executor, request, "--models", models)
    assert r.exit_code == 1, r.output
    doc, side = results_of(tmp_path / "o")
    by_key = {m["key"]: m for m in doc["models"]}
    assert by_key["bias"]["status"] == "ok"
    assert side["pred:bias"].to_numpy().tobytes() == alone["pred:bias"].to_numpy().tobytes()
    fit_error = by_key["centres"]["error"]
    assert fit_error.startswith("ReadOnlyInput: the model wrote into train.events.rating")
    assert "misbehaves.py:" in fit_error and fit_error.endswith(": r -= r.mean()")
    pred_error = by_key["centres:where=predict"]["error"]
    assert pred_error.startswith("ReadOnlyInput: the model wrote into queries.hist_rating")
    assert pred_error.endswith(": queries.hist_rating[:] = 0")
    shown = " ".join(r.output.split())  # on screen, with the model's line
    assert "wrote into train.events.rating" in shown and "r -= r.mean()" in shown


def test_writes_into_the_validation_queries_and_embeddings_are_named(plugin, tmp_path, request):
    models = f"{plugin}:Centres:where=val,{plugin}:CentresEmbeddings:where=embeddings,user-mean"
    r = _run(tmp_path / "o", "serial", request, "--models", models)
    doc, _ = results_of(tmp_path / "o")
    errors = {m["key"]: m.get("error") for m in doc["models"]}
    assert "wrote into train.val.batch.hist_rating" in errors["centres:where=val"], r.output
    emb_error = errors["centres-embeddings:where=embeddings"]
    assert "wrote into train.embeddings.vectors" in emb_error, r.output


def _every_array(value, name="x"):
    import dataclasses

    if isinstance(value, np.ndarray):
        yield name, value
    elif dataclasses.is_dataclass(value):
        for f in dataclasses.fields(value):
            yield from _every_array(getattr(value, f.name), f"{name}.{f.name}")
    elif isinstance(value, (tuple, list)):
        for i, v in enumerate(value):
            yield from _every_array(v, f"{name}[{i}]")
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _every_array(v, f"{name}[{k!r}]")


def test_every_array_of_the_job_inputs_is_read_only_also_after_a_pickle(monkeypatch):
    import bench.plan as plan
    from bench.executors import JobInputs
    from bench.plan import TestBatches, ValCheck
    from bench.spec import RunSpec

    _, inter, split = synthetic_world(60, 0)
    train = split.train_set(inter)
    monkeypatch.setattr(plan, "TEST_CACHE_BYTES", 0)  # rebuilt by every job
    tests = TestBatches.of(inter, split, 16)
    assert tests.kept is None
    inputs = JobInputs(
        spec=RunSpec(),
        device="cpu",
        torch_threads=None,
        trains={None: train},
        val_check=ValCheck.of(train),
        tests=tests,
    )
    for got in (inputs, pickle.loads(pickle.dumps(inputs))):
        arrays = list(_every_array((got.trains, got.val_check, list(got.tests))))
        assert len(arrays) > 20
        assert [n for n, a in arrays if a.flags.writeable] == []
    # the split's own arrays and the data's stay as they were
    assert split.train_user.flags.writeable and inter.rating.flags.writeable
    assert split.val_user.flags.writeable and split.test_user.flags.writeable


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            kids.setdefault(ppid, []).append(int(d.name))
    return kids


def _descendants(pid: int) -> set[int]:
    kids, out, todo = _children(), set(), [pid]
    while todo:
        for c in kids.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


BLOCKS = """
import os, time
from pathlib import Path
import numpy as np

class Blocks:
    name = "blocks"

    def __init__(self, n=0):
        self.n = n

    def get_config(self):
        return {"n": self.n}

    def fit(self, train):
        Path(__file__).with_name(f"running-{self.n}").write_text(str(os.getpid()))
        time.sleep(300)
        return self

    def predict(self, queries):
        return np.zeros(len(queries), dtype=np.float32)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal: Linux")
def test_no_process_outlives_a_driver_killed_with_sigkill(tmp_path):
    plugin = tmp_path / "blocks.py"
    plugin.write_text(textwrap.dedent(BLOCKS))
    models = f"{plugin}:Blocks:n=1,{plugin}:Blocks:n=2"
    argv = ["run", *SYNTH, "--models", models, "--jobs", "2", "--out", str(tmp_path / "o")]
    code = "import sys; from bench.cli import main; sys.argv[0] = 'bench'; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group: cleaned up below whatever happens
    )
    try:
        deadline = time.monotonic() + 180
        while not all((tmp_path / f"running-{n}").exists() for n in (1, 2)):
            assert proc.poll() is None and time.monotonic() < deadline, "no job started"
            time.sleep(0.2)
        workers = {int((tmp_path / f"running-{n}").read_text()) for n in (1, 2)}
        family = _descendants(proc.pid)
        assert workers <= family and len(family) >= 4  # forkserver, tracker, two workers
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in family) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in family if _alive(p)] == []
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""


def _names_session(pid: int, session: str) -> bool:
    """Whether ``pid`` names the Ray session folder on its command line or in an open file."""
    if session in _cmdline(pid):
        return True
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                if os.readlink(fd).startswith(session + "/"):
                    return True
    return False


@needs_ray
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Ray reaper: Linux")
def test_no_ray_process_outlives_a_driver_killed_with_sigkill(tmp_path):
    # a local Ray instance: its DashboardAgent and RuntimeEnvAgent are reparented when the
    # raylet dies; the reaper ends them (and everything else naming the session)
    plugin = tmp_path / "blocks.py"
    plugin.write_text(textwrap.dedent(BLOCKS))
    argv = ["run", "--executor", "ray", "--dataset", "synthetic", "--users", "60"]
    argv += ["--offline", "--check", "none", "--models", f"user-mean,{plugin}:Blocks:n=1"]
    argv += ["--out", str(tmp_path / "o")]
    code = "import sys; from bench.cli import main; sys.argv[0] = 'bench'; main()"
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *argv],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    seen: dict[int, str] = {}
    try:
        deadline = time.monotonic() + 180
        session = None
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "no Ray job started"
            family = {p: _cmdline(p) for p in _descendants(proc.pid)}
            titles = " ".join(family.values())
            found = re.search(r"--session-dir=(\S+/session_[^/\s]+)", titles)
            agents = "ray::DashboardAgent" in titles and "ray::RuntimeEnvAgent" in titles
            if found and agents and (tmp_path / "running-1").exists():
                session = found.group(1)
                break
            time.sleep(0.2)
        worker = int((tmp_path / "running-1").read_text())
        members = {int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()}
        members = {p for p in members if p != os.getpid() and _names_session(p, session)}
        seen = {p: _cmdline(p) for p in set(family) | members | {worker}}
        kinds = " ".join(seen.values())
        for kind in ("raylet", "gcs_server", "ray::DashboardAgent", "ray::RuntimeEnvAgent"):
            assert kind in kinds  # the test is not vacuous: Ray's processes were there
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 20

        def left() -> list[str]:
            procs = [p for p in Path("/proc").iterdir() if p.name.isdigit()]
            named = {int(p.name) for p in procs if _names_session(int(p.name), session)}
            return [seen.get(p) or _cmdline(p) for p in sorted(set(seen) | named) if _alive(p)]

        while left() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert left() == []
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for pid, title in seen.items():  # only what is still the process recorded
            if _alive(pid) and _cmdline(pid) == title:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
