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

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.data.source import DEFAULT_DATASET, DataSource
from bench.data.types import Catalog, Interactions, build_interactions
from bench.embeddings.align import align_embeddings  # re-exported: its home is bench.embeddings
from bench.errors import ConfigError
from predictors.types import ItemEmbeddings, RatingScale

if TYPE_CHECKING:
    from bench.data.readers.table import TableOptions

__all__ = ["DEFAULT_DATASET", "DataSource", "Loaded", "align_embeddings", "load_source"]


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
