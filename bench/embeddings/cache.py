"""The on-disk cache of built-in embeddings, as parquet files in the notebook's format (so a
cache file is also a valid ``--embedding`` file).

The folder is ``default_embedding_cache_dir()`` unless given. A file is named
``<builder>-<key>.parquet`` where ``key`` hashes exactly what the builder's output depends on:
the builder's version and settings, ``dim`` and ``seed`` where they apply, and the catalog's
content (the catalog builders embed every catalog movie, so their output does not depend on
which movies the ratings contain, and the cache is shared by datasets with the same catalog)
or the item ids (``random``), and the keys of a fusion's parts. Files are written atomically;
a cache file that cannot be read, or whose stored key or content hash does not match, is
rebuilt, never trusted.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from bench.data.types import hash_arrays
from bench.embeddings.builders import BUILDERS, Builder, BuildInput, Built
from bench.embeddings.catalog import catalog_hash
from bench.embeddings.parquet import META_KEY, read_embedding_parquet, write_embedding_parquet
from bench.paths import CACHE_ENV, cache_root

__all__ = ["CACHE_ENV", "cache_key", "cached_build", "default_embedding_cache_dir"]


def default_embedding_cache_dir() -> Path:
    """``$RATINGBENCH_CACHE/embeddings``, else ``$XDG_CACHE_HOME/ratingbench/embeddings``,
    else ``~/.cache/ratingbench/embeddings``."""
    return cache_root() / "embeddings"


def cache_key(b: Builder, inp: BuildInput) -> tuple[str, dict[str, Any]]:
    """``(key, inputs)``: the 16-hex-digit key of ``b``'s output for ``inp`` and the JSON-able
    inputs it hashes (stored in the cache file's metadata)."""
    inputs: dict[str, Any] = {"builder": b.name, "version": b.version, "params": b.params}
    if b.uses_dim:
        inputs["dim"] = inp.dim
        inputs["seed"] = inp.seed
    if b.uses_catalog:
        inputs["catalog"] = catalog_hash(inp.need_catalog())
    elif b.catalog_optional:
        inputs["catalog"] = None if inp.catalog is None else catalog_hash(inp.catalog)
    if b.uses_item_ids:
        inputs["item_ids"] = hash_arrays(np.unique(np.asarray(inp.item_ids, dtype=np.int64)))
    if b.parts:
        inputs["parts"] = {p: cache_key(BUILDERS[p], inp)[0] for p in b.parts}
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), inputs


def _read_cached(path: Path, key: str) -> Built | None:
    """The cached arrays if the file reads, its stored key is ``key`` and its stored content
    hash matches the data; else None."""
    if not path.is_file():
        return None
    try:
        meta = json.loads(pq.read_schema(path).metadata[META_KEY])
        ids, vec = read_embedding_parquet(path)
    except Exception:
        return None
    if meta.get("key") != key or meta.get("content") != hash_arrays(ids, vec):
        return None
    return ids, vec


def cached_build(name: str | Builder, inp: BuildInput, cache_dir: Path) -> Built:
    """The output of builder ``name`` (a name of ``BUILDERS``, or a ``Builder``, e.g. a user
    function's) for ``inp``: read from ``cache_dir`` when a verified file is there, else built
    (a fusion's parts first, each through this cache) and written there. A cache folder that
    cannot be written only warns."""
    b = BUILDERS[name] if isinstance(name, str) else name
    name = b.name
    key, inputs = cache_key(b, inp)
    path = cache_dir / f"{name}-{key}.parquet"
    hit = _read_cached(path, key)
    if hit is not None:
        return hit
    if b.parts:
        inp = dataclasses.replace(inp, parts={p: cached_build(p, inp, cache_dir) for p in b.parts})
    ids, vec = b.fn(inp)
    ids = np.asarray(ids, dtype=np.int64)
    vec = np.ascontiguousarray(vec, dtype=np.float32)
    meta = {"key": key, "content": hash_arrays(ids, vec), "inputs": inputs}
    try:
        write_embedding_parquet(path, ids, vec, metadata=meta)
    except OSError as e:
        warnings.warn(f"could not cache the {name!r} embedding in {cache_dir}: {e}", stacklevel=3)
    return ids, vec
