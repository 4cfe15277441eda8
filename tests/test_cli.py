"""The CLI, in-process (click's CliRunner): run, compare, list, and its error messages."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import main
from tests.conftest import tiny_rows


def _ratings_csv(tmp_path: Path, rows=None, header="userId,movieId,rating,timestamp") -> Path:
    p = tmp_path / "ratings.csv"
    rows = rows if rows is not None else tiny_rows()
    lines = [header] + [f"{u},{i},{r},{t}" for u, i, r, t in rows]
    p.write_text("\n".join(lines) + "\n")
    return p


def _run(args, **kw):
    return CliRunner().invoke(main, args, catch_exceptions=False, **kw)


def _run_file(csv: Path, models: str, out: Path, *extra: str, **kw):
    """``bench run`` on a ratings file with few resamples (the tests' usual command)."""
    args = ["run", "--ratings", str(csv), "--models", models, "--out", str(out)]
    return _run([*args, "--resamples", "200", *extra], **kw)


def _written(r, out: Path, pattern: str = "*.json") -> dict:
    """The results document that a successful ``bench run`` (``r``, its CliRunner result)
    wrote in ``out``."""
    assert r.exit_code == 0, r.output
    return json.loads(next(out.glob(pattern)).read_text())


def _rmse(doc: dict) -> dict[str, float]:
    """Model key -> its RMSE estimate in the results document ``doc``."""
    return {m["key"]: m["metrics"]["rmse"]["estimate"] for m in doc["models"]}


def test_run_on_a_ratings_file_writes_json_and_sidecar(tmp_path):
    csv = _ratings_csv(tmp_path)
    out = tmp_path / "res"
    r = _run_file(csv, "user-mean,recent-k:k=2,bias", out)
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.json"))
    assert len(files) == 1
    doc = json.loads(files[0].read_text())
    assert [m["key"] for m in doc["models"]] == ["user-mean", "recent-k:k=2", "bias"]
    assert doc["split"]["counts"]["test"] == 2
    assert doc["dataset"]["scale"] == {"low": 1.0, "high": 5.0, "step": 1.0}
    assert doc["status"] == "complete" and doc["statistics"]["reference"] == "user-mean"
    for key in ("git", "versions", "command", "seeds", "device"):
        assert key in doc
    side = pd.read_parquet(out / doc["predictions_file"])
    assert len(side) == 2 and {"pred:bias", "fallback:bias", "truth"} <= set(side.columns)
    # user 7's test history mean: 36/13 (hand-computed in test_baselines)
    row = side[side.user_id == 7]
    assert row["pred:user-mean"].item() == pytest.approx(36 / 13, rel=1e-6)
    assert "user-mean" in r.output and "bias" in r.output


def test_reference_is_added_when_not_chosen(tmp_path):
    csv = _ratings_csv(tmp_path)
    doc = _written(_run_file(csv, "recent-k", tmp_path), tmp_path, "ratings*.json")
    assert [m["key"] for m in doc["models"]] == ["user-mean", "recent-k"]
    # a handful of test users, fewer than --min-test-users (20): a difference, no verdict
    vs = doc["models"][1]["vs_reference"]["rmse"]
    assert vs["verdict"] == "too few queries"
    assert 0.0 <= vs["p_value"] <= vs["p_adjusted"] <= 1.0
    assert doc["statistics"]["n_units"] == doc["split"]["counts"]["test"] < 20


def test_same_seed_same_predictions_and_compare(tmp_path):
    csv = _ratings_csv(tmp_path)
    args = [
        "run",
        "--ratings",
        str(csv),
        "--models",
        "all",
        "--out",
        str(tmp_path / "r"),
        "--resamples",
        "200",
        "--seed",
        "3",
    ]
    assert _run(args).exit_code == 0
    assert _run(args).exit_code == 0
    files = sorted((tmp_path / "r").glob("*.json"))
    assert len(files) == 2  # the second run never overwrote the first
    a, b = (pd.read_parquet(f.with_name(f.stem + ".predictions.parquet")) for f in files)
    pd.testing.assert_frame_equal(a, b)
    r = _run(["compare", *map(str, files), "--format", "markdown"])
    assert r.exit_code == 0
    assert "| bias" in r.output and "RMSE ratio" in r.output
    md = tmp_path / "cmp.md"
    r = _run(["compare", *map(str, files), "--out", str(md)])
    assert r.exit_code == 0 and md.read_text().startswith("## ")


def test_compare_refuses_different_splits(tmp_path):
    csv = _ratings_csv(tmp_path)
    base = ["run", "--ratings", str(csv), "--models", "user-mean", "--resamples", "200"]
    assert _run([*base, "--out", str(tmp_path / "a")]).exit_code == 0
    assert _run([*base, "--out", str(tmp_path / "b"), "--min-history", "3"]).exit_code == 0
    files = [next((tmp_path / d).glob("*.json")) for d in ("a", "b")]
    r = CliRunner().invoke(main, ["compare", *map(str, files)])
    assert r.exit_code == 2
    assert "different splits" in r.output


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--models", "usermean"], "unknown model 'usermean'. Did you mean 'user-mean'"),
        (["--models", "recent-k:kk=3"], "unknown option 'kk' for model 'recent-k'"),
        (["--models", "recent-k:k=0"], "k must be an integer >= 1"),
        (["--min-history", "100"], "no user has at least min_history + 1 = 101"),
        (["--samples-per-user", "some"], "--samples-per-user must be an integer >= 1 or 'all'"),
        (["--columns", "usr=x"], "--columns expects role=column pairs"),
        (["--seeds", "a,b"], "--seeds expects comma-separated integers"),
        (["--rating-scale", "5,1"], "--rating-scale expects LOW,HIGH"),
    ],
)
def test_bad_options_one_line_errors(tmp_path, extra, message):
    csv = _ratings_csv(tmp_path)
    out = tmp_path / "res"
    r = CliRunner().invoke(main, ["run", "--ratings", str(csv), "--out", str(out), *extra])
    assert r.exit_code == 2, r.output
    assert message in " ".join(r.output.split())
    assert not out.exists() or not any(out.iterdir())  # nothing half-written


