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

import bench.data.cache  # noqa: F401  (bound to the real atomic_write before a test patches it)
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
    args = _run(_good(d), "--models", "user-mean", "--out", str(out), "--resamples", "200")
    r = CliRunner().invoke(main, [*args, *extra])
    assert r.exit_code == 0, r.output
    return next(out.glob("*.json"))


def _run(ratings: Path | str, *extra: str) -> list[str]:
    """The arguments of `bench run --ratings RATINGS EXTRA...`."""
    return ["run", "--ratings", str(ratings), *extra]


def _rows(d: Path, *rows: str) -> Path:
    """A ratings file: the header, then these rows."""
    return _csv(d, [HEADER, *rows])


def _knn(d: Path, embedding: Path) -> list[str]:
    """`bench run` of knn over the good ratings with this embedding file."""
    return _run(_good(d), "--models", "knn", "--embedding", str(embedding))


Case = Callable[[Path], list[str]]

CASES: list[tuple[str, Case, str]] = [
    # --- ratings files -------------------------------------------------------------------
    ("missing file", lambda d: _run(d / "nope.csv"), "nope.csv: file not found"),
    (
        "unknown format",
        lambda d: _run(_csv(d, ["x"], "r.xlsx")),
        "cannot tell the format from the suffix '.xlsx'; supported: .csv",
    ),
    (
        "parquet that is not parquet",
        lambda d: _run(_csv(d, ["hello"], "r.parquet")),
        "not a readable parquet file",
    ),
    (
        "misnamed column",
        lambda d: _run(_csv(d, ["userId,movieID,rating,timestamp", "1,2,3,4"])),
        "'movieId'",
    ),
    (
        "non-numeric rating",
        lambda d: _run(_rows(d, "1,2,3.5,10", "1,3,good,11")),
        "non-numeric value 'good'",
    ),
    ("NaN rating", lambda d: _run(_rows(d, "1,2,3.5,10", "1,3,nan,11")), "'rating'"),
    (
        "rating outside the declared scale",
        lambda d: _run(_rows(d, "1,2,3.5,10", "1,3,9,11"), "--rating-scale", "0.5,5"),
        "outside the rating scale [0.5, 5.0]",
    ),
    ("negative id", lambda d: _run(_rows(d, "1,2,3.5,10", "-1,3,4,11")), "'userId'"),
    ("non-integer id", lambda d: _run(_rows(d, "1,2,3.5,10", "1.5,3,4,11")), "'userId'"),
    (
        "duplicate (user, movie, timestamp) rows",
        lambda d: _run(_rows(d, "1,2,3.5,10", "1,2,3.5,10")),
        "duplicate (userId, movieId, timestamp)",
    ),
    ("empty table", lambda d: _run(_rows(d)), "empty"),
    (
        "every user below min_history",
        lambda d: _run(_good(d), "--min-history", "40"),
        "no user has at least min_history + 1 = 41 ratings",
    ),
    # --- catalogs ------------------------------------------------------------------------
    (
        "catalog without a title column",
        lambda d: _run(
            _good(d), "--catalog", str(_catalog(d, ["movieId,name,genres", "100,A,Drama"]))
        ),
        "'title'",
    ),
    # --- embedding files -----------------------------------------------------------------
    (
        "embedding file with duplicate ids",
        lambda d: _knn(d, _emb(d, [100, 100], [[1.0, 0.0], [0.0, 1.0]])),
        "duplicate",
    ),
    (
        "embedding file with NaN",
        lambda d: _knn(d, _emb(d, [100, 101], [[1.0, float("nan")], [0.0, 1.0]])),
        "NaN",
    ),
    (
        "embedding file with ragged rows",
        lambda d: _knn(d, _emb(d, [100, 101], [[1.0, 0.0], [0.0, 1.0, 2.0]])),
        "length",
    ),
    (
        "embedding file sharing no movie with the ratings",
        lambda d: _knn(d, _emb(d, [1, 2], [[1.0, 0.0], [0.0, 1.0]])),
        "no movie of the dataset has an embedding",
    ),
    (
        "embedding file that is not parquet",
        lambda d: _knn(d, _csv(d, ["movieId,embedding"], "emb.parquet")),
        "not a parquet file",
    ),
    (
        "unknown embedding name",
        lambda d: _run(_good(d), "--models", "knn", "--embedding", "kggnn"),
        "unknown embedding 'kggnn'",
    ),
    # --- options -------------------------------------------------------------------------
    (
        "unknown model",
        lambda d: _run(_good(d), "--models", "transformr"),
        "unknown model 'transformr'. Did you mean 'transformer'",
    ),
    (
        "unknown model option",
        lambda d: _run(_good(d), "--models", "knn:kk=3"),
        "unknown option 'kk' for model 'knn'",
    ),
    (
        "k=0",
        lambda d: _run(_good(d), "--models", "recent-k:k=0"),
        "k must be an integer >= 1, got 0",
    ),
    ("negative epochs", lambda d: _run(_good(d), "--models", "attention:epochs=-1"), "epochs"),
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
        lambda d: _run(_good(d), "--out", str(_csv(d, ["x"], "afile"))),
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
    # --- ids, times ----------------------------------------------------------------------
    (
        "ids stored as floats beyond 2**53 (a lossy conversion)",
        lambda d: _run(_float_id_parquet(d)),
        "column 'userId' is stored as floating point",
    ),
    (
        "timestamps in two units",
        lambda d: _run(_rows(d, "1,2,3.5,1500000000", "1,3,4,1500000001000")),
        "column 'timestamp' mixes time units",
    ),
    (
        "a time unit for datetimes",
        lambda d: _run(_rows(d, "1,2,3.5,2020-01-01", "1,3,4,2020-01-02"), "--time-unit", "ms"),
        "holds datetimes",
    ),
    (
        "a time unit for the synthetic dataset",
        lambda d: ["run", "--dataset", "synthetic", "--models", "user-mean", "--time-unit", "ms"],
        "--time-unit ms does not apply to --dataset synthetic",
    ),
    # --- compare -------------------------------------------------------------------------
    (
        "compare --reference that is in no file",
        lambda d: ["compare", str(_real_results(d)), "--reference", "usermean"],
        "--reference 'usermean' is not a model run in these files; known: user-mean",
    ),
    (
        "compare --out under a file",
        lambda d: ["compare", str(_real_results(d)), "--out", str(_csv(d, ["x"], "f") / "t.md")],
        "is a file, not a folder",
    ),
    (
        "compare --out into a missing folder",
        lambda d: ["compare", str(_real_results(d)), "--out", str(d / "no" / "t.md")],
        "does not exist",
    ),
    (
        "compare --out onto a folder",
        lambda d: ["compare", str(_real_results(d)), str(_real_results(d)), "--out", str(d)],
        "it is a folder",
    ),
]


