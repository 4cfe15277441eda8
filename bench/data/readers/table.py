"""Reading a delimited or parquet file's wanted columns into an Arrow table.

Formats and their suffixes, the column roles a reader maps to names, the header line, and
pyarrow's multithreaded C++ readers (the ``dat`` separator trick is described in
``bench.data.readers``). Every failure is a ``DataError`` or ``ConfigError`` naming the file.

The header line (``plan_table``): ``header=True`` reads the column names from the first line,
``header=False`` reads every line as data, and leaving ``header`` out decides from the first
line: when it holds the wanted column names it is the header; when it holds numbers where
ids and ratings are expected (MovieLens 1M's ``1::1193::5::978300760``) it is data, and the
columns are taken by position in the roles' order (``user=0, item=1, rating=2,
timestamp=3``); otherwise the missing column is reported with a hint naming ``--no-header``.
Columns may be given by position (``columns={"user": "0", ...}``), with or without a header.
A file whose ``encoding`` is not given and that is not valid UTF-8 (MovieLens 1M's latin-1
``movies.dat``) is read as latin-1; each such decision comes back as a note.

Compressed files (gzip, bz2, xz, zstd, lz4: ``bench.data.readers.compression``) are read
decompressed, whatever their name; a file that is not text is refused without showing its
bytes. When ``sep`` is not given and the format's separator does not split the first lines
into the wanted columns, ``,`` ``;`` tab ``|`` ``::`` and space are tried
(``bench.data.readers.sniff``); the separator found is a note, and when none fits the error
names ``--sep``.
"""

from __future__ import annotations

import csv
import difflib
import lzma
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

import bench.data.readers.compression as compression
import bench.data.readers.sniff as sniff
from bench.data.readers.compression import Compression
from bench.errors import ConfigError, DataError

#: Supported formats and the file suffixes that imply them.
FORMATS: dict[str, tuple[str, ...]] = {
    "csv": (".csv",),
    "tsv": (".tsv", ".data"),
    "dat": (".dat",),
    "parquet": (".parquet", ".pq"),
}
#: role -> column name defaults (MovieLens' own header names).
DEFAULT_RATING_COLUMNS: dict[str, str] = {
    "user": "userId",
    "item": "movieId",
    "rating": "rating",
    "timestamp": "timestamp",
}
DEFAULT_CATALOG_COLUMNS: dict[str, str] = {"item": "movieId", "title": "title", "genres": "genres"}
DEFAULT_TAG_COLUMNS: dict[str, str] = {"item": "movieId", "tag": "tag"}

_DEFAULT_SEP = {"csv": ",", "tsv": "\t", "dat": "::"}
_BLOCK_SIZE = 16 << 20  # 16 MiB parse blocks: fewer, larger tasks for pyarrow's thread pool
_SEP_STANDINS = (b"\x1f", b"\x1e", b"\x1d", b"\x1c")  # ASCII unit/record/group/file separators
#: Roles whose values are numbers on every data row: numbers where these are expected on the
#: first line make it data, not column names.
_NUMERIC_ROLES = frozenset({"user", "item", "rating"})
_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*", re.ASCII)
_POSITION = re.compile(r"\d+", re.ASCII)
#: Files up to this size whose encoding is not given are checked for UTF-8 (latin-1 if not).
_SNIFF_ENCODING_MAX = 64 << 20
_HEAD_BYTES = 1 << 20  # the decompressed start of a file that plans its reading


class TableOptions(TypedDict, total=False):
    """The keyword options every reader takes (``read_ratings`` documents them)."""

    format: str | None  # csv | tsv | dat | parquet; None: from the suffix
    sep: str | None  # None: the format's ("," / tab / "::")
    header: bool | None  # the first line names the columns; None or left out: decided from it
    encoding: str  # default "utf-8"
    columns: Mapping[str, str] | None  # role -> column name, over the reader's defaults
    names: Sequence[str] | None  # every column's name in file order (for a headerless file)
    quoting: bool | None  # honour double-quoted fields; None: on for csv only