def test_rating_outside_scale_and_missing_file(tmp_path):
    rows = [*tiny_rows(), (9, 1, 7.0, 1)]
    csv = _ratings_csv(tmp_path, rows)
    r = CliRunner().invoke(
        main,
        ["run", "--ratings", str(csv), "--rating-scale", "0.5,5", "--out", str(tmp_path / "o")],
    )
    assert r.exit_code == 2 and "outside the rating scale" in r.output
    r = CliRunner().invoke(main, ["run", "--ratings", str(tmp_path / "none.csv")])
    assert r.exit_code == 2 and "none.csv" in r.output


def test_failed_model_is_recorded_and_exit_is_nonzero(tmp_path, monkeypatch):
    from predictors import baselines

    def boom(self, train):
        raise RuntimeError("exploded on purpose")

    monkeypatch.setattr(baselines.RecentK, "_fit", boom)
    csv = _ratings_csv(tmp_path)
    r = CliRunner().invoke(
        main,
        [
            "run",
            "--ratings",
            str(csv),
            "--models",
            "user-mean,recent-k",
            "--out",
            str(tmp_path / "o"),
            "--resamples",
            "200",
        ],
    )
    assert r.exit_code == 1
    doc = json.loads(next((tmp_path / "o").glob("*.json")).read_text())
    failed = {m["key"]: m for m in doc["models"]}["recent-k"]
    assert failed["status"] == "failed" and "exploded on purpose" in failed["error"]
    assert {m["key"]: m for m in doc["models"]}["user-mean"]["status"] == "ok"


def test_synthetic_run(tmp_path):
    args = "run --dataset synthetic --users 200 --models all --resamples 200".split()
    doc = _written(_run([*args, "--out", str(tmp_path)]), tmp_path, "synthetic*.json")
    assert doc["dataset"]["noise_floor_rmse"] > 0
    rmse = _rmse(doc)
    assert rmse["bias"] < rmse["global-mean"]


