"""The ``kg_gnn`` builder: FastRP node embeddings of the catalog's knowledge graph
(movie–genre/tag/decade), built from metadata only."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.data.types import Catalog
from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.embeddings.builders.hashing import hashed_uniform, string_keys
from bench.embeddings.catalog import genre_pairs, release_year, tag_counts

__all__ = ["FASTRP", "KG_GNN", "FastRPConfig", "build_kg_gnn", "fastrp", "knowledge_graph"]


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
    pairs = genre_pairs(catalog)
    rows.append(pairs["movie"].to_numpy(np.int64))
    labels.append(("genre:" + pairs["label"].astype(str)).to_numpy(dtype=object))
    weights.append(np.ones(len(pairs)))
    year = release_year(catalog.title)
    has = np.flatnonzero(np.isfinite(year))
    rows.append(has.astype(np.int64))
    labels.append(np.array([f"decade:{int(y) // 10 * 10}s" for y in year[has]], dtype=object))
    weights.append(np.ones(has.shape[0]))
    tags = tag_counts(catalog)
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
        u = hashed_uniform(keys[lo : lo + 4096], dim, seed)
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


def build_kg_gnn(inp: BuildInput) -> Built:
    """FastRP (``FASTRP``) on ``knowledge_graph(catalog)``; the movie rows. Movies without any
    attribute are isolated and come out as zero rows (= missing)."""
    catalog = inp.need_catalog()
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    adj, names = knowledge_graph(catalog, min_tag_movies=FASTRP.min_tag_movies)
    keys = np.concatenate([ids.view(np.uint64), string_keys(names)])
    vec = fastrp(adj, keys, inp.dim, seed=inp.seed, config=FASTRP)
    return ids, vec[: ids.shape[0]]


KG_GNN = Builder(
    name="kg_gnn",
    description="FastRP on the catalog knowledge graph (movie-genre/tag/decade)",
    fn=build_kg_gnn,
    uses_catalog=True,
    uses_dim=True,
    params=asdict(FASTRP),
)
