"""The report's context: the results file read once (typed, with its sidecar), the colours
and scale every figure shares, and the run's data reloaded to place each test query.

The data is reloaded from ``run_spec.source``, the results' one serialised form of the data
source, where the run found it (never downloaded here): a catalog dataset in the run's
``--data-dir``, else the folder the run read (``dataset.origin``), else the usual places and
the shipped copy; a ratings file at its recorded path, else beside the results. ``--data-dir``
given to the report is looked at first. The dataset and split hashes are checked against the
results; a copy found elsewhere than the run's is a note, and any failure (the data moved
out of reach, or changed) is returned as a reason (a note in the report), never raised.
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

__all__ = [
    "ReportContext",
    "ReportData",
    "describe_source",
    "load_context",
    "recorded_source",
    "reload_data",
]


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


def recorded_source(doc: ResultsDoc) -> DataSource | None:
    """The data source ``doc`` records (``ResultsDoc.source_record``), or None."""
    rec = doc.source_record
    return None if rec is None else DataSource.from_dict(rec)


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


def _find_file(
    recorded: Path | None, results_path: Path, data_dir: Path | None
) -> tuple[Path | None, list[Path]]:
    """(the file to read, the places looked at): ``data_dir/<name>`` when given, the recorded
    path (relative ones from the results' folder too), then ``<name>`` beside the results."""
    if recorded is None:
        return None, []
    p = Path(recorded)
    looked = [data_dir / p.name] if data_dir is not None else []
    looked += [p] if p.is_absolute() else [p, results_path.parent / p]
    looked.append(results_path.parent / p.name)
    looked = list(dict.fromkeys(looked))
    found = next((c for c in looked if c.is_file()), None)
    return found, looked


@dataclass
class _Reload:
    """The source to reload, with notes on where it was found, or why it cannot be."""

    source: DataSource | None = None
    notes: list[str] = field(default_factory=list)
    reason: str | None = None


def _recorded_folder(ctx: ReportContext) -> Path | None:
    """The dataset folder the run read (``dataset.origin.folder``), when recorded."""
    origin = ctx.doc.dataset.get("origin") if isinstance(ctx.doc.dataset, dict) else None
    folder = origin.get("folder") if isinstance(origin, dict) else None
    return Path(folder) if folder else None


def _reload_source(ctx: ReportContext, data_dir: Path | None) -> _Reload:
    """The run's source, made to read here: files at their recorded paths or beside the
    results, catalog datasets where the run found them and never downloaded, the recorded
    rating scale."""
    source = recorded_source(ctx.doc)
    if source is None:
        return _Reload(reason="the results do not record where the data came from")
    scale = (ctx.low, ctx.high, ctx.step)
    if source.ratings is not None:
        found, looked = _find_file(source.ratings, ctx.path, data_dir)
        if found is None:
            return _Reload(
                reason=f"the ratings file {source.ratings} the run read is not there any more "
                f"(moved or deleted; looked in {', '.join(map(str, looked))}); put it back or "
                f"pass --data-dir DIR holding {source.ratings.name}"
            )
        notes = []
        if found.absolute() != source.ratings.absolute():
            notes.append(f"the ratings file moved: the run read {source.ratings}, read {found}")
        catalog, _ = _find_file(source.catalog, ctx.path, data_dir)
        if source.catalog is not None and catalog is None:
            notes.append(
                f"the catalog {source.catalog} the run read is not there any more: "
                "examples without titles"
            )
        elif catalog is not None and source.catalog is not None and catalog != source.catalog:
            notes.append(f"the catalog moved: the run read {source.catalog}, read {catalog}")
        src = dataclasses.replace(
            source, dataset=None, ratings=found, catalog=catalog, rating_scale=scale
        )
        return _Reload(src, notes)
    if source.dataset == "synthetic":
        return _Reload(source)
    recorded = _recorded_folder(ctx)
    where = data_dir or source.data_dir
    if where is None and recorded is not None and recorded.is_dir():
        where = recorded.parent
    src = dataclasses.replace(source, data_dir=where, offline=True, rating_scale=scale)
    return _Reload(src)


def reload_data(ctx: ReportContext, data_dir: Path | None) -> str | None:
    """Reload the data and split of the run into ``ctx.data``. Returns why not, or None."""
    from bench.data.loading import load_source
    from bench.data.split import SplitParams, make_split

    doc = ctx.doc
    if ctx.frame is None:
        return "no predictions sidecar to align the data with"
    plan = _reload_source(ctx, data_dir)
    if plan.source is None:
        return plan.reason or "the results do not record where the data came from"
    source = plan.source
    what = describe_source(source)
    try:
        loaded = load_source(source)
    except Exception as e:  # a report never crashes on data it cannot get back
        hint = " (pass --data-dir)" if what.startswith("catalog") else ""
        return f"could not reload the {what}{hint}: {type(e).__name__}: {e}"
    inter = loaded.interactions
    origin = loaded.info.get("origin") or {}
    read_from = origin.get("folder") or origin.get("ratings") or what
    if inter.hash != doc.dataset_hash:
        return (
            f"the {what} has changed since the run: the copy read ({read_from}) has data hash "
            f"{inter.hash}, the run's was {doc.dataset_hash}"
        )
    recorded = _recorded_folder(ctx)
    if origin.get("folder") and recorded is not None and Path(origin["folder"]) != recorded:
        plan.notes.append(
            f"the data moved: the run read {recorded}, this report read {origin['folder']} "
            "(the same data: hashes match)"
        )
    ctx.missing.extend(plan.notes)
    try:
        split = make_split(inter, SplitParams.from_dict(doc.split["params"]))
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
