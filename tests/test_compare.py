"""bench.compare across runs: each run's own predictions are compared, not the first's."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import test_report as tr

from bench.compare import build_comparison, render_markdown
from bench.results import load_results, read_predictions, write_results
from bench.runkey import RunKey


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    ratings, catalog = tr._write_tiny_csv(folder, n_users=80, seed=2)
    return tr._run(folder, ratings, catalog)


def test_same_model_across_runs_is_compared_on_each_runs_predictions(
    real_run: Path, tmp_path: Path
) -> None:
    doc = copy.deepcopy(load_results(real_run))
    frame = read_predictions(real_run, doc)
    assert frame is not None
    truth = frame["truth"].to_numpy(np.float64)
    worse = np.clip(frame["pred:bias"].to_numpy(np.float64) + 0.8, 0.5, 5.0)
    frame["pred:bias"] = worse.astype(np.float32)
    doc.pop("predictions_file", None)
    other = write_results(tmp_path / "worse.json", doc, frame)

    c = build_comparison([real_run, other], n_resamples=200)
    cross = {cr.key: cr for cr in c.cross}
    base_pred = read_predictions(real_run, load_results(real_run))["pred:bias"].to_numpy()  # type: ignore[index]
    by_hand = np.sqrt(np.mean((worse.astype(np.float32) - truth) ** 2)) - np.sqrt(
        np.mean((base_pred.astype(np.float64) - truth) ** 2)
    )
    d = cross[RunKey("bias")].diff
    assert d is not None and d["estimate"] == pytest.approx(by_hand, abs=1e-6)
    assert d["estimate"] > 0.05 and d["verdict"] == "worse"
    # models left alone are the same in both runs
    same = cross[RunKey("user-mean")].diff
    assert same is not None and same["estimate"] == pytest.approx(0.0, abs=1e-9)
    md = render_markdown(c)
    assert "### Same model across runs (vs #1)" in md and "| worse" in md
