"""The ``kg_gnn_bert`` builder: the ``kg_gnn`` and ``bert`` embeddings fused by PCA to
``dim``. Needs the ``text`` extra (for its ``bert`` part)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.errors import ConfigError

__all__ = ["KG_GNN_BERT", "build_kg_gnn_bert", "pca"]


def pca(x: NDArray[np.float32], dim: int) -> NDArray[np.float32]:
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


def build_kg_gnn_bert(inp: BuildInput) -> Built:
    """Fusion: ``kg_gnn`` (``dim``-d) and ``bert`` (384-d), each row L2-normalised, concatenated
    (a movie missing from one part gets zeros there), reduced to ``dim`` by PCA. Both parts
    arrive in ``inp.parts``: the cache builds them (and fills itself) before calling this."""
    catalog = inp.need_catalog()
    dim = inp.dim
    ids = np.asarray(catalog.item_id, dtype=np.int64)
    parts = []
    for pid, pv in (inp.parts["kg_gnn"], inp.parts["bert"]):
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
    return ids[keep], pca(x[keep], dim)


KG_GNN_BERT = Builder(
    name="kg_gnn_bert",
    description="PCA fusion of kg_gnn and bert (needs the text extra)",
    fn=build_kg_gnn_bert,
    uses_catalog=True,
    uses_dim=True,
    params={"pca": "eigh of scatter, largest loading positive"},
    parts=("kg_gnn", "bert"),
    needs_text_extra=True,
)
