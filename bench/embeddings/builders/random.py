"""The ``random`` builder: a fixed Gaussian vector per movie id, the control of an ablation
(a model that does as well with it learns nothing from the embedding)."""

from __future__ import annotations

import numpy as np

from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.embeddings.builders.hashing import gaussian_rows

__all__ = ["RANDOM", "build_random"]


def build_random(inp: BuildInput) -> Built:
    """One standard Gaussian vector per movie id of the dataset: row = f(seed, movie id), so a
    movie gets the same vector whatever the catalog, the dataset or their order."""
    ids = np.unique(np.asarray(inp.item_ids, dtype=np.int64))
    return ids, gaussian_rows(ids.view(np.uint64), inp.dim, inp.seed)


RANDOM = Builder(
    name="random",
    description="fixed Gaussian vector per movie id (seeded): the control",
    fn=build_random,
    uses_item_ids=True,
    uses_dim=True,
)