def _float_id_parquet(d: Path) -> Path:
    p = d / "r.parquet"
    rows = tiny_rows()
    table = pa.table(
        {
            "userId": pa.array([2.0**60 + 1024 * u for u, _, _, _ in rows], pa.float64()),
            "movieId": pa.array([i for _, i, _, _ in rows], pa.int64()),
            "rating": pa.array([r for _, _, r, _ in rows], pa.float64()),
            "timestamp": pa.array([t for _, _, _, t in rows], pa.int64()),
        }
    )
    pq.write_table(table, p)
    return p


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


# --------------------------------------------------------------------------- silent changes


def _run_ok(args: list[str]) -> Path:
    r = CliRunner().invoke(main, [*args, "--resamples", "200"])
    assert r.exit_code == 0, r.output
    (path,) = Path(args[args.index("--out") + 1]).glob("*.json")
    return path


def _sidecar(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))


def test_row_order_changes_nothing(tmp_path: Path) -> None:
    """A shuffled file gives the same dataset hash, split hash and sidecar; ties at a
    user's last timestamp (user 3's two last events here) are broken on content."""
    rows = [(u, i, r, 5000 if (u == 3 and i >= 110) else t) for u, i, r, t in tiny_rows()]
    paths = []
    for k, perm in enumerate((list(range(len(rows))), np.random.default_rng(1).permutation(30))):
        d = tmp_path / f"in{k}"
        d.mkdir()
        lines = [HEADER] + [f"{u},{i},{r},{t}" for u, i, r, t in (rows[j] for j in perm)]
        csv = _csv(d, lines)
        out = tmp_path / f"out{k}"
        paths.append(_run_ok(_run(csv, "--models", "user-mean,recent-k:k=2", "--out", str(out))))
    a, b = (json.loads(p.read_text()) for p in paths)
    assert a["dataset"]["hash"] == b["dataset"]["hash"]
    assert a["split"]["hash"] == b["split"]["hash"]
    pd.testing.assert_frame_equal(_sidecar(paths[0]), _sidecar(paths[1]))
    # the tie is broken by movie id: user 3's test target is movie 111, not file order's
    side = _sidecar(paths[0])
    assert side.loc[side["user_id"] == 3, "movie_id"].item() == 111
    r = CliRunner().invoke(main, ["compare", str(paths[0]), str(paths[1])])
    assert r.exit_code == 0, r.output


