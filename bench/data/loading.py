"""From a data source spec (catalog dataset, local ratings file, or synthetic) to loaded,
dense Interactions plus the optional movie catalog and item embeddings.

``Loaded.info`` is what a run records in its results' ``dataset`` section beside the hash:
``source`` (``DataSource.describe``), ``origin`` (which copy was read: for a catalog dataset
``locate_dataset``'s ``data_dir`` / ``env`` / ``cache`` / ``shipped`` / ``downloaded`` with its
absolute folder; for files their absolute paths), ``reading`` (how each file's header line
was decided, ``bench.data.readers.table.plan_table``) and ``notes`` (decisions a run
announces: a headerless file read as data, a latin-1 file, the shipped copy used).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.data.types import Catalog, Interactions, build_interactions
from bench.embeddings.align import align_embeddings  # re-exported: its home is bench.embeddings
from bench.errors import ConfigError
from predictors.types import ItemEmbeddings, RatingScale

if TYPE_CHECKING:
    from bench.data.readers.table import TableOptions

__all__ = ["DEFAULT_DATASET", "DataSource", "Loaded", "align_embeddings", "load_source"]

DEFAULT_DATASET = "ml-latest-small"  # what a run reads when given neither dataset nor ratings


_PATH_FIELDS = ("ratings", "catalog", "data_dir")


@dataclass(frozen=True)
class DataSource:
    """Where the ratings come from: exactly one of ``dataset`` or ``ratings`` (neither:
    the default dataset, ml-latest-small). Both given is a ``ConfigError``. Paths are made
    absolute (``~`` expanded), so that a recorded source reads the same files from any
    folder.

    ``header``: whether the ratings file's first line names its columns; None (default):
    decided from that line (a line of numbers where ids and ratings are expected is data).
    ``columns`` maps roles to column names, or to positions (``{"user": "0", ...}``)."""

    dataset: str | None = None
    ratings: Path | None = None
    catalog: Path | None = None
    columns: dict[str, str] = field(default_factory=dict)  # role -> column name
    sep: str | None = None
    rating_scale: tuple[float, float, float | None] | None = None
    data_dir: Path | None = None
    download: bool = True
    synthetic: dict[str, Any] = field(default_factory=dict)  # make_synthetic options
    cache: bool = True  # reuse a verified binary cache of the parsed ratings
    time_unit: str | None = None  # unit of integer timestamps (s, ms, us, ns); None: detect
    header: bool | None = None  # the ratings file's first line names its columns; None: detect

    def __post_init__(self) -> None:
        if self.ratings is not None and self.dataset is not None:
            raise ConfigError("give either --dataset or --ratings, not both")
        if self.ratings is None and self.dataset is None:
            object.__setattr__(self, "dataset", DEFAULT_DATASET)
        for k in _PATH_FIELDS:
            v = getattr(self, k)
            if v is not None:
                object.__setattr__(self, k, Path(os.path.abspath(Path(v).expanduser())))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, every field (paths as text): the one serialised form of a source, as
        runs record it in ``run_spec.source``; ``from_dict`` rebuilds the identical source."""
        d = asdict(self)
        for k in _PATH_FIELDS:
            d[k] = None if d[k] is None else str(d[k])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSource:
        """The source ``to_dict`` wrote (paths back to ``Path``, the scale to a tuple). A
        record with a ``ratings`` file gets ``dataset = None``: older files recorded the default
        dataset beside a file."""
        src = dict(d)
        for k in _PATH_FIELDS:
            src[k] = None if src.get(k) is None else Path(src[k])
        if src.get("rating_scale") is not None:
            src["rating_scale"] = tuple(src["rating_scale"])
        if src.get("ratings") is not None:
            src["dataset"] = None
        return cls(**src)

    def describe(self) -> dict[str, Any]:
        scale = None if self.rating_scale is None else list(self.rating_scale)
        if self.ratings is not None:
            return {
                "kind": "file",
                "ratings": str(self.ratings),
                "catalog": None if self.catalog is None else str(self.catalog),
                "columns": dict(self.columns),
                "sep": self.sep,
                "rating_scale": scale,
                "time_unit": self.time_unit,
                "header": self.header,
            }
        if self.dataset == "synthetic":
            return {"kind": "synthetic", "options": dict(self.synthetic)}
        return {
            "kind": "catalog",
            "dataset": self.dataset,
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "rating_scale": scale,
            "time_unit": self.time_unit,
        }


@dataclass(frozen=True)
class Loaded:
    interactions: Interactions
    catalog: Catalog | None
    embeddings: ItemEmbeddings | None
    info: dict[str, Any]


