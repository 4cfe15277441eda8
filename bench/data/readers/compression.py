"""Compressed tables (gzip, bz2, xz, zstd, lz4): recognised by their first bytes whatever the
file is called, read as decompressed streams by pyarrow.

A compression suffix (``ratings.csv.gz``) only tells the format inside (``infer_format`` strips
it); whether a file is compressed is decided by its magic bytes, so a gzip file named
``ratings.csv`` is read decompressed and a plain file named ``ratings.csv.gz`` is read as it
is. gzip, bz2, zstd and lz4 are decompressed by pyarrow's ``CompressedInputStream``; xz, which
pyarrow's codecs lack, by Python's ``lzma`` behind a ``pyarrow.PythonFile``.
"""

from __future__ import annotations

import lzma
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from bench.errors import DataError


@dataclass(frozen=True)
class Compression:
    """One compression format: its name, the suffixes that name it and its magic bytes."""

    name: str
    suffixes: tuple[str, ...]  # lower-case, with the dot
    magic: re.Pattern[bytes]  # matched at the start of the file
    arrow_codec: str | None  # pyarrow's codec name; None: Python's lzma


#: Every compression the readers decompress, in the order they are tried.
COMPRESSIONS: tuple[Compression, ...] = (
    Compression("gzip", (".gz", ".gzip"), re.compile(rb"\x1f\x8b"), "gzip"),
    # "BZh", the block size 1-9, then a block's or the end of stream's magic
    Compression("bz2", (".bz2",), re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)", re.DOTALL), "bz2"),
    Compression("xz", (".xz",), re.compile(rb"\xfd7zXZ\x00"), None),
    Compression("zstd", (".zst", ".zstd"), re.compile(rb"\x28\xb5\x2f\xfd"), "zstd"),
    Compression("lz4", (".lz4",), re.compile(rb"\x04\x22\x4d\x18"), "lz4"),
)
_MAGIC_LEN = 10  # bytes read to recognise any of the above


def _start(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(_MAGIC_LEN)


def detect(path: Path) -> Compression | None:
    """The compression of ``path`` from its first bytes, or None for an uncompressed file.
    Raises ``OSError`` when it cannot be read."""
    start = _start(path)
    return next((c for c in COMPRESSIONS if c.magic.match(start)), None)


def by_suffix(path: Path) -> Compression | None:
    """The compression ``path``'s last suffix names (``.gz``, ``.bz2``, ...), or None."""
    suffix = path.suffix.lower()
    return next((c for c in COMPRESSIONS if suffix in c.suffixes), None)


def inner_path(path: Path) -> Path:
    """``path`` without a compression suffix (``ratings.csv.gz`` -> ``ratings.csv``)."""
    return path.with_suffix("") if by_suffix(path) is not None else path


def open_stream(path: Path, comp: Compression | None) -> pa.NativeFile:
    """A pyarrow input stream of ``path``'s decompressed bytes (the file itself when ``comp``
    is None). The caller closes it."""
    if comp is None:
        return pa.OSFile(str(path), "r")
    if comp.arrow_codec is None:
        return pa.PythonFile(lzma.open(path, "rb"), mode="r")
    return pa.CompressedInputStream(pa.OSFile(str(path), "r"), comp.arrow_codec)


def read_bytes(path: Path, comp: Compression | None, limit: int = -1) -> bytes:
    """The first ``limit`` decompressed bytes of ``path`` (all when ``limit`` is negative).
    Raises ``DataError`` when the compressed data is corrupt or cut short."""
    if comp is None:
        with path.open("rb") as fh:
            return fh.read(limit)
    try:
        with open_stream(path, comp) as stream:
            if limit < 0:
                return bytes(stream.read())
            out = bytearray()
            while len(out) < limit:
                piece = stream.read(min(limit - len(out), 1 << 20))
                if not piece:
                    break
                out += piece
            return bytes(out)
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as exc:
        raise corrupt(path, comp, exc) from None


def corrupt(path: Path, comp: Compression, exc: BaseException) -> DataError:
    """The one error for compressed data that cannot be decompressed."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return DataError(
        f"{path}: the {comp.name} data is corrupt or cut short ({detail}); expected a complete "
        f"{comp.name} file"
    )