def test_64_bit_ids_beside_a_float_column_stay_distinct(tmp_path: Path) -> None:
    big = 2**60
    lines = [HEADER] + [f"{big + u},{i}.0,{r},{t}" for u, i, r, t in tiny_rows()]
    ratings = _csv(tmp_path, lines)
    path = _run_ok(
        _run(ratings, "--models", "user-mean", "--min-history", "2", "--out", str(tmp_path / "o"))
    )
    doc = json.loads(path.read_text())
    assert doc["dataset"]["n_users"] == 3
    assert sorted(_sidecar(path)["user_id"].tolist()) == [big + 3, big + 5, big + 7]


def test_milliseconds_are_detected_announced_recorded_and_give_the_same_results(
    tmp_path: Path,
) -> None:
    docs, sides = [], []
    for unit, scale in (("s", 1), ("ms", 1000)):
        d = tmp_path / unit
        d.mkdir()
        lines = [HEADER] + [
            f"{u},{i},{r},{(1_500_000_000 + 600 * t) * scale + scale // 3}"
            for u, i, r, t in tiny_rows()
        ]
        models = ["--models", "user-mean,mf-temporal"]
        r = CliRunner().invoke(
            main, _run(_csv(d, lines), *models, "--out", str(d / "o"), "--resamples", "200")
        )
        assert r.exit_code == 0, r.output
        text = " ".join(r.output.split())
        assert ("timestamps in milliseconds (detected), converted" in text) == (unit == "ms")
        (path,) = (d / "o").glob("*.json")
        docs.append(json.loads(path.read_text()))
        sides.append(_sidecar(path))
    assert docs[1]["dataset"]["time_unit"] == {
        "unit": "ms",
        "how": "detected",
        "column": "timestamp",
    }
    assert docs[0]["dataset"]["time_unit"]["unit"] == "s"
    assert docs[0]["dataset"]["hash"] == docs[1]["dataset"]["hash"]  # the same seconds
    pd.testing.assert_frame_equal(sides[0], sides[1])  # mf-temporal's gaps are the same
    # the unit can be given: read as seconds, the same file is another dataset
    d = tmp_path / "ms"
    given = ["--models", "user-mean", "--time-unit", "s", "--out", str(tmp_path / "g")]
    r = CliRunner().invoke(main, _run(d / "ratings.csv", *given))
    assert r.exit_code == 0, r.output
    (path,) = (tmp_path / "g").glob("*.json")
    doc = json.loads(path.read_text())
    assert doc["dataset"]["time_unit"]["how"] == "given"
    assert doc["dataset"]["hash"] != docs[1]["dataset"]["hash"]


def test_unknown_time_unit_lists_the_known_ones(tmp_path: Path) -> None:
    r = CliRunner().invoke(main, _run(_good(tmp_path), "--time-unit", "h"))
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "--time-unit must be one of s, ms, us, ns, got 'h'" in text


# --------------------------------------------------------------------------- resume


