"""Faults: a process killed inside the write window, a live writer beside the cleaner, and
several runs writing into one folder at the same time (real processes, not mocks)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from bench.fileio import clean_stale_temps
from bench.results import SCHEMA, SCHEMA_VERSION, write_results
from tests.conftest import REPO, tiny_rows

HEADER = "userId,movieId,rating,timestamp"

# a child that writes a temp file through atomic_write and is killed before the rename
_KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from bench.fileio import atomic_write

def write(tmp):
    tmp.write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)

atomic_write(Path(sys.argv[1]), write)
"""

# a child that writes its temp file, says so, and waits for a line on stdin to rename it
_LIVE_WRITER = """
import sys
from pathlib import Path
from bench.fileio import atomic_write

def write(tmp):
    tmp.write_text("live")
    print("written", flush=True)
    sys.stdin.readline()

atomic_write(Path(sys.argv[1]), write)
"""


def _python(code: str, *args: str, **kw):  # type: ignore[no-untyped-def]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code, *args], env=env, cwd=REPO, **kw)


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".*.tmp"))


def test_a_write_killed_before_the_rename_leaves_a_temp_that_the_next_run_removes(
    tmp_path: Path,
) -> None:
    target = tmp_path / "run.json"
    proc = _python(_KILLED_WRITER, str(target))
    assert proc.wait(timeout=120) == -signal.SIGKILL
    (left,) = _temps(tmp_path)
    assert not target.exists()  # the rename never happened: nothing half-written in place
    assert f"-{proc.pid}." in left.name
    # the next run into the folder (its first write) removes it
    path = write_results(tmp_path / "next.json", _doc(), _frame())
    assert _temps(tmp_path) == []
    assert json.loads(path.read_text())["predictions_file"] == "next.predictions.parquet"


def test_a_live_writers_temp_is_never_removed(tmp_path: Path) -> None:
    target = tmp_path / "live.json"
    proc = _python(_LIVE_WRITER, str(target), stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"written"
        (tmp,) = _temps(tmp_path)
        assert clean_stale_temps(tmp_path) == []
        assert tmp.exists()
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert target.read_text() == "live" and _temps(tmp_path) == []


def test_temps_of_another_host_are_left_until_a_day_old(tmp_path: Path) -> None:
    other = tmp_path / ".run.json.00000000-1.abcdefgh.tmp"  # host tag that is not ours
    other.write_text("x")
    unknown = tmp_path / ".run.json.abcdefgh.tmp"  # the writer is unknown
    unknown.write_text("x")
    mine = tmp_path / ".notes.tmp"
    assert clean_stale_temps(tmp_path) == [] and other.exists() and unknown.exists()
    day_ago = other.stat().st_mtime - 25 * 3600
    for p in (other, unknown):
        os.utime(p, (day_ago, day_ago))
    mine.write_text("a user's own file, not named like ours")
    os.utime(mine, (day_ago, day_ago))
    assert sorted(clean_stale_temps(tmp_path)) == sorted([other, unknown])
    assert mine.exists()


def _doc(n: int = 2) -> dict:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "run_id": os.urandom(8).hex(),
        "dataset": {"name": "x", "hash": "h"},
        "split": {"hash": "s", "counts": {"test": n}},
        "models": [],
    }


def _frame(n: int = 2) -> pd.DataFrame:
    return pd.DataFrame(
        {"user_id": range(n), "movie_id": range(n), "target_time": range(n), "truth": [3.0] * n}
    )


def _claim(args: tuple[str, mp.synchronize.Barrier]) -> str:
    folder, barrier = args
    doc = _doc()
    barrier.wait()
    path = write_results(Path(folder) / "same-name.json", doc, _frame())
    return f"{path.name} {doc['run_id']}"


def test_runs_claiming_one_name_at_once_get_one_pair_each(tmp_path: Path) -> None:
    n = 6
    ctx = mp.get_context("spawn")
    with ctx.Manager() as manager:
        barrier = manager.Barrier(n)
        with ctx.Pool(n) as pool:
            got = pool.map(_claim, [(str(tmp_path), barrier)] * n)
    names = {line.split()[0]: line.split()[1] for line in got}
    assert len(names) == n  # six names, none shared
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(names)
    for name, run_id in names.items():
        doc = json.loads((tmp_path / name).read_text())
        side = tmp_path / doc["predictions_file"]
        meta = json.loads(pq.read_schema(side).metadata[b"ratingbench"])
        assert doc["run_id"] == run_id == meta["run_id"]  # each JSON with its own sidecar
    assert len(list(tmp_path.glob("*.predictions.parquet"))) == n
    assert _temps(tmp_path) == []


def test_two_bench_runs_into_one_folder_at_the_same_time(tmp_path: Path) -> None:
    csv = tmp_path / "ratings.csv"
    csv.write_text("\n".join([HEADER] + [f"{u},{i},{r},{t}" for u, i, r, t in tiny_rows()]))
    out = tmp_path / "out"
    args = ["-m", "bench.cli", "run", "--ratings", str(csv), "--models", "user-mean,recent-k"]
    args += ["--out", str(out), "--resamples", "200", "--no-cache"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0].decode() for p in procs]
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text
        assert "Traceback" not in text
    jsons = sorted(out.glob("*.json"))
    assert len(jsons) == 2
    ids = set()
    for path in jsons:
        doc = json.loads(path.read_text())
        assert doc["status"] == "complete"
        meta = json.loads(pq.read_schema(out / doc["predictions_file"]).metadata[b"ratingbench"])
        assert meta["run_id"] == doc["run_id"]
        ids.add(doc["run_id"])
    assert len(ids) == 2 and _temps(out) == []
