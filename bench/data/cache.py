"""A binary cache of loaded ``Interactions``, so that a second run skips parsing the ratings.

One entry per source: ``<cache_dir>/<key>.npz``, an *uncompressed* ``np.savez`` archive of
the Interactions arrays plus a ``meta`` member (JSON text as uint8 bytes) holding the
scale, name, hash, ``meta``, the source identity and a checksum of the auxiliary arrays.
One file, so that writing it is atomic (a temporary file in the same folder, then
``os.replace``): a reader sees a complete entry or none.

The key (``source_key``) is a digest of the cache format version, the source file's
resolved path and size, its whole-content SHA-256 (``fingerprint``) and the reader options.
Any edit of the file, even one that keeps its size and modification time, gives a new key.
Hashing the whole file is cheap next to what the cache saves: for a 348 MB CSV of 13.6M
ratings it cost 0.40 s of CPU (0.64 s wall on a loaded 2-core machine) against 12.7 s to
parse the file and 1.8 s to read and verify the cache entry. The modification time is not
part of the key: a touched but unchanged file keeps its entry. Bump ``CACHE_FORMAT``
whenever ``build_interactions`` changes what it produces.

Verification on load: the Interactions hash covers the content (original user and item ids
of every event, ratings, timestamps, scale), so ``load_interactions`` recomputes it and
compares (streaming the id gathers in chunks, so no N-row temporaries), plus a small
checksum of ``user_offsets`` and a structural check of the offsets. At
13.6M ratings the recomputed hash costs ~0.25 s of CPU (SHA-256 over ~380 MB) against ~0.15 s
to read the arrays: a cheaper checksum of the stored bytes would save ~0.2 s, but only the
recomputed hash proves that the ``hash`` a run records is the hash of the data it used.
An entry that cannot be read, or fails a check, is deleted with a ``CacheWarning`` and
``None`` is returned: the caller parses the source again and saves a fresh entry. A cache
is never trusted without the check.

The cache directory is ``$RATINGBENCH_CACHE/interactions`` when that variable is set, else
``$XDG_CACHE_HOME/ratingbench/interactions``, else ``~/.cache/ratingbench/interactions``.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from bench.data.types import Interactions, content_hash, hash_arrays
from bench.fileio import atomic_write, clean_stale_temps
from bench.paths import cache_root
from predictors.types import RatingScale

__all__ = [
    "CACHE_FORMAT",
    "CacheWarning",
    "cached_interactions",
    "default_cache_dir",
    "fingerprint",
    "load_interactions",
    "save_interactions",
    "source_key",
]

# 2: the dataset hash is SHA-256 based; 3: ties sorted on content, timestamps converted to
# seconds from the detected unit, no user_first_seen; 4: datetimes sorted at their own
# (sub-second) resolution before they are floored to seconds
CACHE_FORMAT = 4

_META = "meta"  # the member holding the JSON metadata

# array member -> dtype it must have
_ARRAYS: dict[str, np.dtype[Any]] = {
    "user": np.dtype(np.int32),
    "item": np.dtype(np.int32),
    "rating": np.dtype(np.float32),
    "timestamp": np.dtype(np.int64),
    "user_offsets": np.dtype(np.int64),
    "user_ids": np.dtype(np.int64),
    "item_ids": np.dtype(np.int64),
}


class CacheWarning(UserWarning):
    """A cache entry was unreadable or failed its checksum and was deleted."""


class _Invalid(Exception):
    """Internal: the entry is unusable (the message says why)."""


def default_cache_dir() -> Path:
    """``$RATINGBENCH_CACHE/interactions``, else ``$XDG_CACHE_HOME/ratingbench/interactions``,
    else ``~/.cache/ratingbench/interactions``."""
    return cache_root() / "interactions"


def fingerprint(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of the whole file (64 hex chars), streamed. Raises ``OSError`` if
    unreadable."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def source_key(path: str | os.PathLike[str], options: Mapping[str, Any] | None = None) -> str:
    """The cache key of a ratings file read with ``options`` (reader keyword arguments;
    values are stringified with ``repr`` where not JSON-able): a 32-hex-char digest of the
    cache format, resolved path, size, whole-file ``fingerprint`` and options.
    Raises ``OSError`` if the file cannot be read."""
    p = Path(path).resolve()
    st = p.stat()
    ident = {
        "format": CACHE_FORMAT,
        "path": str(p),
        "size": st.st_size,
        "fingerprint": fingerprint(p),
        "options": {str(k): v for k, v in sorted((options or {}).items())},
    }
    text = json.dumps(ident, sort_keys=True, default=repr)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _entry(key: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    if not key or not all(c.isalnum() or c in "-_" for c in key):
        raise ValueError(f"cache key must be a non-empty [A-Za-z0-9_-] string, got {key!r}")
    d = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return d / f"{key}.npz"


def _aux_hash(inter: Interactions) -> str:
    return hash_arrays(inter.user_offsets)


def save_interactions(
    inter: Interactions,
    key: str,
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    source: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``inter`` as the entry ``key`` (atomically; an existing entry is replaced).
    ``source`` (JSON-able) is recorded in the metadata for humans. Returns the entry's path.
    Raises ``OSError`` when the folder cannot be written, ``TypeError`` when ``inter.meta``
    is not JSON-able."""
    path = _entry(key, cache_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(path.parent)  # entries half-written by killed runs (can be GBs)
    meta = {
        "format": CACHE_FORMAT,
        "key": key,
        "name": inter.name,
        "hash": inter.hash,
        "aux_hash": _aux_hash(inter),
        "scale": inter.scale.to_dict(),
        "meta": inter.meta,
        "n_ratings": len(inter),
        "n_users": inter.n_users,
        "n_items": inter.n_items,
        "source": dict(source or {}),
    }
    meta_bytes = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    arrays = {
        name: np.ascontiguousarray(getattr(inter, name), dtype=dt) for name, dt in _ARRAYS.items()
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a name
            np.savez(f, **arrays, **{_META: meta_bytes})  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())

    atomic_write(path, write)
    return path


def _read(path: Path) -> Interactions:
    """Read and verify an entry; raises ``_Invalid`` (or an I/O / format error)."""
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        missing = {*_ARRAYS, _META} - names
        if missing:
            raise _Invalid(f"missing member(s) {sorted(missing)}")
        meta = json.loads(z[_META].tobytes().decode())
        if meta.get("format") != CACHE_FORMAT:
            raise _Invalid(f"cache format {meta.get('format')!r}, expected {CACHE_FORMAT}")
        arrays = {}
        for name, dt in _ARRAYS.items():
            a = z[name]
            if a.dtype != dt or a.ndim != 1:
                raise _Invalid(f"{name}: {a.dtype}{a.shape}, expected 1-d {dt}")
            arrays[name] = a
    n = arrays["user"].shape[0]
    n_users, n_items = arrays["user_ids"].shape[0], arrays["item_ids"].shape[0]
    off = arrays["user_offsets"]
    if (
        n != meta["n_ratings"]
        or n_users != meta["n_users"]
        or n_items != meta["n_items"]
        or any(arrays[c].shape[0] != n for c in ("item", "rating", "timestamp"))
        or off.shape[0] != n_users + 1
        or (n and not (off[0] == 0 and off[-1] == n))
    ):
        raise _Invalid("array lengths disagree with the metadata")
    # codes index the id maps: out-of-range codes would make the hash itself fail
    for codes, size, what in ((arrays["user"], n_users, "user"), (arrays["item"], n_items, "item")):
        if n and (int(codes.min()) < 0 or int(codes.max()) >= size):
            raise _Invalid(f"{what} codes out of range")
    inter = Interactions(
        **arrays,
        scale=RatingScale(**meta["scale"]),
        name=meta["name"],
        hash=meta["hash"],
        meta=meta["meta"],
    )
    if _aux_hash(inter) != meta["aux_hash"]:
        raise _Invalid("checksum of user_offsets does not match")
    if content_hash(inter) != meta["hash"]:
        raise _Invalid("content hash does not match")
    return inter


def load_interactions(
    key: str, cache_dir: str | os.PathLike[str] | None = None
) -> Interactions | None:
    """The cached ``Interactions`` of ``key``, verified, or ``None`` when there is no entry.
    An entry that cannot be read or fails verification is deleted with a ``CacheWarning``
    and ``None`` is returned."""
    path = _entry(key, cache_dir)
    if not path.is_file():
        return None
    try:
        return _read(path)
    except Exception as e:  # any failure to read means the entry cannot be trusted
        why = f"{type(e).__name__}: {e}" if not isinstance(e, _Invalid) else str(e)
        warnings.warn(
            f"ignoring and deleting the corrupt interactions cache entry {path.name} ({why}); "
            "the ratings will be parsed again",
            CacheWarning,
            stacklevel=2,
        )
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        return None


def cached_interactions(
    path: str | os.PathLike[str],
    build: Callable[[], Interactions],
    *,
    options: Mapping[str, Any] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> Interactions:
    """``build()``'s Interactions of the ratings file ``path`` read with ``options``, from
    the cache when a verified entry exists, else built and saved (a failure to save is a
    ``CacheWarning``, not an error). ``build`` must depend only on the file and ``options``."""
    key = source_key(path, options)
    inter = load_interactions(key, cache_dir)
    if inter is not None:
        return inter
    inter = build()
    try:
        save_interactions(inter, key, cache_dir, source={"path": str(path)})
    except (OSError, TypeError, ValueError) as e:
        warnings.warn(f"could not write the interactions cache: {e}", CacheWarning, stacklevel=2)
    return inter
