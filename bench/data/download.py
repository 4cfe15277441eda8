"""A dataset's bytes: checksums, the one-time download, and verified extraction.

An archive (downloaded, or shipped inside the package) is checked against the checksums its
manifest knows, extracted into a temporary folder, its files verified again against their
per-file checksums, and renamed into place atomically; nothing is left behind on failure.
A manifest lists only checksums taken from a published source (or, for ``shipped_sha256``,
from the shipped archive itself); whatever it leaves out is not checked.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path, PurePosixPath

from bench.data.manifest import DatasetManifest
from bench.errors import DataError
from bench.text import shown

__all__ = [
    "download_and_extract",
    "extract_verified",
    "sha256_file",
    "verify_files",
]

_CHUNK = 1 << 20  # 1 MiB


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
            console=Console(stderr=True, emoji=False),
            transient=True,
        )
        with progress:
            task = progress.add_task(f"downloading {shown(label)}", total=total)
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


def download_and_extract(
    manifest: DatasetManifest, cache: Path, *, hint: str
) -> tuple[Path, list[str]]:
    """Download, verify, extract into a temp folder, verify, then rename into place
    (``extract_verified``: the folder and the files verified). A failed download raises
    ``DataError`` ending with ``hint`` (what to do offline).

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
                f"({' '.join(str(reason).split())}); {hint}"
            ) from None
        return extract_verified(
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


def extract_verified(
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
        if not manifest.has_files(extracted):
            raise DataError(
                f"{where}: expected '{manifest.folder}/{manifest.ratings.path}' inside the archive"
            )
        checked = verify_files(manifest, extracted)
        try:
            os.replace(extracted, target)
        except OSError:
            if not manifest.has_files(target):  # not a concurrent extraction that won
                raise
        return target, checked
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