def _sections(output: str) -> dict[str, list[str]]:
    """``bench list`` output as section -> first word of each of its rows."""
    out: dict[str, list[str]] = {}
    current = None
    for line in output.splitlines():
        if line and not line.startswith(" "):
            current = line.strip()
            out[current] = []
        elif line.strip() and current is not None:
            out[current].append(line.split()[0])
    return out


def test_list_names_everything():
    from bench.data.manifest import list_datasets
    from bench.data.split import PROTOCOLS
    from bench.embeddings import list_embeddings
    from predictors.registry import REGISTRY

    r = _run(["list"])
    assert r.exit_code == 0
    sections = _sections(r.output)
    assert list(sections) == ["models", "datasets", "protocols", "embeddings"]
    from predictors.adapters import cornac, surprise

    adapters = [f"surprise:{m}" for m in surprise.MODELS] + [f"cornac:{m}" for m in cornac.MODELS]
    assert sections["models"] == list(REGISTRY) + adapters
    assert sections["datasets"] == [m.name for m in list_datasets()] + ["synthetic"]
    assert sections["protocols"] == list(PROTOCOLS)
    assert sections["embeddings"] == [n for n, _ in list_embeddings()] + ["synthetic"]
    # each built-in model's row says where it comes from
    rows = [ln for ln in r.output.splitlines() if ln.startswith("  global-mean ")]
    assert len(rows) == 1 and "built-in" in rows[0]


def test_real_dataset_offline(data_dir, tmp_path):
    args = ["run", "--dataset", "ml-latest-small", "--data-dir", str(data_dir), "--offline"]
    args += ["--protocol", "notebook", "--models", "global-mean,user-mean,recent-k,bias,knn"]
    doc = _written(_run([*args, "--out", str(tmp_path), "--resamples", "500"]), tmp_path)
    assert doc["split"]["counts"]["train"] == 3050
    # the implicit default embedding (kg_gnn) must not change the data the baselines see
    assert doc["dataset"]["n_ratings"] == 100_836
    assert doc["embeddings"]["names"] == ["kg_gnn"] and doc["embeddings"]["policy"] == "zero"
    rmse = _rmse(doc)
    assert set(rmse) == {"global-mean", "user-mean", "recent-k", "bias", "knn"}
    assert rmse["user-mean"] == pytest.approx(1.02240, abs=5e-5)  # notebook re-implementation
    assert rmse["recent-k"] == pytest.approx(0.98215, abs=5e-5)


def test_interrupted_run_keeps_finished_models_and_resumes(tmp_path, monkeypatch):
    from predictors import baselines

    csv = _ratings_csv(tmp_path)
    out = tmp_path / "o"
    original = baselines.Bias._fit

    def interrupt(self, train):  # the user presses Ctrl-C while bias fits
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(5)  # the handler interrupts the sleep

    monkeypatch.setattr(baselines.Bias, "_fit", interrupt)
    # as in a foreground process (a test runner started in the background inherits SIGINT
    # ignored or blocked): Python's own handler, SIGINT deliverable
    outer = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    args = [
        "run",
        "--ratings",
        str(csv),
        "--models",
        "user-mean,recent-k,bias",
        "--out",
        str(out),
        "--resamples",
        "200",
    ]
    try:
        r = CliRunner().invoke(main, args)
    finally:
        signal.signal(signal.SIGINT, outer)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    assert r.exit_code == 130
    path = next(out.glob("*.json"))
    doc = json.loads(path.read_text())
    assert doc["status"] == "incomplete"
    status = {m["key"]: m["status"] for m in doc["models"]}
    assert status == {"user-mean": "ok", "recent-k": "ok", "bias": "not run"}
    first = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))

    monkeypatch.setattr(baselines.Bias, "_fit", original)
    calls = []
    orig_recent = baselines.RecentK._fit
    monkeypatch.setattr(
        baselines.RecentK, "_fit", lambda self, t: calls.append(1) or orig_recent(self, t)
    )
    r = CliRunner().invoke(main, ["run", "--resume", str(path)])
    assert r.exit_code == 0, r.output
    doc = json.loads(path.read_text())
    assert doc["status"] == "complete"
    assert {m["key"]: m["status"] for m in doc["models"]} == dict.fromkeys(status, "ok")
    assert calls == []  # finished models were taken back, not refitted
    side = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    assert side["pred:recent-k"].tolist() == first["pred:recent-k"].tolist()
    assert len(list(out.glob("*.json"))) == 1


