"""Fast, validating readers for rating logs, movie catalogs and tag files (CSV/TSV/dat/parquet,
plain or compressed).

Every reader returns arrays (``RawRatings``, ``Catalog``) or a small frame, never Python rows,
and parses with pyarrow's multithreaded C++ readers:

- ``csv`` (any one-character separator, default ``,``; RFC 4180 quoting; LF or CRLF lines),
- ``tsv`` (tab-separated, no quoting; MovieLens 100k's ``u.data``),
- ``dat`` (a multi-character separator, MovieLens 1M's ``::``: pyarrow only splits on one
  byte, so the file is read into memory once, ``::`` is replaced by an unused control byte,
  and the buffer is parsed by pyarrow; this is correct even when titles contain ``:``),
- ``parquet``.

Any of them may be compressed with gzip, bz2, xz, zstd or lz4 (``compression``: told from
the file's first bytes whatever its name; ``ratings.csv.gz`` names the format inside) and is
read decompressed, with the dataset hash of the plain file. When the separator is not given
and the format's does not fit the first lines, ``sniff`` tries the usual others. A file that
is not text is refused without its bytes in the message.

Every failure is a ``DataError`` whose one-line message names the file, the column and what
was expected. Ratings are not range-checked here: ``bench.data.build_interactions`` checks
them against the scale.

The package: ``table`` reads a file's wanted columns into Arrow (formats, separators,
header and column roles), ``compression`` opens compressed files, ``sniff`` tells text from
binary and finds the separator, ``columns`` turns Arrow columns into validated arrays,
``ratings`` and ``catalog`` are the readers.
"""

from __future__ import annotations

from bench.data.readers.catalog import read_catalog, read_tags
from bench.data.readers.ratings import infer_scale, read_ratings
from bench.data.readers.table import (
    DEFAULT_CATALOG_COLUMNS,
    DEFAULT_RATING_COLUMNS,
    DEFAULT_TAG_COLUMNS,
    FORMATS,
    TableOptions,
    infer_format,
)

__all__ = [
    "DEFAULT_CATALOG_COLUMNS",
    "DEFAULT_RATING_COLUMNS",
    "DEFAULT_TAG_COLUMNS",
    "FORMATS",
    "TableOptions",
    "infer_format",
    "infer_scale",
    "read_catalog",
    "read_ratings",
    "read_tags",
]
