"""The bad-input table: what a user typing `bench ...` gets for each mistake.

Every case runs the real CLI in-process and expects exit code 2, a one-line ``error:``
message naming the file, column or option and what was expected, no traceback, and nothing
(half-)written in the output folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from bench.cli import main
from tests.conftest import tiny_rows

HEADER = "userId,movieId,rating,timestamp"


def _csv(d: Path, lines: list[str], name: str = "ratings.csv") -> Path:
    p = d / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _good(d: Path) -> Path:
    return _csv(d, [HEADER] + [f"{u},{i},{r},{t}" for u, i, r, t in tiny_rows()])


def _catalog(d: Path, lines: list[str]) -> Path:
    return _csv(d, lines, "movies.csv")


def _emb(d: Path, ids: list[int], vecs: list[list[float]], name: str = "emb.parquet") -> Path:
    p = d / name
    pq.write_table(pa.table({"movieId": pa.array(ids, pa.int64()), "embedding": pa.array(vecs)}), p)
    return p


def _results(d: Path, text: str) -> Path:
    p = d / "r.json"
    p.write_text(text)
    return p


def _real_results(d: Path, *extra: str) -> Path:
    out = d / f"res{len(list(d.glob('res*')))}"
    args = ["run", "--ratings", str(_good(d)), "--models", "user-mean", "--out", str(out)]
    r = CliRunner().invoke(main, [*args, "--resamples", "200", *extra])
    assert r.exit_code == 0, r.output
    return next(out.glob("*.json"))


Case = Callable[[Path], list[str]]

CASES: list[tuple[str, Case, str]] = [
    # --- ratings files -------------------------------------------------------------------
    (
        "missing file",
        lambda d: ["run", "--ratings", str(d / "nope.csv")],
        "nope.csv: file not found",
    ),
    (
        "unknown format",
        lambda d: ["run", "--ratings", str(_csv(d, ["x"], "r.xlsx"))],
        "cannot tell the format from the suffix '.xlsx'; supported: .csv",
    ),
    (
        "parquet that is not parquet",
        lambda d: ["run", "--ratings", str(_csv(d, ["hello"], "r.parquet"))],
        "not a readable parquet file",
    ),
    (
        "misnamed column",
        lambda d: [
            "run",
            "--ratings",
            str(_csv(d, ["userId,movieID,rating,timestamp", "1,2,3,4"])),
        ],
        "'movieId'",
    ),
    (
        "non-numeric rating",
        lambda d: ["run", "--ratings", str(_csv(d, [HEADER, "1,2,3.5,10", "1,3,good,11"]))],
        "non-numeric value 'good'",
    ),
    (
        "NaN rating",
        lambda d: ["run", "--ratings", str(_csv(d, [HEADER, "1,2,3.5,10", "1,3,nan,11"]))],
        "'rating'",
    ),
    (
        "rating outside the declared scale",
        lambda d: [
            "run",
            "--ratings",
            str(_csv(d, [HEADER, "1,2,3.5,10", "1,3,9,11"])),
            "--rating-scale",
            "0.5,5",
        ],
        "outside the rating scale [0.5, 5.0]",
    ),
    (
        "negative id",
        lambda d: ["run", "--ratings", str(_csv(d, [HEADER, "1,2,3.5,10", "-1,3,4,11"]))],
        "'userId'",
    ),
    (
        "non-integer id",
        lambda d: ["run", "--ratings", str(_csv(d, [HEADER, "1,2,3.5,10", "1.5,3,4,11"]))],
        "'userId'",
    ),
    (
        "duplicate (user, movie, timestamp) rows",
        lambda d: ["run", "--ratings", str(_csv(d, [HEADER, "1,2,3.5,10", "1,2,3.5,10"]))],
        "duplicate (userId, movieId, timestamp)",
    ),
    ("empty table", lambda d: ["run", "--ratings", str(_csv(d, [HEADER]))], "empty"),
    (
        "every user below min_history",
        lambda d: ["run", "--ratings", str(_good(d)), "--min-history", "40"],
        "no user has at least min_history + 1 = 41 ratings",
    ),
    # --- catalogs ------------------------------------------------------------------------
    (
        "catalog without a title column",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--catalog",
            str(_catalog(d, ["movieId,name,genres", "100,A,Drama"])),
        ],
        "'title'",
    ),
    # --- embedding files -----------------------------------------------------------------
    (
        "embedding file with duplicate ids",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--models",
            "knn",
            "--embedding",
            str(_emb(d, [100, 100], [[1.0, 0.0], [0.0, 1.0]])),
        ],
        "duplicate",
    ),
    (
        "embedding file with NaN",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--models",
            "knn",
            "--embedding",
            str(_emb(d, [100, 101], [[1.0, float("nan")], [0.0, 1.0]])),
        ],
        "NaN",
    ),
    (
        "embedding file with ragged rows",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--models",
            "knn",
            "--embedding",
            str(_emb(d, [100, 101], [[1.0, 0.0], [0.0, 1.0, 2.0]])),
        ],
        "length",
    ),
    (
        "embedding file sharing no movie with the ratings",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--models",
            "knn",
            "--embedding",
            str(_emb(d, [1, 2], [[1.0, 0.0], [0.0, 1.0]])),
        ],
        "no movie of the dataset has an embedding",
    ),
    (
        "embedding file that is not parquet",
        lambda d: [
            "run",
            "--ratings",
            str(_good(d)),
            "--models",
            "knn",
            "--embedding",
            str(_csv(d, ["movieId,embedding"], "emb.parquet")),
        ],
        "not a parquet file",
    ),
    (
        "unknown embedding name",
        lambda d: ["run", "--ratings", str(_good(d)), "--models", "knn", "--embedding", "kggnn"],
        "unknown embedding 'kggnn'",
    ),
    # --- options -------------------------------------------------------------------------
    (
        "unknown model",
        lambda d: ["run", "--ratings", str(_good(d)), "--models", "transformr"],
        "unknown model 'transformr'. Did you mean 'transformer'",
    ),
    (
        "unknown model option",
        lambda d: ["run", "--ratings", str(_good(d)), "--models", "knn:kk=3"],
        "unknown option 'kk' for model 'knn'",
    ),
    (
        "k=0",
        lambda d: ["run", "--ratings", str(_good(d)), "--models", "recent-k:k=0"],
        "k must be an integer >= 1, got 0",
    ),
    (
        "negative epochs",
        lambda d: ["run", "--ratings", str(_good(d)), "--models", "attention:epochs=-1"],
        "epochs",
    ),
    (
        "unknown dataset",
        lambda d: ["run", "--dataset", "ml-20", "--offline"],
        "unknown dataset",
    ),
    (
        "dataset not on disk, offline",
        lambda d: ["run", "--dataset", "ml-1m", "--offline", "--data-dir", str(d)],
        "--data-dir",
    ),
    (
        "unwritable output folder",
        lambda d: ["run", "--ratings", str(_good(d)), "--out", str(_csv(d, ["x"], "afile"))],
        "--out",
    ),
    # --- results files -------------------------------------------------------------------
    (
        "results file that is not ours",
        lambda d: ["compare", str(_results(d, '{"a": 1}'))],
        "not a ratingbench results file",
    ),
    (
        "truncated results file",
        lambda d: ["compare", str(_results(d, '{"schema": "ratingbench.results", "sch'))],
        "corrupt or truncated",
    ),
    (
        "results of different splits",
        lambda d: ["compare", str(_real_results(d)), str(_real_results(d, "--min-history", "3"))],
        "different splits",
    ),
    (
        "resume from a file that is not ours",
        lambda d: ["run", "--resume", str(_results(d, "[]"))],
        "not a ratingbench results file",
    ),
]


@pytest.mark.parametrize("name, case, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, name: str, case: Case, message: str) -> None:
    work = tmp_path / "in"
    work.mkdir()
    args = case(work)
    out = tmp_path / "out"
    if args[0] == "run" and "--out" not in args:
        args += ["--out", str(out)]
    r = CliRunner().invoke(main, args)
    text = " ".join(r.output.split())
    assert r.exit_code == 2, f"{name}: exit {r.exit_code}\n{r.output}"
    assert "error:" in text and message in text, f"{name}: {text}"
    assert "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir()), f"{name}: something was written"


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20


def test_corrupt_sidecar_is_reported(tmp_path: Path) -> None:
    path = _real_results(tmp_path)
    other = _real_results(tmp_path)
    sidecar = path.with_name(path.stem + ".predictions.parquet")
    sidecar.write_bytes(b"not parquet")
    r = CliRunner().invoke(main, ["compare", str(path), str(other)])
    assert r.exit_code == 2 and "predictions sidecar is unreadable" in " ".join(r.output.split())
    json.loads(path.read_text())  # the JSON itself is untouched
    assert np.isfinite(
        pd.read_parquet(other.with_name(other.stem + ".predictions.parquet"))["truth"]
    ).all()
