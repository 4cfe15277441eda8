"""The report: figures and report.md from real small runs, and from fabricated results with
learning curves, seeds, an embedding ablation and a failed model."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bench.data.loading import DataSource
from bench.data.split import SplitParams
from bench.report import compare_figure, model_colors, write_report
from bench.results import (
    load_results,
    read_predictions,
    read_results,
    sidecar_path,
    write_results,
)
from bench.runkey import RunKey
from bench.runner import execute
from bench.spec import Output, RunSpec, Statistics
from predictors.registry import parse_models

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE_FIGURES = ("forest.png", "pred-vs-actual.png", "error-hist.png", "buckets.png")


def _write_tiny_csv(folder: Path, n_users: int = 40, seed: int = 0) -> tuple[Path, Path]:
    """A small MovieLens-like log: users with 14-40 ratings on a 0.5-5 half-star grid,
    a few popular movies and a long tail, plus a catalog with titles."""
    rng = np.random.default_rng(seed)
    rows = []
    n_items = 60
    pop = 1.0 / np.arange(1, n_items + 1)
    pop /= pop.sum()
    item_bias = rng.normal(0, 0.6, n_items)
    for u in range(1, n_users + 1):
        n = int(rng.integers(14, 41))
        items = rng.choice(n_items, size=n, replace=False, p=pop)
        ub = rng.normal(0, 0.5)
        r = np.clip(
            np.round((3.5 + ub + item_bias[items] + rng.normal(0, 0.7, n)) * 2) / 2, 0.5, 5.0
        )
        t0 = 1_000_000_000 + u * 1000
        for j in range(n):
            rows.append((u, 100 + int(items[j]), float(r[j]), t0 + j * 60))
    ratings = folder / "ratings.csv"
    pd.DataFrame(rows, columns=["userId", "movieId", "rating", "timestamp"]).to_csv(
        ratings, index=False
    )
    catalog = folder / "movies.csv"
    pd.DataFrame(
        {
            "movieId": np.arange(100, 100 + n_items),
            "title": [f"Film {i} | part {i % 3} (19{50 + i})" for i in range(n_items)],
            "genres": ["Drama|Comedy"] * n_items,
        }
    ).to_csv(catalog, index=False)
    return ratings, catalog


def _run(folder: Path, ratings: Path, catalog: Path | None) -> Path:
    spec = RunSpec(
        source=DataSource(dataset=None, ratings=ratings, catalog=catalog),
        split=SplitParams(min_history=10, samples_per_user=3),
        models=tuple(parse_models("global-mean,user-mean,recent-k,bias")),
        stats=Statistics(resamples=200),
        output=Output(out=folder / "results"),
    )
    return execute(spec).path


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    ratings, catalog = _write_tiny_csv(folder)
    return _run(folder, ratings, catalog)


def _curve(epochs: int, start: float, floor: float, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    out = []
    for e in range(1, epochs + 1):
        v = floor + (start - floor) * np.exp(-e / 3) + 0.004 * max(0, e - 6) + rng.normal(0, 0.003)
        out.append(
            {
                "epoch": e,
                "train_loss": 0.06 * np.exp(-e / 4) + 0.02,
                "val_rmse": float(v),
                "val_mae": float(v * 0.78),
                "lr": 1e-3,
                "seconds": 0.1,
            }
        )
    return out


def fabricate(src: Path, dest: Path, *, failed: bool = True) -> Path:
    """From a real run, a results file with: an epoch-trained model over two seeds (keys
    ``attn@0``, ``attn@1``), a second learned model, knn over two embeddings and two seeds,
    and (optionally) a failed model. Predictions are perturbed copies of real ones."""
    doc = copy.deepcopy(load_results(src))
    frame = read_predictions(src, doc)
    assert frame is not None
    base = next(m for m in doc["models"] if m["key"] == "bias")
    rng = np.random.default_rng(1)
    truth = frame["truth"].to_numpy(np.float32)

    def add(key: RunKey, shrink: float, curve: list[dict[str, Any]] | None) -> None:
        m = copy.deepcopy(base)
        pred = frame["pred:bias"].to_numpy(np.float32)
        pred = np.clip(pred + shrink * (truth - pred) + rng.normal(0, 0.05, len(pred)), 0.5, 5)
        err = pred - truth
        r, a = float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))
        m.update(
            key=str(key),
            run_key=key.to_dict(),
            label=key.model,
            name=key.model,
            seed=key.seed or 0,
            embedding=key.embedding,
            group=str(key.group),
            learning_curve=curve,
        )
        m["metrics"] = {
            "rmse": {"estimate": r, "low": r - 0.05, "high": r + 0.05, "method": "percentile"},
            "mae": {"estimate": a, "low": a - 0.04, "high": a + 0.04, "method": "percentile"},
        }
        m["fit_info"] = (
            {"best_epoch": int(np.argmin([c["val_rmse"] for c in curve])) + 1} if (curve) else {}
        )
        doc["models"].append(m)
        frame[f"pred:{key}"] = pred.astype(np.float32)
        frame[f"fallback:{key}"] = np.zeros(len(pred), dtype=bool)

    add(RunKey("attn", None, 0), 0.15, _curve(12, 1.2, 0.95, 0))
    add(RunKey("attn", None, 1), 0.12, _curve(12, 1.25, 0.96, 1))
    add(RunKey("transformer"), 0.1, _curve(8, 1.3, 0.98, 2))
    for emb, s in (("genre", 0.1), ("random", -0.05), ("kg-gnn-bert", 0.2)):
        add(RunKey("knn", emb, 0), s, None)
        add(RunKey("knn", emb, 1), s + 0.01, None)
    add(RunKey("mf", "genre"), 0.05, None)
    add(RunKey("mf", "random"), 0.0, None)
    if failed:
        doc["models"].append(
            {
                **copy.deepcopy(base),
                "key": "broken",
                "run_key": RunKey("broken").to_dict(),
                "group": "broken",
                "label": "broken",
                "name": "broken",
                "status": "failed",
                "error": "RuntimeError: CUDA out of memory | tried to allocate 2 GiB",
                "metrics": None,
                "vs_reference": None,
            }
        )
    doc.pop("predictions_file", None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_results(dest, doc, frame)
    return dest


@pytest.fixture(scope="module")
def fabricated(real_run: Path) -> Path:
    return fabricate(real_run, real_run.parent.parent / "fab" / "fab.json")


def _links(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md)


# ---------------------------------------------------------------------------------- tests


def test_real_run_produces_every_figure(real_run: Path) -> None:
    md_path = write_report(real_run)
    assert md_path.name == "report.md"
    assert md_path.parent == real_run.with_name(f"{real_run.stem}-report")
    md = md_path.read_text(encoding="utf-8")
    for name in BASE_FIGURES:
        png = md_path.parent / name
        assert png.read_bytes()[:8] == PNG_MAGIC, name
        assert name in _links(md)
    assert set(_links(md)) <= {p.name for p in md_path.parent.glob("*.png")}
    doc = load_results(real_run)
    for m in doc["models"]:
        assert f"| {m['key']} " in md  # the main table names every model
    # examples: titles from the catalog (with the '|' escaped) and five tables of models
    assert md.count("### Example ") == 5
    assert "Film " in md and "\\|" in md
    assert "★" in md
    assert "## What's missing" in md and "no learning curve" in md
    assert "data not reloadable" not in md
    # no leftovers of the temp folder
    assert not [p for p in md_path.parent.parent.iterdir() if p.name.endswith(".tmp")]


def test_existing_report_is_never_overwritten(real_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    first = write_report(real_run, out, examples=0)
    assert first.parent == tmp_path / "rep-2"
    assert (out / "mine.txt").read_text() == "keep me"
    second = write_report(real_run, out, examples=0)
    assert second.parent == tmp_path / "rep-3"
    assert "## Prediction examples" not in first.read_text()


def test_fabricated_run_learning_curves_ablation_and_missing(fabricated: Path) -> None:
    md_path = write_report(fabricated, examples=2, seed=3)
    md = md_path.read_text(encoding="utf-8")
    links = _links(md)
    for name in (*BASE_FIGURES, "learning-curves.png", "ablation.png"):
        assert name in links, name
        assert (md_path.parent / name).read_bytes()[:8] == PNG_MAGIC
    doc = load_results(fabricated)
    for m in doc["models"]:
        assert m["key"] in md
    missing = md.split("## What's missing", 1)[1]
    assert "`broken` **failed**" in missing and "CUDA out of memory \\| tried" in missing
    assert "`knn/genre@0`" in missing  # no learning curve
    assert "`attn@0`" not in missing  # has one
    # the ablation table: knn and mf rows, one column per embedding
    assert re.search(r"\| model\s+\| genre\s+\| random\s+\| kg-gnn-bert", md)


def test_no_sidecar_and_no_curves_still_reports(real_run: Path, tmp_path: Path) -> None:
    doc = json.loads(real_run.read_text())
    doc["models"][0].update(status="failed", error="ValueError: boom", metrics=None)
    doc.pop("predictions_file", None)
    path = tmp_path / "nosidecar.json"
    path.write_text(json.dumps(doc))
    assert not sidecar_path(path).exists()
    md = write_report(path).read_text(encoding="utf-8")
    assert "forest.png" in _links(md)
    assert "pred-vs-actual.png" not in md
    missing = md.split("## What's missing", 1)[1]
    assert "no predictions sidecar" in missing
    assert f"`{doc['models'][0]['key']}` **failed**: ValueError: boom" in missing
    assert "no learning curve" in missing


def test_data_not_reloadable_still_reports(tmp_path: Path) -> None:
    ratings, catalog = _write_tiny_csv(tmp_path, n_users=25, seed=4)
    path = _run(tmp_path, ratings, catalog)
    ratings.unlink()
    md_path = write_report(path)
    md = md_path.read_text(encoding="utf-8")
    assert "data not reloadable" in md
    assert "buckets.png" not in md and not (md_path.parent / "buckets.png").exists()
    assert "### Example" not in md
    for name in ("forest.png", "pred-vs-actual.png", "error-hist.png"):
        assert (md_path.parent / name).is_file()


def test_changed_data_is_detected(tmp_path: Path) -> None:
    ratings, catalog = _write_tiny_csv(tmp_path, n_users=25, seed=5)
    path = _run(tmp_path, ratings, catalog)
    df = pd.read_csv(ratings)
    df.loc[0, "rating"] = 5.0 if df.loc[0, "rating"] != 5.0 else 4.0
    df.to_csv(ratings, index=False)
    md = write_report(path).read_text(encoding="utf-8")
    assert "has changed since the run" in md


def test_colour_mapping_is_stable() -> None:
    keys = [
        RunKey("user-mean"),
        RunKey("bias"),
        RunKey("knn", "genre", 0),
        RunKey("knn", "genre", 1),
        RunKey("knn", "random", 0),
        RunKey("mf"),
    ]
    a = model_colors(keys)
    assert a == model_colors(list(keys))
    assert a[keys[2]] == a[keys[3]]  # seeds share their model's colour
    assert len({a[k] for k in (keys[0], keys[1], keys[2], keys[4], keys[5])}) == 5
    # the mapping follows key order only: first model gets tab10's blue
    assert a[RunKey("user-mean")] == "#1f77b4"
    assert model_colors([RunKey("bias"), RunKey("user-mean")])[RunKey("bias")] == "#1f77b4"
    many = model_colors([RunKey(f"m{i}") for i in range(40)])
    assert len(set(many.values())) >= 20


def test_run_keys_come_from_the_records(fabricated: Path) -> None:
    """The report reads a record's parts (``RunKey.from_record``), never its key text: an
    option value holding '/' is not an embedding."""
    k = RunKey.from_record(
        {
            "key": "knn:k=20/genre@1",
            "label": "knn:k=20",
            "group": "knn:k=20/genre",
            "embedding": "genre",
            "seed": 1,
        }
    )
    assert (str(k.group), k.model, k.embedding, k.seed) == (
        "knn:k=20/genre",
        "knn:k=20",
        "genre",
        1,
    )
    k = RunKey.from_record({"key": "recent-k:k=5", "label": "recent-k:k=5", "seed": 0})
    assert (str(k.group), k.model, k.embedding, k.seed) == (
        "recent-k:k=5",
        "recent-k:k=5",
        None,
        None,
    )
    assert RunKey.from_record({"key": "x:path=a/b=c", "label": "x:path=a/b=c"}).embedding is None
    doc = read_results(fabricated)
    knn = doc.model(RunKey("knn", "genre", 1))
    assert knn is not None and knn.embedding == "genre" and knn.seed == 1
    assert knn.pred is not None and doc.predictions is not None
    assert np.array_equal(knn.pred, doc.predictions["pred:knn/genre@1"].to_numpy(np.float32))


def test_compare_figure(real_run: Path, fabricated: Path, tmp_path: Path) -> None:
    out = compare_figure([real_run, fabricated], tmp_path / "cmp.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    single = compare_figure([real_run], tmp_path / "one.png")
    assert single.is_file()