def _finished(tmp_path: Path, name: str, *extra: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    return _run_ok(_run(_good(d), "--models", "user-mean,recent-k", "--out", str(d / "o"), *extra))


def _resume(path: Path, *extra: str) -> tuple[int, str]:
    r = CliRunner().invoke(main, ["run", "--resume", str(path), *extra])
    assert "Traceback" not in r.output
    return r.exit_code, " ".join(r.output.split())


def test_resume_with_options_it_would_ignore_is_refused(tmp_path: Path) -> None:
    path = _finished(tmp_path, "a")
    before = path.read_bytes()
    code, text = _resume(path, "--models", "bias", "--seed", "3")
    assert code == 2 and "these options would be ignored: --models, --seeds" in text
    assert path.read_bytes() == before
    code, text = _resume(path, "--offline", "--no-cache")  # how to read the data: allowed
    assert code == 0, text


def test_resume_refuses_a_sidecar_of_another_length_or_run(tmp_path: Path) -> None:
    path = _finished(tmp_path, "a")
    side = path.with_name(path.stem + ".predictions.parquet")
    good = side.read_bytes()
    before = path.read_bytes()
    # another length (a plain parquet file without the run's metadata)
    _sidecar(path).iloc[:1].to_parquet(side)
    code, text = _resume(path)
    assert code == 2 and "the predictions sidecar has 1 rows" in text, text
    # another split of the same data
    other = _finished(tmp_path, "b", "--min-history", "3")
    side.write_bytes(other.with_name(other.stem + ".predictions.parquet").read_bytes())
    code, text = _resume(path)
    assert code == 2 and "cannot resume" in text and "belongs to another" in text, text
    # the same settings run again: the same queries, but another run's predictions
    twin = _finished(tmp_path, "c")
    side.write_bytes(twin.with_name(twin.stem + ".predictions.parquet").read_bytes())
    code, text = _resume(path)
    assert code == 2 and "belongs to another run" in text, text
    # same queries, ids shuffled (no run metadata): the query check catches it
    frame = pd.read_parquet(pa.BufferReader(good))
    frame["movie_id"] = frame["movie_id"].to_numpy()[::-1]
    frame.to_parquet(side)
    code, text = _resume(path)
    assert code == 2 and "column 'movie_id' differs from the split's test queries" in text, text
    assert path.read_bytes() == before  # nothing was written
    side.write_bytes(good)
    code, text = _resume(path)
    assert code == 0, text


# --------------------------------------------------------------------------- disk full


def test_disk_full_while_writing_results_is_one_line_and_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bench.results import writer as results  # the module that writes the pair

    real = results.atomic_write
    calls = {"n": 0}

    def full_after_two(path: Path, write, **kw):  # type: ignore[no-untyped-def]
        if Path(path).parent == out:  # the results folder only (not the caches)
            calls["n"] += 1
        if calls["n"] > 2:  # the first pair (after the first model) is written
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write, **kw)

    out = tmp_path / "o"
    monkeypatch.setattr(results, "atomic_write", full_after_two)
    models = ["--models", "user-mean,recent-k,bias", "--resamples", "200"]
    r = CliRunner().invoke(main, _run(_good(tmp_path), *models, "--out", str(out)))
    text = " ".join(r.output.split())
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    (path,) = out.glob("*.json")
    flat = "".join(r.output.split())  # long paths wrap in the terminal
    assert f"{path}:cannotupdatetheresults(Nospaceleftondevice)" in flat, text
    assert "valid JSON" in text and f"benchrun--resume{path}" in flat
    doc = json.loads(path.read_text())  # valid, and names only what its sidecar holds
    assert [m["status"] for m in doc["models"]] == ["ok", "pending", "pending"]
    assert not list(out.glob(".*.tmp"))
    monkeypatch.setattr(results, "atomic_write", real)
    code, text = _resume(path)
    assert code == 0, text
    doc = json.loads(path.read_text())
    assert doc["status"] == "complete" and [m["status"] for m in doc["models"]] == ["ok"] * 3


def test_disk_full_on_the_first_write_says_nothing_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from bench.results import writer as results  # the module that writes the pair

    out = tmp_path / "o"
    real = results.atomic_write

    def full(path: Path, write, **kw):  # type: ignore[no-untyped-def]
        if Path(path).parent == out:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, write, **kw)

    monkeypatch.setattr(results, "atomic_write", full)
    r = CliRunner().invoke(main, _run(_good(tmp_path), "--models", "user-mean", "--out", str(out)))
    assert r.exit_code == 2 and "Traceback" not in r.output
    assert "nothing was written" in " ".join(r.output.split())
    assert not any(out.iterdir())


def test_compare_out_into_a_read_only_folder(tmp_path: Path) -> None:
    import os

    path = _real_results(tmp_path)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running with rights that ignore folder permissions (root)")
        r = CliRunner().invoke(main, ["compare", str(path), "--out", str(ro / "t.md")])
        assert r.exit_code == 2 and "Traceback" not in r.output
        assert f"--out{ro / 't.md'}:cannotwritethere" in "".join(r.output.split())
    finally:
        ro.chmod(0o755)
