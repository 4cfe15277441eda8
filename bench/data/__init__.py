"""The data layer: from a ratings file (or a catalog dataset, or the generator) to a split.

One job per module, in the order data flows through them:

- ``types``: ``RawRatings`` (as read), ``Interactions`` (dense codes, user-sorted CSR),
  ``Catalog`` (movie metadata), content hashes, timestamp units.
- ``readers``: any ratings table (.csv/.tsv/.dat/.parquet, with or without a header) and
  movie catalogs, to ``RawRatings`` / ``Catalog``, with errors naming the file and column.
- ``manifest``: the declarative catalog of datasets (``datasets/*.toml``), read and
  validated.
- ``locate``: a catalog dataset's local copy (or the shipped one), read into ratings and a
  catalog; ``download`` fetches it on first use, with verified checksums.
- ``cache``: the verified binary cache of parsed ratings.
- ``synthetic``: the generator of users with tastes, drift and sessions.
- ``loading``: ``DataSource`` (where the ratings come from) -> ``Loaded`` (interactions,
  catalog, embeddings).
- ``split``: the chronological leave-last-out ``Split`` and the ``TrainSet`` it gives models.

docs/ARCHITECTURE.md draws the whole flow.
"""

from __future__ import annotations

from bench.data import types
from bench.data.types import *  # noqa: F403 (the value types, ``types.__all__``)

__all__ = types.__all__
