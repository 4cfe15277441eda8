"""The dataset catalog: TOML manifests in ``datasets/``, local resolution, one-time download.

A manifest (``datasets/<name>.toml``) declares where a dataset comes from (URL, archive
checksums, the folder inside the archive), how to read each of its files (format, separator,
header, encoding, column names mapped to roles) and its rating scale. Adding a dataset means
adding a manifest; no code changes.

Where the files are looked for, in order (each is a folder that *contains* ``<folder>/``):

1. ``data_dir`` (the CLI's ``--data-dir``),
2. ``$RATINGBENCH_DATA_DIR``,
3. the download cache: ``cache_dir``, else ``$RATINGBENCH_CACHE/datasets``, else
   ``~/.cache/ratingbench/datasets`` (``$XDG_CACHE_HOME`` is honoured),
4. the shipped copy's extraction, ``<cache>/shipped/``.

A folder qualifies when it holds the ratings file. If none does and the manifest names a
``shipped`` archive (a zip inside the package, ``bench/data/shipped/``: ml-latest-small, whose
licence allows redistribution; its README with the licence lies beside it), that archive is
extracted into ``<cache>/shipped/`` (verified, extracted to a temporary folder, verified
again against the per-file checksums, renamed into place atomically): the same files as the
download, without the network, so it is preferred to downloading. Otherwise the archive is
downloaded once into the cache the same way, and later calls find it there. Checksums are
verified where the manifest knows them; a manifest lists only checksums taken from a published
source (or, for ``shipped_sha256``, from the shipped archive itself), and whatever it leaves
out is not checked. ``locate_dataset`` also says which copy was used (``Located.origin``).
"""

from __future__ import annotations

import difflib
import hashlib
import os
import shutil
import sys
import tempfile
import tomllib
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bench.data.readers import FORMATS, TableOptions, read_catalog, read_ratings, read_tags
from bench.data.types import Catalog, RawRatings
from bench.errors import ConfigError, DataError
from bench.paths import cache_root
from predictors.types import RatingScale

__all__ = [
    "SHIPPED_DIR",
    "DatasetManifest",
    "FileSpec",
    "Located",
    "default_cache_dir",
    "get_manifest",
    "list_datasets",
    "load_dataset",
    "load_manifest",
    "locate_dataset",
    "manifest_dirs",
    "resolve_dataset_dir",
    "sha256_file",
    "shipped_archive",
    "verify_files",
]

MANIFESTS_ENV = "RATINGBENCH_MANIFESTS"
DATA_DIR_ENV = "RATINGBENCH_DATA_DIR"
#: Datasets that exist without a manifest (generated in memory by another module).
BUILTIN_NAMES = ("synthetic",)
#: Where the archives a manifest names in ``shipped`` live (package data of ``bench``).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"

_CHUNK = 1 << 20  # 1 MiB
_FILE_ROLES = ("ratings", "movies", "tags")
_TOP_KEYS = {
    "name",
    "description",
    "url",
    "homepage",
    "folder",
    "archive_sha256",
    "archive_md5",
    "n_ratings",
    "scale",
    "files",
    "shipped",
    "shipped_sha256",
}
_FILE_KEYS = {
    "path",
    "format",
    "sep",
    "header",
    "encoding",
    "quoting",
    "names",
    "columns",
    "genre_flags",
    "sha256",
    "md5",
}


@dataclass(frozen=True)
class FileSpec:
    """How to read one file of a dataset (relative to the dataset folder)."""

    path: str  # relative POSIX path inside the dataset folder
    format: str  # csv | tsv | dat | parquet
    sep: str | None = None  # None: the format's default
    header: bool = True
    encoding: str = "utf-8"
    quoting: bool | None = None  # None: on for csv only
    names: tuple[str, ...] | None = None  # every column in order, for files without a header
    columns: Mapping[str, str] = field(default_factory=dict)  # role -> column name
    genre_flags: tuple[str, ...] | None = None  # 0/1 genre columns (movies only)
    sha256: str | None = None  # known checksum of the extracted file, else None
    md5: str | None = None

    def reader_kwargs(self) -> TableOptions:
        """Keyword arguments for ``bench.data.readers`` (path excluded)."""
        return {
            "format": self.format,
            "sep": self.sep,
            "header": self.header,
            "encoding": self.encoding,
            "quoting": self.quoting,
            "names": list(self.names) if self.names is not None else None,
            "columns": dict(self.columns),
        }


