"""A run's embedding step: build or read every requested embedding, aligned to the dataset's
item codes, and apply the missing-embedding policy to them and to the data (``drop`` re-codes
the data without the ratings of movies that lack a vector)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

import numpy as np
from numpy.typing import NDArray

from bench.data.split import SplitParams, make_split
from bench.data.types import Catalog, Interactions
from bench.embeddings.build import build_embeddings
from bench.embeddings.policy import apply_missing_policy, drop_missing, items_without_embedding
from bench.errors import ConfigError
from bench.text import shown
from predictors.types import ItemEmbeddings

__all__ = ["DEFAULT_EMBEDDING", "prepare", "removed_test_targets"]

DEFAULT_EMBEDDING = "kg_gnn"  # built from the catalog when a model needs one and none is given


class _Loaded(Protocol):
    """What ``prepare`` reads of ``bench.data.loading.Loaded`` (a frozen dataclass; named by its
    shape so that this package does not import the loader, which imports it)."""

    __dataclass_fields__: ClassVar[dict[str, dataclasses.Field[Any]]]  # a dataclass

    @property
    def interactions(self) -> Interactions: ...
    @property
    def catalog(self) -> Catalog | None: ...
    @property
    def embeddings(self) -> ItemEmbeddings | None: ...


L = TypeVar("L", bound=_Loaded)


def prepare(
    loaded: L,
    names: Sequence[str],
    *,
    policy: str,
    embedding_dir: Path | None,
    split_params: SplitParams,
    need: bool,
    notify: Callable[[str], None],
    progress: bool = False,
) -> tuple[L, dict[str, ItemEmbeddings], dict[str, Any]]:
    """Every embedding of ``names`` (names or parquet paths, see ``build_embeddings``) for
    ``loaded``, the missing-embedding ``policy`` applied.

    - No ``names`` and the data came with an embedding (synthetic): that one, untouched
      (``info = {"names": [...], "default": True}``).
    - No ``names``, no embedding, and ``need`` is false: nothing (``info = {}``).
    - No ``names`` and ``need``: ``DEFAULT_EMBEDDING`` built from the catalog with the policy
      forced to ``zero`` (an embedding the user did not ask for must not change the data every
      model sees); ``ConfigError`` if there is no catalog.
    - The name ``synthetic`` is the data's own embedding when it has one.

    ``policy`` ``drop`` removes the ratings of the items that lack a vector in *any* of the
    embeddings and re-codes the data (and the embeddings' rows and hashes) when there are
    such items; ``zero`` and ``mean`` keep the data (``apply_missing_policy``). ``split_params``
    is the run's split, used only to count the test targets that a drop removes (counted on the
    split of the data before the drop). ``notify`` gets the lines for the console;
    ``progress`` shows a progress bar during long builds.

    Returns ``(loaded, embeddings by name, info)``: ``loaded`` with the dropped data (or the
    same object), and ``info`` with ``names``, ``policy``, ``default``, ``build_s`` (seconds
    per embedding) and ``missing`` (``items``, ``ratings``, ``users`` without a vector in some
    embedding, plus ``test_targets`` when a drop happened).

    Raises ``ConfigError`` for a name given twice (after resolving: a file's stem counts) and
    whatever ``build_embeddings``, ``apply_missing_policy`` and ``drop_items`` raise.
    """
    names = list(names)
    implicit = False
    if not names:
        if loaded.embeddings is not None:
            own = loaded.embeddings
            return loaded, {own.name: own}, {"names": [own.name], "default": True}
        if not need:
            return loaded, {}, {}
        if loaded.catalog is None:
            raise ConfigError(
                "the chosen models need item embeddings: pass --embedding NAME|FILE.parquet "
                "(this data source has no movie catalog to build one from)"
            )
        names = [DEFAULT_EMBEDDING]
        implicit = True
        notify(
            f"no --embedding given: using '{DEFAULT_EMBEDDING}' built from the catalog "
            "(movies without a vector keep their ratings and get a zero vector)"
        )
    inter = loaded.interactions
    built: dict[str, ItemEmbeddings] = {}
    build_s: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        if name == "synthetic" and loaded.embeddings is not None:
            emb = loaded.embeddings
        else:
            notify(f"embedding {shown(name)} ...")
            emb = build_embeddings(
                name,
                catalog=loaded.catalog,
                item_ids=inter.item_ids,
                embedding_dir=embedding_dir,
                progress=progress,
            )
        if emb.name in built:
            raise ConfigError(f"--embedding: '{emb.name}' is given twice")
        built[emb.name] = emb
        build_s[emb.name] = time.perf_counter() - t0
    if implicit:
        policy = "zero"
    info: dict[str, Any] = {
        "names": list(built),
        "policy": policy,
        "default": implicit,
        "build_s": build_s,
    }
    missing = np.zeros(inter.n_items, dtype=bool)
    for emb in built.values():
        missing |= items_without_embedding(emb)
    affected = missing[inter.item]
    info["missing"] = {
        "items": int(missing.sum()),
        "ratings": int(affected.sum()),
        "users": int(np.unique(inter.user[affected]).shape[0]),
    }
    if policy == "drop" and missing.any():
        info["missing"]["test_targets"] = removed_test_targets(inter, split_params, missing)
        inter, built = drop_missing(inter, built, missing)
        loaded = dataclasses.replace(loaded, interactions=inter)
        m = info["missing"]
        notify(
            f"dropped {m['ratings']:,} ratings of {m['items']:,} movies without an embedding "
            f"({m['users']:,} users affected)"
        )
    else:
        built = {n: apply_missing_policy(policy, e) for n, e in built.items()}
    return loaded, built, info


def removed_test_targets(
    inter: Interactions, params: SplitParams, missing: NDArray[np.bool_]
) -> int:
    """How many test targets of ``make_split(inter, params)`` are ratings of items where
    ``missing`` (n_items,) bool is True.

    Without user sampling the split is not built: its test targets are the last
    ``test_targets`` rows of every user with at least ``min_history + test_targets`` events,
    the rule of ``make_split`` (checked against it in the tests). With ``sample_users`` (the
    notebook protocol, whose split is small) or when no user is long enough (so that its
    ``DataError`` comes out unchanged), ``make_split`` is called and its targets counted.
    """
    n_test = params.test_targets
    eligible = np.diff(inter.user_offsets) >= params.min_history + n_test  # (n_users,) bool
    if params.sample_users is not None or not eligible.any():
        test_pos = make_split(inter, params).test_pos
    else:
        ends = inter.user_offsets[1:][eligible]  # (U,) int64 one past each user's last row
        rows = (ends - n_test)[:, None] + np.arange(n_test, dtype=np.int64)  # (U, N) int64
        test_pos = rows.ravel()
    return int(missing[inter.item[test_pos]].sum())
