"""Embeddings from the user's code: ``--embedding my_emb.py:build`` or
``--embedding package.module:build``.

The function receives the movie catalog (titles, genres and, when the dataset has them, tags:
``bench.data.Catalog``; None for a bare ratings file) and may also take the keywords
``item_ids`` (the dataset's movie ids), ``dim`` and ``seed``. It returns the movie ids and a
matrix, as ``(ids, vectors)`` ((M,) integers, (M, D) floats) or as a DataFrame in the
notebook's format (columns ``movieId`` and ``embedding``). The result is cached like a built-in
builder's, under a key of the function's code (its file's SHA-256, or its package's name and
version), the catalog's content and the dataset's movie ids: a changed function is built
again. Its name in results is ``<file stem or module>.<function>``, or the function's own
``embedding_name`` attribute.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.embeddings.builders import Builder, BuildInput, Built
from bench.errors import ConfigError, DataError
from predictors.plugins import PluginError, PluginSource, load_object

__all__ = ["is_function_spec", "load_builder"]

_OPTIONAL = ("item_ids", "dim", "seed")


def is_function_spec(spec: str) -> bool:
    """``file.py:function`` or ``package.module:function`` (not a parquet path or a name)."""
    where, colon, attr = spec.rpartition(":")
    if not colon or not attr.isidentifier() or not where:
        return False
    if where.endswith(".py"):
        return True
    return all(p.isidentifier() for p in where.split("."))


def _name(fn: Any, src: PluginSource) -> str:
    own = getattr(fn, "embedding_name", None)
    if own:
        return str(own)
    where = src.given.rpartition(":")[0]
    stem = Path(where).stem if where.endswith(".py") else where
    return f"{stem}.{getattr(fn, '__name__', 'build')}"


def _as_arrays(out: Any, label: str) -> Built:
    if isinstance(out, pd.DataFrame):
        if not {"movieId", "embedding"} <= set(out.columns):
            raise DataError(
                f"embedding plugin {label}: the DataFrame it returned needs columns movieId and "
                f"embedding, has {', '.join(map(str, out.columns))}"
            )
        ids_raw: Any = out["movieId"].to_numpy()
        try:
            vec_raw: Any = np.stack([np.asarray(v, dtype=np.float64) for v in out["embedding"]])
        except ValueError as e:
            raise DataError(
                f"embedding plugin {label}: its embedding column does not hold vectors of one "
                f"length ({e})"
            ) from e
    elif isinstance(out, tuple) and len(out) == 2:
        ids_raw, vec_raw = out
    else:
        raise DataError(
            f"embedding plugin {label}: must return (movie_ids, matrix) or a DataFrame with "
            f"columns movieId and embedding, got {type(out).__name__}"
        )
    ids = np.asarray(ids_raw)
    vec = np.asarray(vec_raw)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise DataError(
            f"embedding plugin {label}: movie ids must be a 1-D integer array, got shape "
            f"{ids.shape} dtype {ids.dtype}"
        )
    if vec.ndim != 2 or vec.shape[0] != ids.shape[0] or not np.issubdtype(vec.dtype, np.number):
        raise DataError(
            f"embedding plugin {label}: the matrix must be numeric with shape "
            f"({ids.shape[0]}, D), one row per movie id, got shape {vec.shape}"
        )
    if not np.all(np.isfinite(vec)):
        raise DataError(
            f"embedding plugin {label}: the matrix has {int((~np.isfinite(vec)).sum())} NaN or "
            "inf value(s)"
        )
    if np.unique(ids).shape[0] != ids.shape[0]:
        raise DataError(f"embedding plugin {label}: movie ids are not unique")
    return ids.astype(np.int64), vec.astype(np.float32)


def load_builder(spec: str) -> Builder:
    """The ``Builder`` of a user function (its code identity in ``params``, so the cache key
    changes when the code does). Raises ``ConfigError`` naming the plugin."""
    try:
        fn, src = load_object(spec, "function")
    except PluginError as e:
        raise ConfigError(f"--embedding {e}") from None
    if not callable(fn) or inspect.isclass(fn):
        raise ConfigError(
            f"--embedding plugin {spec} is a {type(fn).__name__}, not a function "
            "build(catalog) -> (movie_ids, matrix)"
        )
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        params = {}  # type: ignore[assignment]
    takes = [k for k in _OPTIONAL if k in params]

    def run(inp: BuildInput) -> Built:
        extra = {"item_ids": inp.item_ids, "dim": inp.dim, "seed": inp.seed}
        try:
            out = fn(inp.catalog, **{k: extra[k] for k in takes})
        except Exception as e:
            raise DataError(f"embedding plugin {spec} raised {type(e).__name__}: {e}") from e
        return _as_arrays(out, spec)

    code = src.sha256 or f"{src.package} {src.version}"
    return Builder(
        name=_name(fn, src),
        description=f"from {src.describe()}",
        fn=run,
        catalog_optional=True,  # it is given the catalog when there is one, None otherwise
        uses_item_ids=True,
        uses_dim="dim" in takes or "seed" in takes,
        params={"plugin": src.given, "code": code, "takes": takes},
    )
