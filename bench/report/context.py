"""The report's context: the results file read once (typed, with its sidecar), the colours
and scale every figure shares, and the run's data reloaded to place each test query.

The data is reloaded from ``run_spec.source``, the results' one serialised form of the data
source (never downloaded here); the dataset and split hashes are checked against the
results, and any failure is returned as a reason (a note in the report), never raised.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.data.loading import DataSource
from bench.report.style import model_colors, unit
from bench.results import ModelRecord, ResultsDoc, read_predictions, read_results
from bench.runkey import RunKey

__all__ = ["ReportContext", "ReportData", "describe_source", "load_context", "reload_data"]


@dataclass
class ReportData:
    """What the reloaded data adds, aligned row by row with the predictions sidecar."""

    hist_len: NDArray[np.int64]  # (K,) events before each test target
    popularity: NDArray[np.int64]  # (K,) training ratings of each target movie
    test_pos: NDArray[np.int64]  # (K,) row of each test target in ``item``/``rating``
    user_start: NDArray[np.int64]  # (K,) first row of each test user
    item_id: NDArray[np.int64]  # (N,) original movie id of every event
    rating: NDArray[np.float32]  # (N,) rating of every event
    timestamp: NDArray[np.int64]  # (N,) seconds
    titles: dict[int, str] | None


@dataclass
class ReportContext:
    path: Path
    doc: ResultsDoc
    low: float
    high: float
    step: float | None
    unit: str
    colors: dict[RunKey, str]
    reference: str | None  # the text form of the reference key
    ok: list[ModelRecord]  # models with status ok and metrics, in file order
    data: ReportData | None = None
    missing: list[str] = field(default_factory=list)

    @property
    def frame(self) -> pd.DataFrame | None:
        return self.doc.predictions

    def has_pred(self, m: ModelRecord) -> bool:
        return m.pred is not None

    def pred(self, m: ModelRecord) -> NDArray[np.float64]:
        assert m.pred is not None
        return m.pred.astype(np.float64)

    @property
    def truth(self) -> NDArray[np.float64]:
        assert self.frame is not None
        return self.frame["truth"].to_numpy(np.float64)

    @property
    def ref_model(self) -> ModelRecord | None:
        """The reference's record when it has predictions."""
        m = None if self.reference is None else self.doc.model(self.reference)
        return m if m is not None and m.pred is not None else None


def load_context(results_path: Path) -> ReportContext:
    """Read the results file (raising ``ResultsError`` when it is unreadable) and its sidecar
    (an unreadable sidecar becomes a note)."""
    doc = read_results(results_path, predictions=False)
    notes: list[str] = []
    try:
        doc = doc.with_predictions(read_predictions(results_path, doc.raw))
    except Exception as e:
        notes.append(f"the predictions sidecar is unreadable ({e})")
    low, high, step = doc.scale
    return ReportContext(
        path=results_path,
        doc=doc,
        low=low,
        high=high,
        step=step,
        unit=unit(high),
        colors=model_colors([m.key for m in doc.models]),
        reference=doc.reference,
        ok=[m for m in doc.models if m.scored],
        missing=notes,
    )


def describe_source(source: DataSource | None) -> str:
    if source is None:
        return "an unrecorded source"
    if source.ratings is not None:
        return f"ratings file '{Path(source.ratings).name}'"
    if source.dataset == "synthetic":
        return "synthetic generator"
    if source.dataset is not None:
        return f"catalog dataset '{source.dataset}'"
    return "an unrecorded source"


def _find_file(name: Path | None, results_path: Path) -> Path | None:
    if name is None:
        return None
    p = Path(name)
    if p.exists() or p.is_absolute():
        return p
    beside = results_path.parent / p
    return beside if beside.exists() else p


def _reload_source(ctx: ReportContext, data_dir: Path | None) -> DataSource | None:
    """The run's source, made to read here: files looked up beside the results too, catalog
    datasets in ``data_dir`` and never downloaded, the recorded rating scale."""
    source = ctx.doc.source()
    if source is None:
        return None
    scale = (ctx.low, ctx.high, ctx.step)
    if source.ratings is not None:
        return dataclasses.replace(
            source,
            dataset=None,
            ratings=_find_file(source.ratings, ctx.path),
            catalog=_find_file(source.catalog, ctx.path),
            rating_scale=scale,
        )
    if source.dataset == "synthetic":
        return source
    return dataclasses.replace(source, data_dir=data_dir, download=False, rating_scale=scale)


def reload_data(ctx: ReportContext, data_dir: Path | None) -> str | None:
    """Reload the data and split of the run into ``ctx.data``. Returns why not, or None."""
    from bench.data.loading import load_source
    from bench.data.split import SplitParams, make_split

    doc = ctx.doc
    if ctx.frame is None:
        return "no predictions sidecar to align the data with"
    source = _reload_source(ctx, data_dir)
    if source is None:
        return "the results do not record where the data came from (run_spec.source)"
    what = describe_source(source)
    try:
        loaded = load_source(source)
    except Exception as e:  # a report never crashes on data it cannot get back
        hint = " (pass --data-dir)" if what.startswith("catalog") else ""
        return f"could not reload the {what}{hint}: {type(e).__name__}: {e}"
    inter = loaded.interactions
    if inter.hash != doc.dataset_hash:
        return (
            f"the {what} has changed since the run (data hash {inter.hash}, "
            f"results {doc.dataset_hash})"
        )
    try:
        split = make_split(inter, SplitParams(**doc.split["params"]))
    except Exception as e:
        return f"could not rebuild the split: {type(e).__name__}: {e}"
    if split.hash != doc.split_hash:
        return f"the rebuilt split {split.hash} differs from the run's {doc.split_hash}"
    users = inter.user_ids[split.test_user]
    movies = inter.item_ids[inter.item[split.test_pos]]
    frame = ctx.frame
    same = (
        len(frame) == len(users)
        and np.array_equal(frame["user_id"].to_numpy(np.int64), users)
        and np.array_equal(frame["movie_id"].to_numpy(np.int64), movies)
    )
    order = np.arange(len(users))
    if not same:
        keyed = pd.DataFrame({"user_id": users, "movie_id": movies, "row": order})
        m = frame[["user_id", "movie_id"]].merge(keyed, how="left", on=["user_id", "movie_id"])
        if len(m) != len(frame) or m["row"].isna().any():
            return "the predictions sidecar does not match the rebuilt split's test queries"
        order = m["row"].to_numpy(np.int64)
    test_pos = split.test_pos[order]
    start = inter.user_offsets[:-1][split.test_user[order]]
    fit_items = split.fit_store(inter).item
    counts = np.bincount(fit_items, minlength=inter.n_items).astype(np.int64)
    titles = loaded.catalog.titles_by_id() if loaded.catalog is not None else None
    ctx.data = ReportData(
        hist_len=(test_pos - start).astype(np.int64),
        popularity=counts[inter.item[test_pos]],
        test_pos=test_pos.astype(np.int64),
        user_start=start.astype(np.int64),
        item_id=inter.item_ids[inter.item],
        rating=inter.rating,
        timestamp=inter.timestamp,
        titles=titles,
    )
    return None