@dataclass(frozen=True)
class DatasetManifest:
    """A dataset's declaration, parsed from ``datasets/<name>.toml``."""

    name: str
    description: str  # one line
    url: str  # the archive (zip) to download
    folder: str  # the folder inside the archive, and under every data dir
    scale: RatingScale
    files: Mapping[str, FileSpec]  # role ("ratings", "movies", "tags") -> spec
    archive_sha256: str | None = None  # None: unknown, not verified
    archive_md5: str | None = None
    homepage: str | None = None
    n_ratings: int | None = None  # as documented by the publisher (informational)
    manifest_path: Path | None = None
    shipped: str | None = None  # a zip in ``SHIPPED_DIR`` holding ``<folder>/``, else None
    shipped_sha256: str | None = None  # that zip's checksum

    @property
    def ratings(self) -> FileSpec:
        return self.files["ratings"]

    def known_checksums(self) -> dict[str, list[str]]:
        """What verification covers: ``{"archive": [...algorithms], "<file path>": [...]}``."""
        out: dict[str, list[str]] = {}
        archive = [a for a, v in (("sha256", self.archive_sha256), ("md5", self.archive_md5)) if v]
        if archive:
            out["archive"] = archive
        for spec in self.files.values():
            algos = [a for a, v in (("sha256", spec.sha256), ("md5", spec.md5)) if v]
            if algos:
                out[spec.path] = algos
        return out


# --------------------------------------------------------------------------- manifests


def _manifest_error(path: Path, msg: str) -> ConfigError:
    return ConfigError(f"{path}: {msg}")


def _hex(path: Path, key: str, value: Any, n: int) -> str | None:
    if value is None:
        return None
    if not (
        isinstance(value, str)
        and len(value) == n
        and all(c in "0123456789abcdef" for c in value.lower())
    ):
        raise _manifest_error(path, f"{key} must be {n} hex digits, got {value!r}")
    return value.lower()


def _file_spec(path: Path, role: str, d: Any) -> FileSpec:
    if not isinstance(d, dict):
        raise _manifest_error(path, f"[files.{role}] must be a table")
    unknown = set(d) - _FILE_KEYS
    if unknown:
        raise _manifest_error(
            path,
            f"[files.{role}] has unknown key(s) {sorted(unknown)}; known: {sorted(_FILE_KEYS)}",
        )
    if "path" not in d or "format" not in d:
        raise _manifest_error(path, f"[files.{role}] needs `path` and `format`")
    rel = PurePosixPath(d["path"])
    if rel.is_absolute() or ".." in rel.parts:
        raise _manifest_error(path, f"[files.{role}].path must be relative, got {d['path']!r}")
    if d["format"] not in FORMATS:
        raise _manifest_error(
            path, f"[files.{role}].format {d['format']!r} unknown; supported: {', '.join(FORMATS)}"
        )
    return FileSpec(
        path=str(rel),
        format=d["format"],
        sep=d.get("sep"),
        header=bool(d.get("header", True)),
        encoding=d.get("encoding", "utf-8"),
        quoting=d.get("quoting"),
        names=tuple(d["names"]) if "names" in d else None,
        columns=dict(d.get("columns", {})),
        genre_flags=tuple(d["genre_flags"]) if "genre_flags" in d else None,
        sha256=_hex(path, f"[files.{role}].sha256", d.get("sha256"), 64),
        md5=_hex(path, f"[files.{role}].md5", d.get("md5"), 32),
    )


