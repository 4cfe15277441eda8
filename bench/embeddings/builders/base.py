"""What every built-in builder takes (``BuildInput``) and how it is registered (``Builder``).

A builder is a deterministic function ``fn(inp: BuildInput) -> (ids, vectors)``: ids (M,) int64
movie ids, vectors (M, D) float32, rows not yet normalised (``bench.embeddings.build`` aligns
and L2-normalises them). ``Builder.version`` is part of the cache key: bump it whenever the
output for the same inputs changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bench.data.types import Catalog

__all__ = ["BuildInput", "Builder", "Built"]

Built = tuple[NDArray[np.int64], NDArray[np.float32]]  # (M,) int64 ids, (M, D) float32 vectors


@dataclass(frozen=True)
class BuildInput:
    """The inputs of a builder, the same object for every builder. Nothing here holds ratings,
    so no validation or test target can leak into an embedding."""

    catalog: Catalog | None  # the movie catalog (titles, genres, tags); None for a bare file
    item_ids: NDArray[np.int64]  # (n_items,) int64 the dataset's movie ids, index = item code
    dim: int  # width of the builders with ``uses_dim`` (the others have their own)
    seed: int  # seed of the builders with ``uses_dim``
    progress: bool  # show a progress bar during long builds
    # the outputs of ``Builder.parts`` by name, filled by the cache before a fusion is built
    parts: Mapping[str, Built] = field(default_factory=dict)

    def need_catalog(self) -> Catalog:
        """The catalog; a builder with ``uses_catalog`` is only called with one."""
        assert self.catalog is not None
        return self.catalog


@dataclass(frozen=True)
class Builder:
    """A registry entry: what a builder is called, its function, and what its output depends
    on (each flag and setting below is part of the cache key)."""

    name: str
    description: str  # one line, for ``bench embeddings``
    fn: Callable[[BuildInput], Built]
    version: int = 1
    uses_catalog: bool = False  # output depends on the catalog (and needs one)
    uses_item_ids: bool = False  # output depends on the dataset's item ids
    uses_dim: bool = False  # ``dim`` and ``seed`` apply (else the width is the builder's own)
    params: dict[str, Any] = field(default_factory=dict)  # further settings, in the cache key
    parts: tuple[str, ...] = ()  # builders whose output this one combines (their keys count)
    needs_text_extra: bool = False  # needs the optional ``text`` extra (sentence-transformers)
    # reads the catalog when there is one and runs without it (a user's function): the
    # catalog's hash, or None, is part of the cache key
    catalog_optional: bool = False
