"""The built-in embedding builders, one module per family, and their registry ``BUILDERS``
(name -> ``Builder``, in the order ``bench embeddings`` lists them).

- ``genre`` (``genre.py``): multi-hot genres + release year scaled to [0, 1] + has-year flag.
- ``bert`` (``text.py``): all-MiniLM-L6-v2 of ``"title | genres | top tags"`` (384-d).
- ``kg_gnn`` (``graph.py``): FastRP on the catalog's movie–genre/tag/decade graph, ``dim``-d.
- ``kg_gnn_bert`` (``fusion.py``): ``kg_gnn`` and ``bert`` concatenated, PCA to ``dim``.
- ``random`` (``random.py``): a fixed Gaussian vector per movie id (``dim``-d), the control.
"""

from __future__ import annotations

from bench.embeddings.builders.base import Builder, BuildInput, Built
from bench.embeddings.builders.fusion import KG_GNN_BERT
from bench.embeddings.builders.genre import GENRE
from bench.embeddings.builders.graph import KG_GNN
from bench.embeddings.builders.random import RANDOM
from bench.embeddings.builders.text import BERT

__all__ = ["BUILDERS", "BuildInput", "Builder", "Built"]

BUILDERS: dict[str, Builder] = {b.name: b for b in (GENRE, BERT, KG_GNN, KG_GNN_BERT, RANDOM)}