def load_manifest(path: str | Path) -> DatasetManifest:
    """Parse and validate one manifest file.

    Raises ``ConfigError`` naming the file for TOML syntax errors, unknown or missing keys,
    malformed checksums, unknown formats or file roles, and an invalid scale.
    """
    path = Path(path)
    try:
        with path.open("rb") as fh:
            d = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise _manifest_error(path, f"invalid TOML ({exc})") from None
    except OSError as exc:
        raise _manifest_error(path, f"cannot read the manifest ({exc})") from None
    unknown = set(d) - _TOP_KEYS
    if unknown:
        raise _manifest_error(path, f"unknown key(s) {sorted(unknown)}; known: {sorted(_TOP_KEYS)}")
    missing = [k for k in ("name", "description", "url", "folder", "scale", "files") if k not in d]
    if missing:
        raise _manifest_error(path, f"missing required key(s) {missing}")
    files = d["files"]
    if not isinstance(files, dict) or "ratings" not in files:
        raise _manifest_error(path, "needs a [files.ratings] table")
    bad_roles = set(files) - set(_FILE_ROLES)
    if bad_roles:
        raise _manifest_error(
            path, f"unknown file role(s) {sorted(bad_roles)}; known: {list(_FILE_ROLES)}"
        )
    sc = d["scale"]
    try:
        scale = RatingScale(
            low=float(sc["low"]),
            high=float(sc["high"]),
            step=float(sc["step"]) if sc.get("step") is not None else None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise _manifest_error(
            path, f"invalid [scale] (needs low < high, step > 0): {exc}"
        ) from None
    folder = PurePosixPath(d["folder"])
    if folder.is_absolute() or ".." in folder.parts or str(folder) in ("", "."):
        raise _manifest_error(path, f"folder must be a plain relative name, got {d['folder']!r}")
    shipped = d.get("shipped")
    if shipped is not None and (
        not isinstance(shipped, str) or PurePosixPath(shipped).name != shipped or shipped == ".."
    ):
        raise _manifest_error(
            path, f"shipped must be a file name in {SHIPPED_DIR}, got {shipped!r}"
        )
    return DatasetManifest(
        name=str(d["name"]),
        description=str(d["description"]),
        url=str(d["url"]),
        folder=str(folder),
        scale=scale,
        files={role: _file_spec(path, role, files[role]) for role in _FILE_ROLES if role in files},
        archive_sha256=_hex(path, "archive_sha256", d.get("archive_sha256"), 64),
        archive_md5=_hex(path, "archive_md5", d.get("archive_md5"), 32),
        homepage=d.get("homepage"),
        n_ratings=int(d["n_ratings"]) if "n_ratings" in d else None,
        manifest_path=path,
        shipped=shipped,
        shipped_sha256=_hex(path, "shipped_sha256", d.get("shipped_sha256"), 64),
    )


def manifest_dirs() -> list[Path]:
    """Folders searched for ``*.toml`` manifests.

    ``$RATINGBENCH_MANIFESTS`` (one or more folders, ``os.pathsep``-separated) replaces the
    defaults when set. Otherwise: the source tree's ``datasets/`` (next to ``bench/``), else
    ``<sys.prefix>/share/ratingbench/datasets`` where an installed wheel puts them.
    """
    env = os.environ.get(MANIFESTS_ENV)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    source_tree = Path(__file__).resolve().parents[2] / "datasets"
    if source_tree.is_dir():
        return [source_tree]
    return [Path(sys.prefix) / "share" / "ratingbench" / "datasets"]


def list_datasets() -> list[DatasetManifest]:
    """Every manifest found by ``manifest_dirs``, sorted by name.

    Raises ``ConfigError`` for an invalid manifest, a manifest whose ``name`` differs from
    its file name, or two manifests with the same name.
    """
    seen: dict[str, DatasetManifest] = {}
    for folder in manifest_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.toml")):
            m = load_manifest(path)
            if m.name != path.stem:
                raise _manifest_error(
                    path, f"name {m.name!r} must match the file name {path.stem!r}"
                )
            if m.name in BUILTIN_NAMES:
                raise _manifest_error(path, f"{m.name!r} is a built-in dataset name")
            if m.name in seen:
                raise _manifest_error(
                    path, f"dataset {m.name!r} is also declared in {seen[m.name].manifest_path}"
                )
            seen[m.name] = m
    return [seen[k] for k in sorted(seen)]


def get_manifest(name: str) -> DatasetManifest:
    """The manifest called ``name``.

    Raises ``ConfigError`` for an unknown name, listing the known ones (with the built-in
    ``synthetic``) and suggesting the nearest.
    """
    manifests = list_datasets()
    for m in manifests:
        if m.name == name:
            return m
    known = [m.name for m in manifests] + list(BUILTIN_NAMES)
    near = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    hint = f"; did you mean {near[0]!r}?" if near else "."
    raise ConfigError(
        f"unknown dataset {name!r}{hint} Known datasets: {', '.join(known)} "
        "('synthetic' is generated in memory)"
    )


# --------------------------------------------------------------------------- checksums


def sha256_file(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file, streamed in 1 MiB chunks (constant memory)."""
    h = hashlib.new(algorithm)
    with Path(path).open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _checksum_error(what: str, algo: str, expected: str, actual: str) -> DataError:
    return DataError(
        f"{what}: {algo} checksum mismatch: expected {expected}, got {actual} "
        "(the file is corrupt, truncated or a different release)"
    )


def verify_files(
    manifest: DatasetManifest, folder: Path, *, roles: tuple[str, ...] | None = None
) -> list[str]:
    """Check the known checksums of the dataset's files present in ``folder``.

    Returns the relative paths that were verified (files without a known checksum, and
    absent optional files, are skipped). Raises ``DataError`` naming the file, the expected
    and the actual digest on a mismatch.
    """
    checked = []
    for role, spec in manifest.files.items():
        if roles is not None and role not in roles:
            continue
        p = folder / spec.path
        if not p.is_file():
            continue
        for algo, expected in (("sha256", spec.sha256), ("md5", spec.md5)):
            if expected is None:
                continue
            actual = sha256_file(p, algo)
            if actual != expected:
                raise _checksum_error(str(p), algo, expected, actual)
            checked.append(spec.path)
    return sorted(set(checked))


# --------------------------------------------------------------------------- resolution


def default_cache_dir() -> Path:
    """The folder that holds downloaded datasets (each in ``<folder>/``):
    ``$RATINGBENCH_CACHE/datasets``, else ``$XDG_CACHE_HOME/ratingbench/datasets``, else
    ``~/.cache/ratingbench/datasets``."""
    return cache_root() / "datasets"


def _has_files(manifest: DatasetManifest, folder: Path) -> bool:
    return (folder / manifest.ratings.path).is_file()


def _offline_hint(manifest: DatasetManifest) -> str:
    return (
        f"point at an extracted copy with --data-dir DIR or {DATA_DIR_ENV}=DIR (the folder "
        f"that contains '{manifest.folder}/'), or use --dataset synthetic"
    )


@dataclass(frozen=True)
class Located:
    """Where a dataset's files were found, and which copy that is."""

    folder: Path  # the folder holding the files (``.../<folder>``), absolute
    origin: str  # data_dir | env | cache | shipped | downloaded
    verified: tuple[str, ...]  # the files whose known checksums were checked (relative paths)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: what a run records in ``dataset.origin``."""
        return {"kind": self.origin, "folder": str(self.folder), "verified": list(self.verified)}


def shipped_archive(manifest: DatasetManifest) -> Path | None:
    """The zip shipped inside the package for ``manifest``, or None (none declared, or the
    file is absent from this installation)."""
    if manifest.shipped is None:
        return None
    p = SHIPPED_DIR / manifest.shipped
    return p if p.is_file() else None


def resolve_dataset_dir(
    manifest: DatasetManifest,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    *,
    verify: bool = True,
) -> Path:
    """The folder holding the dataset's files (``.../<folder>``): ``locate_dataset(...).folder``."""
    return locate_dataset(manifest, data_dir, cache_dir, download, verify=verify).folder


def locate_dataset(
    manifest: DatasetManifest,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    *,
    verify: bool = True,
) -> Located:
    """Find the dataset's files, extracting the shipped copy or downloading on first use.

    Looks at ``data_dir/<folder>``, ``$RATINGBENCH_DATA_DIR/<folder>``, then
    ``cache_dir/<folder>`` (default ``default_cache_dir()``) and ``cache_dir/shipped/<folder>``;
    the first holding the ratings file wins. With ``verify``, the files' known sha256/md5 are
    checked (streamed; cheap). Otherwise the shipped archive, when the manifest names one, is
    extracted into ``cache_dir/shipped/`` (whether or not ``download`` is allowed: it is no
    download); else, when ``download`` is true, the archive is fetched into the cache once.

    Raises ``DataError`` when the dataset is absent and cannot be (or may not be) downloaded,
    and on any checksum mismatch (naming the file, expected and actual digests).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    candidates: list[tuple[Path, str]] = []
    if data_dir is not None:
        candidates.append((Path(data_dir).expanduser() / manifest.folder, "data_dir"))
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        candidates.append((Path(env).expanduser() / manifest.folder, "env"))
    candidates.append((cache / manifest.folder, "cache"))
    shipped = shipped_archive(manifest)
    if shipped is not None:
        candidates.append((cache / "shipped" / manifest.folder, "shipped"))
    for folder, origin in candidates:
        if _has_files(manifest, folder):
            checked = verify_files(manifest, folder) if verify else []
            return Located(folder.absolute(), origin, tuple(checked))
    if shipped is not None:
        folder, checked = _extract_verified(
            manifest,
            shipped,
            cache / "shipped",
            where=f"{shipped.name} (shipped with ratingbench)",
            checksums=(("sha256", manifest.shipped_sha256, sha256_file(shipped)),),
        )
        return Located(folder.absolute(), "shipped", tuple(checked))
    searched = ", ".join(str(c) for c, _ in candidates)
    if not download:
        raise DataError(
            f"dataset {manifest.name!r} not found (looked in {searched}) and downloading is "
            f"off; {_offline_hint(manifest)}"
        )
    folder, checked = _download_and_extract(manifest, cache)
    return Located(folder.absolute(), "downloaded", tuple(checked))


def _fetch(url: str, dest: Path, label: str) -> tuple[str, str]:
    """Stream ``url`` into ``dest`` with a progress bar; return (sha256, md5) hex digests."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    req = urllib.request.Request(url, headers={"User-Agent": "ratingbench"})
    with urllib.request.urlopen(req, timeout=60) as resp, dest.open("wb") as out:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        with progress:
            task = progress.add_task(f"downloading {label}", total=total)
            while chunk := resp.read(_CHUNK):
                out.write(chunk)
                sha.update(chunk)
                md5.update(chunk)
                progress.advance(task, len(chunk))
    return sha.hexdigest(), md5.hexdigest()


def _safe_extract(zf: zipfile.ZipFile, dest: Path, archive: str) -> None:
    """Extract, refusing members that would land outside ``dest`` (zip slip)."""
    for info in zf.infolist():
        member = PurePosixPath(info.filename)
        if member.is_absolute() or ".." in member.parts:
            raise DataError(f"{archive}: refusing unsafe member path {info.filename!r}")
    zf.extractall(dest)


def _download_and_extract(manifest: DatasetManifest, cache: Path) -> tuple[Path, list[str]]:
    """Download, verify, extract into a temp folder, verify, then rename into place
    (``_extract_verified``: the folder and the files verified).

    Nothing is left behind on failure: the temporary archive and folder are removed.
    """
    archive_name = PurePosixPath(urllib.parse.urlparse(manifest.url).path).name or "archive"
    _make_dir(cache)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{manifest.folder}-", suffix=".zip.part", dir=cache)
    os.close(fd)
    tmp_zip = Path(tmp_name)
    try:
        try:
            sha, md5 = _fetch(manifest.url, tmp_zip, manifest.name)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise DataError(
                f"dataset {manifest.name!r} could not be downloaded from {manifest.url} "
                f"({' '.join(str(reason).split())}); {_offline_hint(manifest)}"
            ) from None
        return _extract_verified(
            manifest,
            tmp_zip,
            cache,
            where=f"{archive_name} (from {manifest.url})",
            checksums=(
                ("sha256", manifest.archive_sha256, sha),
                ("md5", manifest.archive_md5, md5),
            ),
        )
    finally:
        tmp_zip.unlink(missing_ok=True)


def _make_dir(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DataError(
            f"cannot create the dataset cache {folder}: {exc} (set RATINGBENCH_CACHE to a "
            "writable folder)"
        ) from None


def _extract_verified(
    manifest: DatasetManifest,
    archive: Path,
    parent: Path,
    *,
    where: str,
    checksums: tuple[tuple[str, str | None, str], ...],
) -> tuple[Path, list[str]]:
    """Check the archive's ``checksums`` (algorithm, expected or None, actual), extract it
    into a temporary folder in ``parent``, verify the files' known checksums, then rename
    ``<folder>/`` into ``parent`` atomically. Returns ``parent/<folder>``; nothing is left
    behind on failure."""
    for algo, expected, actual in checksums:
        if expected is not None and actual != expected:
            raise _checksum_error(where, algo, expected, actual)
    _make_dir(parent)
    target = parent / manifest.folder
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{manifest.folder}-extract-", dir=parent))
    try:
        try:
            with zipfile.ZipFile(archive) as zf:
                _safe_extract(zf, tmp_dir, archive.name)
        except zipfile.BadZipFile as exc:
            raise DataError(f"{where}: not a zip archive ({exc})") from None
        extracted = tmp_dir / manifest.folder
        if not _has_files(manifest, extracted):
            raise DataError(
                f"{where}: expected '{manifest.folder}/{manifest.ratings.path}' inside the archive"
            )
        checked = verify_files(manifest, extracted)
        try:
            os.replace(extracted, target)
        except OSError:
            if not _has_files(manifest, target):  # not a concurrent extraction that won
                raise
        return target, checked
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


# --------------------------------------------------------------------------- loading


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    download: bool = True,
    *,
    verify: bool = True,
) -> tuple[RawRatings, Catalog | None]:
    """Resolve (downloading on first use) and read a catalog dataset.

    Returns the ratings (``source`` = the dataset name, scale from the manifest) and the
    movie catalog with tags attached when the files exist (``None`` when the folder has no
    movies file). Raises ``ConfigError`` for an unknown name and ``DataError`` as
    ``resolve_dataset_dir`` and the readers do.
    """
    manifest = get_manifest(name)
    folder = resolve_dataset_dir(manifest, data_dir, cache_dir, download, verify=verify)
    spec = manifest.ratings
    raw = read_ratings(
        folder / spec.path, **spec.reader_kwargs(), scale=manifest.scale, source=manifest.name
    )
    return raw, load_catalog(manifest, folder)


def load_catalog(manifest: DatasetManifest, folder: Path) -> Catalog | None:
    """The movie catalog of a resolved dataset folder, with tags attached when the files
    exist; ``None`` when the folder has no movies file."""
    movies = manifest.files.get("movies")
    if movies is None or not (folder / movies.path).is_file():
        return None
    tags = None
    tag_spec = manifest.files.get("tags")
    if tag_spec is not None and (folder / tag_spec.path).is_file():
        tags = read_tags(folder / tag_spec.path, **tag_spec.reader_kwargs())
    return read_catalog(
        folder / movies.path,
        **movies.reader_kwargs(),
        genre_flags=movies.genre_flags,
        tags=tags,
    )
