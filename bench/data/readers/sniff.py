"""What the first bytes of a delimited file say: whether it is text at all, and which
character separates its fields when ``sep`` is not given.

The separator (``detect_sep``): the format's own (``,`` / tab / ``::``) when it fits, else the
first of ``SEP_CANDIDATES`` that does. A separator fits when the first line split on it holds
every wanted column name (a header line), or when every sampled line splits into the same
number of fields with numbers where ids and ratings are expected (a file without one).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.errors import DataError

#: Separators tried, in order, when the format's own does not fit.
SEP_CANDIDATES: tuple[str, ...] = (",", ";", "\t", "|", "::", " ")
_SAMPLE_LINES = 20  # data lines checked for a consistent field count
#: Binary formats a table is sometimes saved as, which the readers do not open: magic, what it is.
_UNSUPPORTED: tuple[tuple[re.Pattern[bytes], str], ...] = (
    (re.compile(rb"PK\x03\x04"), "a zip archive (or an .xlsx workbook): extract the table first"),
    (re.compile(rb"7z\xbc\xaf\x27\x1c"), "a 7z archive: extract the table first"),
    (re.compile(rb"PAR1"), "a parquet file: give it the suffix .parquet"),
)
_CONTROL = frozenset(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D}  # bytes text files do not hold


def check_text(path: Path, head: bytes, fmt: str) -> None:
    """Raise ``DataError`` when ``head`` (a file's first decompressed bytes) is not text: a
    NUL byte, or more than 1% control bytes, or the start of a zip, 7z, tar or parquet file,
    or nothing at all. The message never shows the bytes."""
    if not head:
        raise DataError(f"{path}: the file is empty; expected a {fmt} table with at least one row")
    for magic, advice in _UNSUPPORTED:
        if magic.match(head):
            raise DataError(f"{path}: not a {fmt} file: it is {advice}")
    if head[257:262] == b"ustar":
        raise DataError(f"{path}: not a {fmt} file: it is a tar archive: extract the table first")
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path}: the file is UTF-16 text (it starts with a UTF-16 byte-order mark); "
            f"expected a {fmt} file in UTF-8 or latin-1: save it as UTF-8"
        )
    n_control = sum(head.count(bytes([b])) for b in _CONTROL)
    if b"\x00" in head or n_control > len(head) // 100:
        raise DataError(
            f"{path}: not a text file (binary data in its first {len(head)} bytes); expected "
            f"a {fmt} file, or one compressed with gzip, bz2, xz, zstd or lz4"
        )


def visible(text: str) -> str:
    """``text`` with every character that is not printable (a control byte, a stray line
    break) written as its escape (``\\x1b``), so that a message stays one readable line."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def splitter(sep: str, quoting: bool) -> Callable[[str], list[str]]:
    """A function splitting one line on ``sep`` (csv quoting when ``quoting``)."""
    if len(sep) > 1:
        return lambda line: line.split(sep)
    if quoting:
        return lambda line: next(csv.reader([line], delimiter=sep), [])
    return lambda line: line.split(sep)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Wanted:
    """The columns a table's reader wants, as ``fits`` tests a separator against them."""

    quoting: bool  # csv quoting (kept by ``splitter`` for one-character separators only)
    names: tuple[str, ...]  # the column names a header line holds; () when read by position
    positions: Mapping[str, int]  # role -> column position in a line without a header
    numeric_roles: frozenset[str]  # the roles whose fields are numbers


def fits(lines: Sequence[str], sep: str, want: Wanted, header_only: bool) -> bool:
    """Whether ``sep`` splits ``lines`` (the first lines of a file) into the wanted columns:
    the first line holds every one of ``want.names``, or (unless ``header_only``) every line
    has the same number of fields, beyond every position, with numbers at the numeric
    roles'."""
    if not lines:
        return False
    split = splitter(sep, want.quoting)
    first = split(lines[0])
    if want.names and all(n in first for n in want.names):
        return True
    if header_only:
        return False
    rows = [split(line) for line in lines[:_SAMPLE_LINES]]
    n = len(rows[0])
    if n < 2 or n <= max(want.positions.values(), default=0):
        return False
    numeric = [i for role, i in want.positions.items() if role in want.numeric_roles]
    return all(len(r) == n and all(_is_number(r[i]) for i in numeric) for r in rows)


def detect_sep(
    lines: Sequence[str], default: str, want: Wanted, header_only: bool = False
) -> str | None:
    """The separator of ``lines``: ``default`` when it fits, else the first candidate that does
    (csv quoting is kept only for one-character separators), else None."""
    for sep in dict.fromkeys((default, *SEP_CANDIDATES)):
        if fits(lines, sep, want, header_only):
            return sep
    return None


def sep_flag(sep: str) -> str:
    """``sep`` as it is written on the command line (``--sep ';'``, ``--sep $'\\t'``)."""
    return "--sep $'\\t'" if sep == "\t" else f"--sep '{sep}'"


def head_lines(head: bytes, encoding: str | None, limit: int) -> list[str]:
    """The whole, non-empty lines of a file's first bytes (``head``, at most ``limit``)."""
    text = head.decode(encoding or "utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if len(head) >= limit and len(lines) > 1:
        lines = lines[:-1]  # cut short by the read
    return [line for line in lines if line.strip()]


def sep_advice(lines: Sequence[str], sep: str, want: Wanted) -> str:
    """The part of an error that names ``--sep``: the separator that ``fits`` ``lines``, when
    one other than ``sep`` does, else how to give it."""
    for cand in SEP_CANDIDATES:
        if cand != sep and fits(lines, cand, want, False):
            return f"its fields look separated by {cand!r}, not {sep!r}: pass {sep_flag(cand)}"
    return f"if its fields are not separated by {sep!r}, pass the separator with --sep"
