"""What each report figure plots, checked on the values it drew (``Plot.data`` and the
matplotlib artists) against the results file and its sidecar; and that a metric added to
``bench.stats.METRIC_TABLE`` reaches compare's tables and the report's figures unedited."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import test_report as tr

from bench import stats
from bench.compare import build_comparison, render_markdown
from bench.report.ablation import ablation_figure
from bench.report.buckets import bucket_figure, bucket_sets, bucket_stats
from bench.report.context import load_context, reload_data
from bench.report.curves import learning_figures
from bench.report.forest import compare_plot, forest_figure
from bench.report.panels import error_hist_figure, panel_models, pred_vs_actual_figure
from bench.results import read_results
from bench.runkey import RunKey


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    ratings, catalog = tr._write_tiny_csv(folder)
    return tr._run(folder, ratings, catalog)


@pytest.fixture(scope="module")
def fabricated(real_run: Path) -> Path:
    return tr.fabricate(real_run, real_run.parent.parent / "fab" / "fab.json")


def test_forest_plots_each_models_metrics_and_differences(fabricated: Path) -> None:
    ctx = load_context(fabricated)
    plot = forest_figure(ctx)
    assert plot is not None
    data = plot.data
    for m in ctx.ok:
        mine = data[data["key"] == m.key]
        for metric in stats.METRICS:
            row = mine[(mine["panel"] == "metric") & (mine["metric"] == metric)].iloc[0]
            want = m.metrics[metric]
            assert (row["estimate"], row["low"], row["high"]) == pytest.approx(
                (want["estimate"], want["low"], want["high"])
            )
            diff = mine[(mine["panel"] == "difference") & (mine["metric"] == metric)]
            if str(m.key) == ctx.reference:
                assert diff.empty
            else:
                assert diff["estimate"].iloc[0] == pytest.approx(m.vs_reference[metric]["estimate"])
                assert diff["verdict"].iloc[0] == m.vs_reference[metric]["verdict"]
    # best RMSE on top: the row height falls as RMSE grows
    rm = data[(data["panel"] == "metric") & (data["metric"] == "rmse")]
    assert rm.sort_values("estimate")["y"].is_monotonic_decreasing
    # every interval of the data is an error bar of the figure, at its estimate
    ax_abs = plot.figure.axes[0]
    drawn = sorted(float(c.lines[0].get_xdata()[0]) for c in ax_abs.containers)
    assert drawn == pytest.approx(sorted(data[data["panel"] == "metric"]["estimate"]))


def test_pred_vs_actual_and_error_histograms_plot_the_sidecar(fabricated: Path) -> None:
    ctx = load_context(fabricated)
    models, _ = panel_models(ctx)
    frame = ctx.frame
    assert frame is not None
    scatter = pred_vs_actual_figure(ctx, models, seed=0)
    assert scatter is not None
    step = ctx.step or 0.5
    for ax, m in zip(scatter.figure.axes, models, strict=False):
        mine = scatter.data[scatter.data["key"] == m.key]
        rows = mine["query"].to_numpy()
        np.testing.assert_allclose(mine["predicted"], frame[f"pred:{m.key}"].to_numpy()[rows])
        np.testing.assert_allclose(mine["actual"], frame["truth"].to_numpy()[rows])
        assert np.all(np.abs(mine["x"] - mine["actual"]) <= 0.32 * step + 1e-9)
        np.testing.assert_allclose(
            ax.collections[0].get_offsets(), mine[["x", "predicted"]].to_numpy()
        )
    hist = error_hist_figure(ctx, models)
    assert hist is not None
    for ax, m in zip(hist.figure.axes, models, strict=False):
        mine = hist.data[hist.data["key"] == m.key]
        err = frame[f"pred:{m.key}"].to_numpy(np.float64) - frame["truth"].to_numpy(np.float64)
        edges = np.r_[mine["low"].to_numpy(), mine["high"].to_numpy()[-1]]
        want, _ = np.histogram(np.clip(err, edges[0], edges[-1]), bins=edges)
        assert mine["count"].tolist() == want.tolist()
        assert int(mine["count"].sum()) == len(frame)
        assert [p.get_height() for p in ax.patches] == want.tolist()


def test_learning_curves_plot_the_recorded_epochs(fabricated: Path) -> None:
    ctx = load_context(fabricated)
    (plot,) = learning_figures(ctx)
    doc = read_results(fabricated, predictions=False)
    learned = [m for m in doc.models if m.learning_curve]
    assert set(plot.data["key"]) == {m.key for m in learned}
    for m in learned:
        mine = plot.data[plot.data["key"] == m.key]
        assert mine["val_rmse"].tolist() == pytest.approx([r["val_rmse"] for r in m.learning_curve])
        assert mine.loc[mine["best"], "epoch"].tolist() == [m.fit_info["best_epoch"]]
    # the seeds of attn share one panel
    assert plot.data.loc[plot.data["key"].map(lambda k: k.model == "attn"), "group"].nunique() == 1


def test_buckets_plot_rmse_of_the_queries_in_each_bucket(real_run: Path) -> None:
    ctx = load_context(real_run)
    assert reload_data(ctx, None) is None and ctx.data is not None
    models, _ = panel_models(ctx)
    sets = bucket_sets(ctx)
    bstats = [bucket_stats(ctx, b, models, seed=0) for b in sets]
    data = bucket_figure(ctx, sets, bstats, models).data
    truth = ctx.truth
    for b in sets:
        mine = data[(data["bucketing"] == b.title) & (data["panel"] == "metric")]
        for m in models:
            rows = mine[mine["key"] == m.key]
            assert int(rows["n"].sum()) == len(truth)
            for j, label in enumerate(b.labels):
                sel = b.index == j
                by_hand = np.sqrt(np.mean((ctx.pred(m)[sel] - truth[sel]) ** 2))
                got = rows[rows["bucket"] == label]["estimate"].iloc[0]
                assert got == pytest.approx(by_hand)
        ref = data[(data["bucketing"] == b.title) & (data["panel"] == "difference")]
        assert ctx.reference not in {str(k) for k in ref["key"]}


def test_ablation_and_compare_plot_the_files_numbers(real_run: Path, fabricated: Path) -> None:
    ctx = load_context(fabricated)
    abl = ablation_figure(ctx)
    assert abl is not None
    doc = read_results(fabricated, predictions=False)
    cell = abl[0].data.set_index(["model", "embedding"])
    for emb in ("genre", "random", "kg-gnn-bert"):
        seeds = [doc.model(RunKey("knn", emb, s)) for s in (0, 1)]
        want = np.mean([m.metrics["rmse"]["estimate"] for m in seeds if m is not None])
        assert cell.loc[("knn", emb), "value"] == pytest.approx(want)
        assert cell.loc[("knn", emb), "n_seeds"] == 2
    assert cell.loc[("mf", "genre"), "n_seeds"] == 1
    docs = [read_results(p, predictions=False) for p in (real_run, fabricated)]
    plot = compare_plot(docs, build_comparison([real_run, fabricated]))
    drawn = plot.data.dropna(subset=["estimate"])
    for name, d in zip(("#1", "#2"), docs, strict=True):
        for m in d.models:
            rows = drawn[(drawn["run"] == name) & (drawn["key"] == m.key)]
            if m.scored:
                assert rows["estimate"].iloc[0] == pytest.approx(m.metrics["rmse"]["estimate"])
            else:
                assert rows.empty
    tags = plot.data.dropna(subset=["tag"])
    assert "#2: failed" in tags[tags["key"] == RunKey("broken")]["tag"].tolist()


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def test_a_metric_added_to_the_table_reaches_compare_and_the_report(
    real_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = stats.Metric("mse", "MSE", np.square, _identity)
    monkeypatch.setattr(stats, "METRIC_TABLE", (*stats.METRIC_TABLE, extra))
    monkeypatch.setattr(stats, "METRICS", (*stats.METRICS, "mse"))
    # the results file as a run with the extra metric would write it
    doc = json.loads(real_run.read_text())
    for m in doc["models"]:
        r = m["metrics"]["rmse"]
        m["metrics"]["mse"] = {k: (v**2 if isinstance(v, float) else v) for k, v in r.items()}
    path = tmp_path / real_run.name
    path.write_text(json.dumps(doc))
    side = real_run.with_name(doc["predictions_file"])
    (tmp_path / side.name).write_bytes(side.read_bytes())
    # compare: its own columns, and paired differences computed for it
    md = render_markdown(build_comparison([path], reference="bias", n_resamples=200))
    assert "| MSE [95% CI]" in md and "ΔMSE vs bias" in md
    row = next(line for line in md.splitlines() if line.startswith("| user-mean "))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    mse = doc["models"][[m["key"] for m in doc["models"]].index("user-mean")]["metrics"]["mse"]
    assert cells[3].startswith(f"{mse['estimate']:.4f}")
    assert cells[8].startswith(("+", "-"))  # ΔMSE vs bias, from the sidecars
    # the forest plots it for every model
    plot = forest_figure(load_context(path))
    assert plot is not None
    assert len(plot.data[(plot.data["metric"] == "mse") & (plot.data["panel"] == "metric")]) == len(
        doc["models"]
    )