@dataclass(frozen=True)
class TableFile:
    """A file about to be read: its path, resolved format and column roles, and options."""

    path: Path
    fmt: str
    roles: dict[str, str]  # role -> column name
    options: TableOptions

    @classmethod
    def open(
        cls, path: str | Path, defaults: Mapping[str, str], options: TableOptions
    ) -> TableFile:
        """Resolve ``path``'s format and roles (``defaults``: role -> column name).

        Raises ``TypeError`` for an option no reader takes, ``DataError`` for an unknown
        format, ``ConfigError`` for an unknown role."""
        unknown = sorted(set(options) - TableOptions.__optional_keys__)
        if unknown:
            raise TypeError(
                f"unexpected keyword argument {unknown[0]!r}; known: "
                + ", ".join(sorted(TableOptions.__optional_keys__))
            )
        plan = plan_table(path, defaults, options)
        path = Path(path)
        fmt = infer_format(path, options.get("format"))
        return cls(path, fmt, _roles(plan.options.get("columns"), defaults, path), plan.options)

    def read(
        self,
        wanted: Mapping[str, str],
        types: Mapping[str, pa.DataType],
        headerless_names: Sequence[str],
    ) -> pa.Table:
        """The ``wanted`` columns (label -> name) with ``types`` pinned; a file without a
        header line and without ``names`` is read as having the ``headerless_names``."""
        header = self.options.get("header")
        header = True if header is None else header
        names = self.options.get("names")
        if names is None and not header and self.fmt != "parquet":
            names = list(headerless_names)
        return _read_with_retry(
            self.path,
            self.fmt,
            wanted=wanted,
            types=types,
            sep=self.options.get("sep"),
            header=header,
            encoding=self.options.get("encoding", "utf-8"),
            quoting=self.options.get("quoting"),
            names=names,
        )


# --------------------------------------------------------------------------- formats


def infer_format(path: str | Path, format: str | None = None) -> str:
    """The format of ``path``: ``format`` when given (validated), else from the suffix, after
    a compression suffix (``ratings.csv.gz`` is a csv file).

    Raises ``DataError`` for an unknown format or suffix, listing the supported ones.
    """
    path = Path(path)
    if format is not None:
        if format not in FORMATS:
            raise DataError(f"{path}: unknown format {format!r}; supported: {', '.join(FORMATS)}")
        return format
    suffix = compression.inner_path(path).suffix.lower()
    for fmt, suffixes in FORMATS.items():
        if suffix in suffixes:
            return fmt
    known = ", ".join(f"{s} ({f})" for f, ss in FORMATS.items() for s in ss)
    packed = ", ".join(s for c in compression.COMPRESSIONS for s in c.suffixes)
    raise DataError(
        f"{path}: cannot tell the format from the suffix {suffix!r}; supported: {known}, "
        f"each optionally compressed ({packed} after it, e.g. ratings.csv.gz) "
        "(or pass the format explicitly)"
    )


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")


