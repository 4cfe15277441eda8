"""Item embeddings: read the notebook's parquet files or build them (genre, BERT, knowledge-graph
FastRP, their fusion, a random control), cached on disk, aligned to a dataset's item codes,
with a policy for the items that have none.

A *spec* is either a path to a parquet file in the research notebook's format (columns
``movieId``: integer, ``embedding``: list of floats of one fixed length) or a name. A name is
looked up first as ``<embedding_dir>/emb_<name>.parquet`` (the notebook's
``ablation_embeddings/`` folder), then among the built-in builders of ``BUILDERS``. Nothing
here reads ratings: no validation or test target can leak into an embedding.

One job per module:

- ``parquet``: the notebook's file format, read with full validation, written atomically.
- ``align``: rows keyed by movie id to the dataset's item codes, L2-normalised.
- ``catalog``: what the catalog builders read of a catalog (content hash, years, genres, tags).
- ``builders``: the built-in builders, one module per family, all taking one ``BuildInput``.
- ``cache``: built embeddings cached as parquet files under a key of exactly their inputs.
- ``build``: ``build_embeddings`` (spec -> ``ItemEmbeddings``) and ``list_embeddings``.
- ``policy``: the missing-embedding policies (``drop``, ``zero``, ``mean``).
- ``prepare``: a run's embedding step (every requested embedding, the policy applied to them
  and to the data).
- ``coverage``: how much of a split an embedding covers, for the results.
"""

from __future__ import annotations

from bench.embeddings.align import align_embeddings
from bench.embeddings.build import build_embeddings, list_embeddings
from bench.embeddings.builders import BUILDERS, Builder, BuildInput
from bench.embeddings.builders.graph import FASTRP, FastRPConfig, fastrp, knowledge_graph
from bench.embeddings.builders.text import TEXT_EXTRA_MESSAGE, movie_texts
from bench.embeddings.cache import default_embedding_cache_dir
from bench.embeddings.catalog import catalog_hash, release_year
from bench.embeddings.coverage import coverage
from bench.embeddings.parquet import read_embedding_parquet, write_embedding_parquet
from bench.embeddings.policy import (
    MISSING_POLICIES,
    apply_missing_policy,
    drop_missing,
    items_without_embedding,
)
from bench.embeddings.prepare import DEFAULT_EMBEDDING, prepare, removed_test_targets

__all__ = [
    "BUILDERS",
    "DEFAULT_EMBEDDING",
    "FASTRP",
    "MISSING_POLICIES",
    "TEXT_EXTRA_MESSAGE",
    "BuildInput",
    "Builder",
    "FastRPConfig",
    "align_embeddings",
    "apply_missing_policy",
    "build_embeddings",
    "catalog_hash",
    "coverage",
    "default_embedding_cache_dir",
    "drop_missing",
    "fastrp",
    "items_without_embedding",
    "knowledge_graph",
    "list_embeddings",
    "movie_texts",
    "prepare",
    "read_embedding_parquet",
    "release_year",
    "removed_test_targets",
    "write_embedding_parquet",
]