def test_resume_refuses_a_changed_dataset(tmp_path, monkeypatch):
    csv = _ratings_csv(tmp_path)
    out = tmp_path / "o"
    assert _run_file(csv, "user-mean", out).exit_code == 0
    path = next(out.glob("*.json"))
    rows = [(u, i, 5.0 if r < 3 else r, t) for u, i, r, t in tiny_rows()]
    _ratings_csv(tmp_path, rows)
    r = CliRunner().invoke(main, ["run", "--resume", str(path)])
    assert r.exit_code == 2 and "cannot resume" in r.output


def test_rerun_gives_identical_predictions(tmp_path):
    csv = _ratings_csv(tmp_path)
    out = tmp_path / "o"
    assert _run_file(csv, "all", out).exit_code == 0
    path = next(out.glob("*.json"))
    r = _run(["rerun", str(path)])
    assert r.exit_code == 0, r.output
    files = sorted(out.glob("*.predictions.parquet"))
    assert len(files) == 2
    pd.testing.assert_frame_equal(pd.read_parquet(files[0]), pd.read_parquet(files[1]))


def test_second_run_reads_the_parsed_ratings_from_the_cache(tmp_path, monkeypatch):
    from bench.data import readers

    csv = _ratings_csv(tmp_path)
    args = ["run", "--ratings", str(csv), "--models", "user-mean", "--resamples", "200"]
    assert _run([*args, "--out", str(tmp_path / "a")]).exit_code == 0
    calls = []
    real = readers.read_ratings
    monkeypatch.setattr(readers, "read_ratings", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert _run([*args, "--out", str(tmp_path / "b")]).exit_code == 0
    assert calls == []  # parsed once, then the verified cache
    assert _run([*args, "--out", str(tmp_path / "c"), "--no-cache"]).exit_code == 0
    assert calls == [1]
    a, b = (next((tmp_path / d).glob("*.json")) for d in ("a", "b"))
    assert (
        json.loads(a.read_text())["dataset"]["hash"] == json.loads(b.read_text())["dataset"]["hash"]
    )


def test_compare_against_another_reference_recomputes_the_paired_differences(tmp_path):
    csv = _ratings_csv(tmp_path)
    out = tmp_path / "o"
    args = ["run", "--ratings", str(csv), "--models", "all", "--out", str(out)]
    assert _run([*args, "--resamples", "200"]).exit_code == 0
    path = next(out.glob("*.json"))
    r = _run(["compare", str(path), "--reference", "bias", "--format", "markdown"])
    assert r.exit_code == 0
    rows = {line.split("|")[1].strip(): line for line in r.output.splitlines() if "|" in line}
    assert "(reference)" in rows["bias"]
    assert "[" in rows["user-mean"].split("|")[4]  # user-mean now has a difference to bias


def test_seeds_repeat_only_models_that_take_a_seed(tmp_path):
    csv = _ratings_csv(tmp_path)
    r = _run_file(csv, "recent-k,svdpp:factors=4:reg=0.1", tmp_path, "--seeds", "0,1")
    doc = _written(r, tmp_path)
    keys = [m["key"] for m in doc["models"]]
    assert keys == [
        "user-mean",
        "recent-k",
        "svdpp:factors=4:reg=0.1@0",
        "svdpp:factors=4:reg=0.1@1",
    ]
    assert list(doc["seed_summary"]) == ["svdpp:factors=4:reg=0.1"]


def test_seeds_give_one_row_per_model_and_per_seed_keeps_the_runs(tmp_path):
    args = "run --dataset synthetic --users 150 --models recent-k,mf:factors=4:reg=0.1:epochs=2"
    args += " --seeds 0,1 --resamples 200"
    doc = _written(_run([*args.split(), "--out", str(tmp_path)]), tmp_path)
    table = {t["key"]: t for t in doc["statistics"]["table"]}
    mf = "mf:factors=4:reg=0.1:epochs=2"
    assert set(table) == {"user-mean", "recent-k", mf}
    assert table[mf]["members"] == [f"{mf}@0", f"{mf}@1"]
    assert table[mf]["metrics"]["rmse"]["method"] == "seeds+bootstrap"
    per_run = {m["key"]: m for m in doc["models"]}
    assert set(per_run) == {"user-mean", "recent-k", f"{mf}@0", f"{mf}@1"}
    mean = sum(per_run[f"{mf}@{s}"]["metrics"]["rmse"]["estimate"] for s in (0, 1)) / 2
    assert table[mf]["metrics"]["rmse"]["estimate"] == pytest.approx(mean)
    for key in ("recent-k", f"{mf}@0", f"{mf}@1"):
        vs = per_run[key]["vs_reference"]["rmse"]
        assert vs["p_adjusted"] >= vs["p_value"]
    path = str(next(tmp_path.glob("*.json")))
    default = _run(["compare", path, "--format", "markdown"]).output
    assert f"| {mf} (2 seeds)" in default and f"{mf}@0" not in default
    per_seed = _run(["compare", path, "--format", "markdown", "--per-seed"]).output
    assert f"| {mf}@0" in per_seed and f"| {mf}@1" in per_seed and "seeds)" not in per_seed


def test_several_test_targets_resample_users(tmp_path):
    args = "run --dataset synthetic --users 120 --models recent-k,bias --test-targets 3".split()
    args += ["--resamples", "300", "--out", str(tmp_path)]
    doc = _written(_run(args), tmp_path)
    path = next(tmp_path.glob("*.json"))
    counts = doc["split"]["counts"]
    assert counts["test"] == 3 * counts["users"]
    assert doc["split"]["params"]["test_targets"] == 3
    assert doc["statistics"]["n_units"] == counts["users"]
    side = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    assert len(side) == counts["test"] and side["user_id"].value_counts().eq(3).all()
    for m in doc["models"]:
        assert m["metrics"]["rmse"]["design_effect"] > 0
    r = _run(["compare", str(path), "--reference", "recent-k", "--format", "markdown"])
    assert r.exit_code == 0 and "| bias" in r.output
    too_many = _run([*args[:-2], "--test-targets", "500", "--out", str(tmp_path / "x")])
    assert too_many.exit_code == 2
    assert "users qualify for --test-targets 1" in " ".join(too_many.output.split())


@pytest.mark.parametrize(
    "flags", [[], ["--no-header", "--columns", "user=0,item=1,rating=2,timestamp=3"]]
)
def test_a_headerless_dat_file_from_the_cli(tmp_path, flags):
    """MovieTweetings' shape: '::', no header, 7-digit zero-padded movie ids, ratings 0-10;
    told from the first line, or said with --no-header and positional --columns."""
    rows = [(u, i, float((u + i) % 11), t) for u, i, _, t in tiny_rows()]
    path = tmp_path / "ratings.dat"
    path.write_text("".join(f"{u}::{i:07d}::{r:g}::{t}\n" for u, i, r, t in rows))
    r = _run_file(path, "user-mean", tmp_path / "o", "--rating-scale", "0,10", *flags)
    doc = _written(r, tmp_path / "o")
    assert doc["dataset"]["n_ratings"] == len(rows)
    side = pd.read_parquet(next((tmp_path / "o").glob("*.predictions.parquet")))
    assert set(side["movie_id"]) <= {i for _, i, _, _ in rows}