def _compression(path: Path) -> Compression | None:
    """The compression of an existing file, told from its first bytes."""
    try:
        return compression.detect(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot read the file ({_one_line(exc)})") from None


def _roles(
    columns: Mapping[str, str] | None, defaults: Mapping[str, str], path: Path
) -> dict[str, str]:
    """Merge a role->column mapping over the defaults; unknown roles are a ConfigError."""
    roles = dict(defaults)
    for role, col in (columns or {}).items():
        if role not in defaults:
            raise ConfigError(
                f"{path}: unknown column role {role!r}; known roles: {', '.join(defaults)}"
            )
        roles[role] = col
    return roles


# --------------------------------------------------------------------------- header line


@dataclass(frozen=True)
class TablePlan:
    """How a file is read once its header line and encoding are decided."""

    options: TableOptions  # the given options with header/names/columns/encoding made explicit
    notes: tuple[str, ...] = ()  # decisions worth announcing (a headerless file, latin-1)
    info: dict[str, Any] = field(default_factory=dict)  # what was decided, for the record


def _is_position(column: str) -> bool:
    return _POSITION.fullmatch(column) is not None


def _positions_text(positions: Mapping[str, int]) -> str:
    return ",".join(f"{r}={i}" for r, i in positions.items())


def _sniff_encoding(
    path: Path, given: str | None, comp: Compression | None
) -> tuple[str, str | None]:
    """(encoding, note): ``given``; else utf-8, or latin-1 for a file that is not valid
    UTF-8 (checked for files up to ``_SNIFF_ENCODING_MAX`` bytes, decompressed)."""
    if given is not None:
        return given, None
    if comp is None and path.stat().st_size > _SNIFF_ENCODING_MAX:
        return "utf-8", None
    text = compression.read_bytes(path, comp, _SNIFF_ENCODING_MAX + 1)
    if len(text) > _SNIFF_ENCODING_MAX:
        return "utf-8", None
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return "latin-1", f"{path.name}: not valid UTF-8, read as latin-1"
    return "utf-8", None


def plan_table(path: str | Path, defaults: Mapping[str, str], options: TableOptions) -> TablePlan:
    """Decide the header line, the separator, the columns by position and the encoding of a
    delimited file (the module docstring gives the rules); parquet files are read as given,
    and files given all their column ``names`` only checked to be text. Cheap: reads the first
    megabyte (decompressed; and, when the encoding is not given, checks that a file up to
    64 MiB is UTF-8).

    Raises ``DataError`` when the file is not text, is corrupt compressed data, or when its
    first line holds neither the wanted columns nor data (the message names ``--no-header``
    and ``--sep``), or holds data while the columns are given by name; ``ConfigError`` when
    some columns are given by position and others by name, or a position is beyond the
    file's columns.
    """
    path = Path(path)
    fmt = infer_format(path, options.get("format"))
    opts: TableOptions = {**options}
    header = opts.get("header")
    if fmt == "parquet":
        return TablePlan(opts, (), {"header": "given" if header is not None else "found"})
    _check_file(path)
    comp = _compression(path)
    head = compression.read_bytes(path, comp, _HEAD_BYTES)
    sniff.check_text(path, head, fmt)
    notes: list[str] = []
    info: dict[str, Any] = {}
    if comp is not None:
        info["compression"] = comp.name
        if compression.by_suffix(path) is not comp:
            notes.append(
                f"{path.name}: {comp.name}-compressed (told from its first bytes), read "
                "decompressed"
            )
    if opts.get("names") is not None:
        return TablePlan(
            opts, tuple(notes), {**info, "header": "given" if header is not None else "found"}
        )
    roles = _roles(opts.get("columns"), defaults, path)
    given_cols = dict(opts.get("columns") or {})
    by_position = [r for r, c in roles.items() if _is_position(c)]
    if by_position and len(by_position) < len(roles):
        by_name = [r for r in roles if r not in by_position]
        raise ConfigError(
            f"{path}: columns {', '.join(by_position)} are given by position and "
            f"{', '.join(by_name)} by name; give every column by position (e.g. "
            f"{_positions_text({r: i for i, r in enumerate(roles)})}) or every one by name"
        )
    positional = bool(by_position)
    positions = (
        {r: int(c) for r, c in roles.items()}
        if positional
        else {r: i for i, r in enumerate(defaults)}
    )
    quoting = (fmt == "csv") if opts.get("quoting") is None else bool(opts.get("quoting"))
    sep = _sep_for(fmt, opts.get("sep"))
    lines = sniff.head_lines(head, opts.get("encoding"), _HEAD_BYTES)
    names = () if positional else tuple(roles.values())
    want = sniff.Wanted(quoting, names, positions, _NUMERIC_ROLES)
    if opts.get("sep") is None:
        found = sniff.detect_sep(lines, sep, want, header_only=header is True)
        if found is not None and found != sep:
            sep = opts["sep"] = info["sep"] = found
            notes.append(
                f"{path.name}: fields separated by {found!r} (detected; {sniff.sep_flag(found)} "
                "sets it)"
            )
    if header is True and not positional:
        return TablePlan(opts, tuple(notes), {**info, "header": "given"})
    encoding, enc_note = _sniff_encoding(path, opts.get("encoding"), comp)
    opts["encoding"] = encoding
    if enc_note:
        notes.append(enc_note)
    first = _header_names(path, sep, encoding, quoting)
    line = sniff.visible(sep.join(first))
    line = line if len(line) <= 120 else line[:117] + "..."
    n = len(first)
    looks_like_data = n > max(positions.values()) and all(
        _NUMBER.fullmatch(first[i]) is not None for r, i in positions.items() if r in _NUMERIC_ROLES
    )
    info["first_line"] = line
    if header is None:
        if not positional and all(c in first for c in roles.values()):
            return TablePlan(opts, tuple(notes), {**info, "header": "found"})
        if not looks_like_data and not positional:
            missing = [(r, c) for r, c in roles.items() if c not in first]
            role, col = missing[0]
            near = difflib.get_close_matches(col, first, n=1, cutoff=0.6)
            raise DataError(
                f"{path}: missing column {col!r} (role {role}); columns found: "
                f"{sniff.visible(', '.join(first)) or '(none)'}"
                + (f"; did you mean {near[0]!r}?" if near else "")
                + "; "
                + sniff.sep_advice(lines, sep, want)
                + "; if the file has no header line, pass --no-header with the columns by "
                f"position (--columns {_positions_text(positions)})"
            )
        if looks_like_data and not positional and given_cols:
            raise DataError(
                f"{path}: the first line ({line}) looks like data, not column names, so the "
                f"columns {', '.join(repr(c) for c in roles.values())} cannot be found by name; "
                "for a file without a header line pass --no-header with the columns by position "
                f"(--columns {_positions_text(positions)})"
            )
        header = not looks_like_data
        how = "detected"
        if not header:
            notes.append(
                f"{path.name}: the first line ({line}) is data, not column names: read as "
                f"data, columns by position ({_positions_text(positions)}; --no-header with "
                "--columns sets them)"
            )
    else:
        how = "given"
        if not header and not positional and given_cols:
            raise ConfigError(
                f"{path}: a file without a header line has no column names: give the columns "
                f"by position (--columns {_positions_text(positions)})"
            )
    if not positional and n != len(positions):
        raise DataError(
            f"{path}: not a valid {fmt} file (its first line has {n} column(s); Expected "
            f"{len(positions)} columns without a header line: {', '.join(positions)} in that "
            f"order; give the columns by position, e.g. --columns {_positions_text(positions)}"
            f"; {sniff.sep_advice(lines, sep, want)})"
        )
    beyond = {r: i for r, i in positions.items() if i >= n}
    if beyond:
        r, i = next(iter(beyond.items()))
        raise ConfigError(
            f"{path}: column position {i} (role {r}) is beyond the file's {n} column(s) "
            f"(first line: {line}); positions count from 0"
        )
    opts["header"] = header
    opts["names"] = [str(i) for i in range(n)]
    by_pos = {r: str(i) for r, i in positions.items()}
    opts["columns"] = by_pos
    info.update(header=how if header else f"none ({how})", columns=dict(by_pos))
    return TablePlan(opts, tuple(notes), info)


# --------------------------------------------------------------------------- raw table reading


def _sep_for(fmt: str, sep: str | None) -> str:
    sep = _DEFAULT_SEP.get(fmt, ",") if sep is None else sep
    if not sep or "\n" in sep or "\r" in sep:
        raise ConfigError(f"invalid separator {sep!r}")
    return sep


def _load_delimited_source(path: Path, sep: str, comp: Compression | None) -> tuple[Any, str]:
    """What pyarrow should parse (a stream the caller closes: never the path, from whose
    suffix pyarrow would guess a compression), and the one-character delimiter to parse it with.

    A multi-character separator is replaced in memory by a control byte absent from the file.
    """
    if len(sep) == 1:
        return compression.open_stream(path, comp), sep
    raw = compression.read_bytes(path, comp)
    sep_b = sep.encode("ascii")
    for standin in _SEP_STANDINS:
        if standin not in raw:
            return pa.BufferReader(raw.replace(sep_b, standin)), standin.decode("ascii")
    raise DataError(f"{path}: cannot split on {sep!r}: the file uses every stand-in byte")


def _header_names(path: Path, sep: str, encoding: str, quoting: bool) -> list[str]:
    """The column names in the first line of a delimited file (cheap: reads its first
    megabyte, decompressed)."""
    first = compression.read_bytes(path, _compression(path), _HEAD_BYTES).split(b"\n", 1)[0]
    try:
        line = first.decode(encoding).lstrip("\ufeff").rstrip("\r\n")
    except (UnicodeDecodeError, LookupError) as exc:
        raise DataError(f"{path}: cannot decode the header line as {encoding}: {exc}") from None
    if len(sep) > 1:
        line = line.replace(sep, "\x1f")
        sep = "\x1f"
    if quoting:
        return next(csv.reader([line], delimiter=sep), [])
    return line.split(sep)


def _available_columns(
    path: Path,
    fmt: str,
    sep: str,
    header: bool,
    encoding: str,
    quoting: bool,
    names: Sequence[str] | None,
) -> list[str]:
    if fmt == "parquet":
        try:
            return list(pq.read_schema(_parquet_source(path)).names)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None
    if names is not None:
        return list(names)
    if not header:
        raise ConfigError(f"{path}: a file without a header line needs its column `names`")
    return _header_names(path, sep, encoding, quoting)


def _parquet_source(path: Path) -> Any:
    """A parquet file's path, or its decompressed bytes when the file is compressed."""
    comp = _compression(path)
    return path if comp is None else pa.BufferReader(compression.read_bytes(path, comp))


def _require_columns(
    path: Path, wanted: Mapping[str, str], found: Sequence[str], sep: str | None = None
) -> None:
    """Raise ``DataError`` for the first wanted column not ``found``; with ``sep`` (a
    delimited file) a first line of one column also names ``--sep``."""
    for role, col in wanted.items():
        if col in found:
            continue
        near = difflib.get_close_matches(col, list(found), n=1, cutoff=0.6)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        if sep is not None and len(found) == 1:
            hint += (
                f"; the first line is one column: if its fields are not separated by {sep!r}, "
                "pass the separator with --sep"
            )
        raise DataError(
            f"{path}: missing column {col!r} (role {role}); columns found: "
            f"{sniff.visible(', '.join(map(str, found))) or '(none)'}{hint}"
        )


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _read_table(
    path: Path,
    fmt: str,
    *,
    sep: str | None,
    header: bool,
    encoding: str,
    quoting: bool | None,
    names: Sequence[str] | None,
    wanted: Mapping[str, str],
    types: Mapping[str, pa.DataType] | None = None,
    retry: bool = False,
) -> pa.Table:
    """Read only the ``wanted`` columns (role -> name) of ``path`` into an Arrow table.

    ``types`` pins column types (name -> type). With ``retry``, a conversion failure
    propagates as ``pa.ArrowInvalid`` so that the caller can re-read as strings.
    """
    _check_file(path)
    sep = _sep_for(fmt, sep) if fmt != "parquet" else ","
    quoting = (fmt == "csv") if quoting is None else quoting
    found = _available_columns(path, fmt, sep, header, encoding, quoting, names)
    _require_columns(path, wanted, found, None if fmt == "parquet" else sep)
    cols = list(dict.fromkeys(wanted.values()))
    if fmt == "parquet":
        try:
            return pq.read_table(_parquet_source(path), columns=cols)
        except (pa.ArrowException, OSError) as exc:
            raise DataError(f"{path}: not a readable parquet file ({_one_line(exc)})") from None
    comp = _compression(path)
    source, delim = _load_delimited_source(path, sep, comp)
    read_opts = pacsv.ReadOptions(
        use_threads=True,
        block_size=_BLOCK_SIZE,
        encoding=encoding,
        column_names=list(names) if names is not None else None,
        skip_rows=1 if (header and names is not None) else 0,
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=delim, quote_char='"' if quoting else False, newlines_in_values=False
    )
    convert_opts = pacsv.ConvertOptions(
        include_columns=cols,
        column_types={c: t for c, t in (types or {}).items() if c in cols},
        strings_can_be_null=True,
        quoted_strings_can_be_null=False,
    )
    try:
        return _parse_csv(
            path,
            fmt,
            source,
            sep=sep,
            delim=delim,
            encoding=encoding,
            retry=retry,
            read_opts=read_opts,
            parse_opts=parse_opts,
            convert_opts=convert_opts,
        )
    except (OSError, EOFError, lzma.LZMAError, pa.ArrowException) as exc:
        if comp is not None and not _is_parse_error(exc):
            raise compression.corrupt(path, comp, exc) from None
        raise
    finally:
        if isinstance(source, pa.NativeFile):
            source.close()


def _is_parse_error(exc: BaseException) -> bool:
    """Whether pyarrow's ``exc`` is about the table's text, not the bytes under it."""
    return isinstance(exc, pa.ArrowInvalid) and not isinstance(exc, OSError)


def _parse_csv(
    path: Path,
    fmt: str,
    source: Any,
    *,
    sep: str,
    delim: str,
    encoding: str,
    retry: bool,
    read_opts: pacsv.ReadOptions,
    parse_opts: pacsv.ParseOptions,
    convert_opts: pacsv.ConvertOptions,
) -> pa.Table:
    """``pyarrow.csv.read_csv`` of ``source`` with the readers' errors."""
    try:
        return pacsv.read_csv(
            source, read_options=read_opts, parse_options=parse_opts, convert_options=convert_opts
        )
    except pa.ArrowInvalid as exc:
        msg = str(exc)
        if retry and "conversion error" in msg.lower():
            raise  # the caller retries with string columns and reports the bad value
        detail = _one_line(exc).replace(delim, sep) if delim != sep else _one_line(exc)
        raise DataError(f"{path}: not a valid {fmt} file ({detail})") from None
    except (UnicodeDecodeError, LookupError, pa.ArrowException) as exc:
        raise DataError(
            f"{path}: cannot read as {fmt} with encoding {encoding} ({_one_line(exc)})"
        ) from None


def _read_with_retry(
    path: Path,
    fmt: str,
    *,
    wanted: Mapping[str, str],
    types: Mapping[str, pa.DataType],
    **kwargs: Any,
) -> pa.Table:
    """Fast typed read; if a typed column fails to convert, re-read those columns as strings
    (slow, error path or odd files only) so that validation can name the bad value."""
    try:
        return _read_table(path, fmt, wanted=wanted, types=types, retry=True, **kwargs)
    except pa.ArrowInvalid:
        as_str = {c: pa.string() for c in wanted.values()}
        return _read_table(path, fmt, wanted=wanted, types=as_str, **kwargs)
