"""The dataset catalog's schema: the TOML manifests in ``datasets/``, read and validated.

A manifest (``datasets/<name>.toml``) declares where a dataset comes from (URL, archive
checksums, the folder inside the archive), how to read each of its files (format, separator,
header, encoding, column names mapped to roles) and its rating scale. Adding a dataset means
adding a manifest; no code changes. ``bench.data.locate`` finds a manifest's local copy (and
``bench.data.download`` fetches and verifies it).
"""

from __future__ import annotations

import difflib
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from bench.data.readers import FORMATS, TableOptions
from bench.errors import ConfigError
from predictors.types import RatingScale

__all__ = [
    "BUILTIN_NAMES",
    "MANIFESTS_ENV",
    "SHIPPED_DIR",
    "DatasetManifest",
    "FileSpec",
    "get_manifest",
    "list_datasets",
    "load_manifest",
    "manifest_dirs",
    "shipped_archive",
]

MANIFESTS_ENV = "RATINGBENCH_MANIFESTS"
#: Datasets that exist without a manifest (generated in memory by another module).
BUILTIN_NAMES = ("synthetic",)
#: Where the archives a manifest names in ``shipped`` live (package data of ``bench``).
SHIPPED_DIR = Path(__file__).resolve().parent / "shipped"

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

    def has_files(self, folder: Path) -> bool:
        """Whether ``folder`` (``.../<folder>``) holds a copy: its ratings file is there."""
        return (folder / self.ratings.path).is_file()

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


def shipped_archive(manifest: DatasetManifest) -> Path | None:
    """The zip shipped inside the package for ``manifest``, or None (none declared, or the
    file is absent from this installation)."""
    if manifest.shipped is None:
        return None
    p = SHIPPED_DIR / manifest.shipped
    return p if p.is_file() else None