def load_source(src: DataSource) -> Loaded:
    """Load and dense-code the ratings of ``src``. Raises ``DataError``/``ConfigError`` with
    a message naming the file, column or option at fault."""
    scale = None
    if src.rating_scale is not None:
        lo, hi, step = src.rating_scale
        scale = RatingScale(lo, hi, step)
    if src.ratings is not None:
        from bench.data import readers
        from bench.data.readers.table import plan_table

        path = Path(src.ratings)
        options: TableOptions = {}
        if src.columns:
            options["columns"] = dict(src.columns)
        if src.sep is not None:
            options["sep"] = src.sep
        if src.header is not None:
            options["header"] = src.header
        plan = plan_table(path, readers.DEFAULT_RATING_COLUMNS, options) if path.is_file() else None
        kwargs: dict[str, Any] = {
            **(plan.options if plan is not None else options),
            "scale": scale,
            "time_unit": src.time_unit,
        }

        def build() -> Interactions:
            return build_interactions(readers.read_ratings(path, **kwargs), name=path.name)

        inter = _cached(path, build, {"reader": kwargs, "name": path.name}, src.cache)
        notes = list(plan.notes) if plan is not None else []
        reading: dict[str, Any] = {"ratings": plan.info if plan is not None else {}}
        catalog = None
        if src.catalog is not None:
            cat_plan = plan_table(Path(src.catalog), readers.DEFAULT_CATALOG_COLUMNS, {})
            catalog = readers.read_catalog(Path(src.catalog), **cat_plan.options)
            notes += cat_plan.notes
            reading["catalog"] = cat_plan.info
        origin = {
            "kind": "file",
            "ratings": str(path),
            "catalog": None if src.catalog is None else str(src.catalog),
        }
        info: dict[str, Any] = {
            "source": src.describe(),
            "origin": origin,
            "reading": reading,
            "notes": notes,
        }
        return Loaded(inter, catalog, None, info)
    if src.dataset == "synthetic":
        if src.time_unit not in (None, "s"):
            raise ConfigError(
                f"--time-unit {src.time_unit} does not apply to --dataset synthetic (its "
                "times are generated in seconds)"
            )
        from bench.data.synthetic import make_synthetic

        data = make_synthetic(**src.synthetic)
        inter = build_interactions(data.raw, name="synthetic")
        emb = align_embeddings("synthetic", data.embedding_item_id, data.embedding, inter.item_ids)
        info = {
            "source": src.describe(),
            "noise_floor_rmse": float(data.noise_floor_rmse),
            "generator": data.params,
        }
        return Loaded(inter, data.catalog, emb, info)
    if src.dataset is None:
        raise ConfigError("no data given: use --dataset NAME or --ratings FILE")
    from bench.data import readers
    from bench.data.locate import load_catalog, locate_dataset
    from bench.data.manifest import get_manifest

    manifest = get_manifest(src.dataset)
    located = locate_dataset(manifest, src.data_dir, None, src.download)
    folder = located.folder
    rspec = manifest.ratings
    ratings_path = folder / rspec.path
    kwargs = {
        **rspec.reader_kwargs(),
        "scale": scale or manifest.scale,
        "source": manifest.name,
        "time_unit": src.time_unit,
    }

    def build_ds() -> Interactions:
        return build_interactions(readers.read_ratings(ratings_path, **kwargs), name=src.dataset)

    inter = _cached(ratings_path, build_ds, {"reader": kwargs, "name": src.dataset}, src.cache)
    catalog = load_catalog(manifest, folder)
    notes = []
    if located.origin == "shipped":
        notes.append(
            f"{manifest.name}: the copy shipped with ratingbench (verified: "
            f"{', '.join(located.verified)}), extracted in {folder}"
        )
    info = {"source": src.describe(), "origin": located.to_dict(), "notes": notes}
    return Loaded(inter, catalog, None, info)


def _cached(
    path: Path, build: Callable[[], Interactions], options: dict[str, Any], use: bool
) -> Interactions:
    """``build()``, through the binary interactions cache when ``use`` (a second run skips
    parsing; an entry that fails its checks is rebuilt, never trusted)."""
    if not use or not path.is_file():
        return build()  # (a missing file gets the reader's own error)
    from bench.data.cache import cached_interactions

    opts = {k: (v.to_dict() if isinstance(v, RatingScale) else v) for k, v in options.items()}
    if isinstance(opts.get("reader"), dict):
        opts["reader"] = {
            k: (v.to_dict() if isinstance(v, RatingScale) else v) for k, v in opts["reader"].items()
        }
    return cached_interactions(path, build, options=opts)
