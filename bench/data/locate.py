"""Finding a catalog dataset's local copy (extracting the shipped one or downloading it on
first use), and reading it.

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

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.data.download import download_and_extract, extract_verified, sha256_file, verify_files
from bench.data.manifest import DatasetManifest, get_manifest, shipped_archive
from bench.data.readers import read_catalog, read_ratings, read_tags
from bench.data.types import Catalog, RawRatings
from bench.errors import DataError
from bench.paths import cache_root

__all__ = [
    "DATA_DIR_ENV",
    "Located",
    "default_cache_dir",
    "load_catalog",
    "load_dataset",
    "locate_dataset",
    "resolve_dataset_dir",
]

DATA_DIR_ENV = "RATINGBENCH_DATA_DIR"


def default_cache_dir() -> Path:
    """The folder that holds downloaded datasets (each in ``<folder>/``):
    ``$RATINGBENCH_CACHE/datasets``, else ``$XDG_CACHE_HOME/ratingbench/datasets``, else
    ``~/.cache/ratingbench/datasets``."""
    return cache_root() / "datasets"


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
        if manifest.has_files(folder):
            checked = verify_files(manifest, folder) if verify else []
            return Located(folder.absolute(), origin, tuple(checked))
    if shipped is not None:
        folder, checked = extract_verified(
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
    folder, checked = download_and_extract(manifest, cache, hint=_offline_hint(manifest))
    return Located(folder.absolute(), "downloaded", tuple(checked))


# --------------------------------------------------------------------------- reading


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
