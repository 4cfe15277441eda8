"""A results file written by the previous version of the writer (schema version 1, before
jobs returned frozen results) is read, compared, reported on and resumed by this one, and its
model records round-trip through ``bench.results.schema`` unchanged.

The fixture (``tests/data/results-v1``) is a run of ``global-mean,bias,mf`` (two seeds) on
the synthetic generator with 60 users, its JSON and predictions sidecar as written then."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from click.testing import CliRunner

from bench.cli import main
from bench.jobs import FitJob, Status
from bench.results import read_results
from bench.results.schema import record_of, result_of
from predictors.registry import parse_spec

FIXTURE = Path(__file__).parent / "data" / "results-v1"
NAME = "synthetic-v1"
#: what may differ between two runs of the same plan: when and where it ran, and costs
VOLATILE = {"created", "finished", "timings", "run_id", "git", "command", "versions"}
VOLATILE_MODEL = {"timings", "memory"}


def _copy(tmp_path: Path) -> Path:
    for p in FIXTURE.iterdir():
        shutil.copy2(p, tmp_path / p.name)
    return tmp_path / f"{NAME}.json"


def _content(doc: dict[str, Any]) -> dict[str, Any]:
    """What the jobs, the scoring and the writer put in a results file. The run's options
    (``run_spec``, ``split.params``) are recorded in the form of the spec that rewrote the
    file (``bench.spec``), and left out here: the split is named by its hash."""
    out = {k: v for k, v in doc.items() if k not in VOLATILE}
    out["run_spec"] = None
    out["split"] = {k: v for k, v in doc["split"].items() if k != "params"}
    out["executor"] = None
    out["device"] = None  # "auto" until some model of the process imported torch, then resolved
    out["predictions_file"] = None
    out["platform"] = None
    out["python"] = None
    out["ratingbench"] = None
    out["models"] = [{k: v for k, v in m.items() if k not in VOLATILE_MODEL} for m in doc["models"]]
    for m in out["models"]:  # the models' own clocks
        m["fit_info"] = {k: v for k, v in m["fit_info"].items() if k != "timings"}
    return out


def test_old_records_round_trip_through_the_schema() -> None:
    """Each finished record of the old file, read back as the result it was and written
    again with its scores, is the same dict."""
    doc = read_results(FIXTURE / f"{NAME}.json")
    assert doc.status == "complete" and len(doc.models) == 5
    for m in doc.models:
        assert m.finished and m.pred is not None and m.fallback is not None
        job = FitJob(m.key, parse_spec(m.record["label"]), int(m.record["seed"]), m.embedding)
        result = m.result(job)
        assert result is not None and result.status is Status.OK
        assert result.worker is None  # where it ran then is not this run's
        again = record_of(result, m.record["metrics"], m.record["vs_reference"])
        assert again == m.record
        assert json.dumps(again) == json.dumps(m.record)  # the same keys in the same order
        taken = result_of(m.record, job, m.pred, m.fallback)
        assert record_of(taken, m.record["metrics"], m.record["vs_reference"]) == m.record


def test_old_file_is_compared_and_reported(tmp_path: Path) -> None:
    path = _copy(tmp_path)
    res = CliRunner().invoke(main, ["compare", str(path)])
    assert res.exit_code == 0, res.output
    assert "global-mean" in res.output and "mf" in res.output
    res = CliRunner().invoke(main, ["report", str(path), "--out", str(tmp_path / "report")])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "report" / "report.md").read_text()
    assert "synthetic generator" in text and "bias" in text


def test_old_incomplete_file_is_resumed(tmp_path: Path) -> None:
    """The old file marked incomplete with one model run taken out: --resume takes the four
    others back from the file, runs the fifth again, and leaves the file as the run wrote it
    (the same models, predictions and statistics)."""
    path = _copy(tmp_path)
    original = json.loads(path.read_text())
    side = tmp_path / f"{NAME}.predictions.parquet"
    before = pd.read_parquet(side)
    doc = json.loads(path.read_text())
    doc["status"] = "incomplete"
    (gone,) = [m for m in doc["models"] if m["key"] == "mf@1"]
    gone.update(status="pending", metrics=None, vs_reference=None, n_fallback=None)
    path.write_text(json.dumps(doc, indent=2))
    res = CliRunner().invoke(main, ["run", "--resume", str(path)])
    assert res.exit_code == 0, res.output
    assert "resuming synthetic-v1.json: 4 of 5 model runs finished" in res.output
    resumed = json.loads(path.read_text())
    assert resumed["status"] == "complete"
    assert resumed["run_id"] == original["run_id"] and resumed["created"] == original["created"]
    assert list(resumed["executor"]["jobs"]) == ["mf@1"]  # the only job this run ran
    assert _content(resumed) == _content(original)
    after = pd.read_parquet(side)
    assert list(after.columns) == list(before.columns)
    for col in before.columns:
        assert np.array_equal(after[col].to_numpy(), before[col].to_numpy()), col
