"""From an embedding spec (a parquet file, a name in the embedding folder, or a built-in
builder) to ``ItemEmbeddings`` aligned to a dataset's item codes.

Every embedding leaves ``build_embeddings`` the same way: rows keyed by movie id, rows whose
vector is all zeros dropped (a zero vector carries no information, so it counts as missing),
aligned to the dataset's item codes and L2-normalised by ``align_embeddings`` (items without a
vector get a zero row and ``present = False``). ``ItemEmbeddings.hash`` is a content hash of
the aligned matrix.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from bench.data.types import Catalog
from bench.embeddings.align import align_embeddings
from bench.embeddings.builders import BUILDERS, BuildInput
from bench.embeddings.builders.text import require_text_extra
from bench.embeddings.cache import cached_build, default_embedding_cache_dir
from bench.embeddings.parquet import ID_COLUMN, read_embedding_parquet
from bench.embeddings.user import is_function_spec, load_builder
from bench.errors import ConfigError, DataError
from predictors.types import ItemEmbeddings

__all__ = ["build_embeddings", "list_embeddings"]


def _file_names(embedding_dir: Path | None) -> list[str]:
    if embedding_dir is None or not Path(embedding_dir).is_dir():
        return []
    return sorted(p.name[4:-8] for p in Path(embedding_dir).glob("emb_*.parquet"))


def list_embeddings(embedding_dir: Path | None = None) -> list[tuple[str, str]]:
    """(name, one-line description) of every built-in builder, then of every
    ``emb_<name>.parquet`` file in ``embedding_dir`` (which take precedence over a builder of
    the same name)."""
    out = [(b.name, b.description) for b in BUILDERS.values()]
    out += [(n, f"file emb_{n}.parquet") for n in _file_names(embedding_dir)]
    return out


def _is_path_spec(spec: str) -> bool:
    return (
        spec.lower().endswith((".parquet", ".pq"))
        or "/" in spec
        or os.sep in spec
        or Path(spec).is_file()
    )


def _finish(
    name: str,
    ids: NDArray[np.int64],
    vectors: NDArray[np.float32],
    item_ids: NDArray[np.int64],
    source: str,
) -> ItemEmbeddings:
    """Drop all-zero rows, check the overlap with the dataset, align and L2-normalise."""
    nonzero = np.any(vectors != 0, axis=1)
    ids, vectors = ids[nonzero], vectors[nonzero]
    emb = align_embeddings(name, ids, vectors, np.asarray(item_ids, dtype=np.int64))
    if len(item_ids) and not emb.present.any():
        sample = ", ".join(map(str, np.asarray(item_ids)[:3].tolist()))
        raise DataError(
            f"{source}: no movie of the dataset has an embedding (no overlap between its "
            f"{ids.shape[0]} non-zero {ID_COLUMN}s and the dataset's {len(item_ids)} movie ids, "
            f"e.g. {sample}); is it the embedding of another dataset?"
        )
    return emb


def build_embeddings(
    spec: str,
    *,
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    embedding_dir: Path | None = None,
    cache_dir: Path | None = None,
    dim: int = 300,
    seed: int = 0,
    progress: bool = True,
) -> ItemEmbeddings:
    """Item embeddings for the dataset's items ``item_ids`` (n_items,) int64 (original movie
    ids, index = item code).

    ``spec`` is a user function (``file.py:function`` or ``package.module:function``, see
    ``bench.embeddings.user``), or a path (ends in ``.parquet``/``.pq``, contains a path
    separator, or names an existing file): the file is read with ``read_embedding_parquet``,
    and the name is its stem.
    Otherwise it is a name: ``embedding_dir/emb_<name>.parquet`` if that exists, else the
    built-in builder ``name`` (``BUILDERS``; built via the cache in ``cache_dir``, default
    ``default_embedding_cache_dir()``). ``dim`` and ``seed`` apply to ``kg_gnn``,
    ``kg_gnn_bert`` and ``random``; ``genre`` (n_genres + 2) and ``bert`` (384) have their own
    widths and files theirs. ``progress`` shows a progress bar during long builds.

    Returns ``ItemEmbeddings`` (n_items, D) float32, rows L2-normalised, zero and
    ``present=False`` for items without a vector (all-zero rows count as missing).

    Raises ``DataError`` for a bad file (see ``read_embedding_parquet``) or one that shares no
    movie with the dataset; ``ConfigError`` for an unknown name (listing the known ones), a
    builder that needs a catalog when there is none, a bad ``dim``, or ``bert``/``kg_gnn_bert``
    without the text extra.
    """
    item_ids = np.asarray(item_ids, dtype=np.int64)
    if isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim < 1:
        raise ConfigError(f"embedding dim must be a positive integer, got {dim!r}")
    spec = str(spec)
    cdir = Path(cache_dir).expanduser() if cache_dir is not None else default_embedding_cache_dir()
    if is_function_spec(spec):
        builder = load_builder(spec)
        inp = BuildInput(catalog, item_ids, int(dim), int(seed), progress)
        ids, vec = cached_build(builder, inp, cdir)
        return _finish(builder.name, ids, vec, item_ids, f"embedding plugin {spec}")
    if _is_path_spec(spec):
        path = Path(spec).expanduser()
        ids, vec = read_embedding_parquet(path)
        return _finish(path.stem, ids, vec, item_ids, str(path))
    if embedding_dir is not None:
        edir = Path(embedding_dir).expanduser()
        if not edir.is_dir():
            raise ConfigError(f"embedding folder {edir} does not exist")
        path = edir / f"emb_{spec}.parquet"
        if path.is_file():
            ids, vec = read_embedding_parquet(path)
            return _finish(spec, ids, vec, item_ids, str(path))
    if spec not in BUILDERS:
        known = sorted(set(BUILDERS) | set(_file_names(embedding_dir)))
        near = difflib.get_close_matches(spec, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        where = "" if embedding_dir is None else f" (and no emb_{spec}.parquet in {embedding_dir})"
        raise ConfigError(
            f"unknown embedding {spec!r}{where}; known: {', '.join(known)}{hint} "
            "(or give a path to a .parquet file)"
        )
    b = BUILDERS[spec]
    if b.uses_catalog and catalog is None:
        raise ConfigError(
            f"the {spec!r} embedding is built from the movie catalog (titles, genres, tags), "
            "and this data source has none: give a catalog, or use 'random' or a .parquet file"
        )
    if b.needs_text_extra:
        require_text_extra()
    inp = BuildInput(catalog, item_ids, int(dim), int(seed), progress)
    ids, vec = cached_build(spec, inp, cdir)
    return _finish(spec, ids, vec, item_ids, f"embedding {spec!r}")
