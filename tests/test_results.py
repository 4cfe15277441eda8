"""Results files: atomic, never overwritten, validated on read."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from bench.errors import ResultsError
from bench.fileio import atomic_write
from bench.results import (
    SCHEMA,
    SCHEMA_VERSION,
    load_results,
    new_results_path,
    read_predictions,
    sidecar_path,
    write_results,
)


def _doc():
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "dataset": {"name": "x", "hash": "h"},
        "split": {"hash": "s"},
        "models": [],
        "nan": float("nan"),
    }


def test_write_then_load_round_trip(tmp_path):
    p = tmp_path / "run.json"
    frame = pd.DataFrame({"user_id": [1, 2], "truth": [3.0, 4.0], "pred:a": [3.5, 4.5]})
    write_results(p, _doc(), frame)
    doc = load_results(p)
    assert doc["nan"] is None  # NaN becomes null: the JSON stays standard
    assert doc["predictions_file"] == sidecar_path(p).name
    back = read_predictions(p, doc)
    assert back["pred:a"].tolist() == [3.5, 4.5]
    assert not [f for f in tmp_path.iterdir() if f.name.endswith(".tmp")]


def test_an_update_with_a_current_sidecar_rewrites_only_the_json(tmp_path):
    p = tmp_path / "run.json"
    frame = pd.DataFrame({"user_id": [1, 2], "truth": [3.0, 4.0], "pred:a": [3.5, 4.5]})
    write_results(p, _doc(), frame)
    side = sidecar_path(p)
    before, inode = side.read_bytes(), side.stat().st_ino
    write_results(p, {**_doc(), "status": "complete"}, None, overwrite=True, sidecar_current=True)
    doc = load_results(p)
    assert doc["status"] == "complete" and doc["predictions_file"] == side.name
    assert side.read_bytes() == before and side.stat().st_ino == inode  # not written again
    assert read_predictions(p, doc)["pred:a"].tolist() == [3.5, 4.5]
    for bad in ({"overwrite": False}, {"overwrite": True, "predictions": frame}):
        kw = {"predictions": None, **bad}
        with pytest.raises(ValueError, match="sidecar_current"):
            write_results(p, _doc(), kw.pop("predictions"), sidecar_current=True, **kw)


def test_never_overwrites(tmp_path):
    p = tmp_path / "run.json"
    assert write_results(p, _doc(), None) == p
    before = p.read_bytes()
    # a second first write under a taken name moves on to the next free one
    assert write_results(p, {**_doc(), "models": [1]}, None) == tmp_path / "run-2.json"
    assert p.read_bytes() == before
    assert new_results_path(tmp_path, "run") == tmp_path / "run-3.json"
    with pytest.raises(FileExistsError):  # an update of a file that exists is not a claim
        atomic_write(p, lambda tmp: tmp.write_text("x"), overwrite=False)


def test_failed_write_leaves_nothing(tmp_path):
    p = tmp_path / "out.txt"
    p.write_text("old")

    def boom(tmp):
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(p, boom)
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["out.txt"]


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"schema": "ratingbench.results", "schema_version": 1, "dat', "corrupt or truncated"),
        ('{"hello": 1}', "not a ratingbench results file"),
        ('{"schema": "ratingbench.results", "schema_version": 99}', "schema version 99"),
        ('{"schema": "ratingbench.results", "schema_version": 1}', "no 'dataset' section"),
    ],
)
def test_bad_results_files(tmp_path, content, message):
    p = tmp_path / "r.json"
    p.write_text(content)
    with pytest.raises(ResultsError, match=message):
        load_results(p)


def test_missing_results_file(tmp_path):
    with pytest.raises(ResultsError, match="not found"):
        load_results(tmp_path / "nope.json")
    json.dumps(_doc(), allow_nan=True)
