"""A checkpoint folder on disk: its layout (``checkpoint.json``, ``state.json``,
``arrays.npz``) and format version, the atomic write of a whole folder, reading and checking
its files back, and the code identity recorded in ``checkpoint.json`` (``code_changes``)."""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from predictors.persist.errors import CheckpointError
from predictors.persist.state import _module_key

__all__ = [
    "ARRAYS_FILE",
    "CHECKPOINT_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "STATE_FILE",
    "code_changes",
    "read_checkpoint",
]

FORMAT = "ratingbench.model"
FORMAT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.json"
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"


# -- code identity -----------------------------------------------------------------------
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _file_of(module: str) -> Path | None:
    mod = sys.modules.get(module)
    file = getattr(mod, "__file__", None) if mod is not None else None
    return Path(file) if file and Path(file).is_file() else None


def _package_version() -> str | None:
    try:
        return metadata.version("ratingbench")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a source tree
        return None


def _code_identity(modules: set[str]) -> dict[str, Any]:
    """sha256 of the file of every module in ``modules`` (the standard library, numpy and
    torch left out), keyed by module name, and the package version."""
    files: dict[str, str | None] = {}
    for module in sorted(modules):
        top = module.split(".")[0]
        if top in ("builtins", "typing", "abc", "numpy", "torch", "dataclasses"):
            continue
        path = _file_of(module)
        files[_module_key(module)] = None if path is None else _sha256(path)
    return {"package": "ratingbench", "version": _package_version(), "files": files}


_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # the ``predictors`` package's folder


def _package_file(module: str) -> Path | None:
    """The file of ``predictors.X.Y`` found from the package's own folder (never imported):
    ``X/Y.py`` or ``X/Y/__init__.py``; None when there is none."""
    parts = module.split(".")[1:]
    base = _PACKAGE_DIR.joinpath(*parts)
    for cand in ((base.parent / f"{parts[-1]}.py") if parts else None, base / "__init__.py"):
        if cand is not None and cand.is_file():
            return cand
    return None


def _recorded_files(recorded: Any, source: str) -> dict[str, str | None]:
    """``recorded["files"]`` checked: module names mapped to a sha256 or None. Raises
    ``CheckpointError`` naming ``source`` and the field otherwise."""
    if not isinstance(recorded, Mapping):
        raise CheckpointError(f"{source}: 'code' must be an object, got {_kind(recorded)}")
    files = recorded.get("files") or {}
    if not isinstance(files, Mapping):
        raise CheckpointError(f"{source}: 'code.files' must be an object, got {_kind(files)}")
    version = recorded.get("version")
    if version is not None and not isinstance(version, str):
        raise CheckpointError(f"{source}: 'code.version' must be a string, got {_kind(version)}")
    for key, digest in files.items():
        if not _MODULE_NAME.fullmatch(key):
            raise CheckpointError(f"{source}: 'code.files' key {key[:80]!r} is not a module name")
        if digest is not None and not (isinstance(digest, str) and _SHA256.fullmatch(digest)):
            raise CheckpointError(
                f"{source}: 'code.files.{key}' must be a sha256 (64 hex digits) or null, "
                f"got {_kind(digest)}"
            )
    return dict(files)


def _kind(v: Any) -> str:
    """How a bad value is named in a message: its JSON type, and the value when short."""
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    kind = names.get(type(v), "null" if v is None else f"a {type(v).__name__}")
    text = json.dumps(v) if isinstance(v, bool | int | float | str) else ""
    return f"{kind} {text}" if text and len(text) <= 40 else kind


def code_changes(recorded: Any, cls: type, *, source: str = CHECKPOINT_FILE) -> str | None:
    """How the code that ``cls`` is made of now differs from a checkpoint's record
    (``checkpoint.json["code"]``), or None: a file whose sha256 changed, a module that no
    longer exists, or (for files without a hash) another package version.

    Nothing is imported: a recorded module is hashed at a path derived here, never from the
    record: the file of a module of ``cls`` (or its bases: a plugin's module is the file it
    was loaded from), a module of ``predictors`` by its place in the package's folder, or a
    module the model's code has already imported. Any other name (one no code of the model
    loaded) counts as a change. Raises ``CheckpointError`` naming ``source`` when the record
    is not a map of module names to sha256 digests."""
    files = _recorded_files(recorded, source)
    here: dict[str, str] = {_module_key(c.__module__): c.__module__ for c in cls.__mro__}
    for key, digest in files.items():
        module = here.get(key)
        if module is not None:
            path = _file_of(module)
        elif key == "predictors" or key.startswith("predictors."):
            path = _package_file(key)
        elif key.startswith("ratingbench_plugin_"):
            return f"{key} is not the module of {cls.__qualname__} now"
        elif key in sys.modules:
            path = _file_of(key)
        else:
            return (
                f"{key} is neither a module of {cls.__qualname__} nor of ratingbench, and no "
                "code of the model has imported it (it is not imported to check it)"
            )
        if path is None:
            if digest is not None:
                return f"the file of {key} cannot be found now"
            continue
        now = _sha256(path)
        if digest is not None and now != digest:
            return f"{path.name} is not the file it was: sha256 {digest[:12]} -> {now[:12]}"
    version = recorded.get("version")
    if any(d is None for d in files.values()) and version and version != _package_version():
        return f"ratingbench is now version {_package_version()} (was {version})"
    return None


# -- writing -------------------------------------------------------------------------------
def _plain(v: Any) -> Any:
    """``v`` as standard JSON values, as the results file writes them: numpy numbers as
    numbers, arrays as lists, NaN and infinities as None (facts for a reader, not state)."""
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    if isinstance(v, np.ndarray):
        return _plain(v.tolist())
    if isinstance(v, np.generic):
        return _plain(v.item())
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"a {type(v).__name__} is not JSON-able")


def _json_text(obj: Any) -> str:
    return json.dumps(obj, indent=1, allow_nan=False) + "\n"


def _write_folder(
    folder: Path, arrays: Mapping[str, np.ndarray], state: Any, checkpoint: Any
) -> None:
    """Write ``arrays.npz``, ``state.json`` and ``checkpoint.json`` into a temporary folder
    beside ``folder``, then rename it into place (``_replace_folder``); nothing is left
    behind when a write fails."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        with open(tmp / ARRAYS_FILE, "wb") as fh:
            np.savez(fh, **arrays)  # type: ignore[arg-type]
        (tmp / STATE_FILE).write_text(_json_text(state), encoding="utf-8")
        (tmp / CHECKPOINT_FILE).write_text(_json_text(checkpoint), encoding="utf-8")
        os.chmod(tmp, 0o755)
        _replace_folder(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace_folder(tmp: Path, folder: Path) -> None:
    """Rename ``tmp`` to ``folder``; an existing ``folder`` is moved aside first and removed
    after, so that ``folder`` is never a mix of two saves."""
    if not folder.exists():
        os.rename(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    os.rmdir(old)
    os.rename(folder, old)
    try:
        os.rename(tmp, folder)
    except BaseException:
        os.rename(old, folder)
        raise
    shutil.rmtree(old, ignore_errors=True)


# -- reading -------------------------------------------------------------------------------
def read_checkpoint(folder: Path) -> dict[str, Any]:
    """The ``checkpoint.json`` of ``folder``. Raises ``CheckpointError`` when it is missing,
    not JSON, or not a ratingbench model checkpoint of a known format version."""
    path = Path(folder) / CHECKPOINT_FILE
    doc = _read_json(path)
    if "class" not in doc:
        raise CheckpointError(f"{path}: no 'class' (the saved model's module:qualname)")
    for key, kinds in _CHECKPOINT_FIELDS.items():
        if key in doc and not isinstance(doc[key], kinds):
            want = " or ".join(_TYPE_NAMES[k] for k in kinds)
            raise CheckpointError(f"{path}: '{key}' must be {want}, got {_kind(doc[key])}")
    return doc


_TYPE_NAMES = {str: "a string", dict: "an object", list: "an array", type(None): "null"}
#: the fields of ``checkpoint.json`` a loader reads, and the JSON types each may have
_CHECKPOINT_FIELDS: dict[str, tuple[type, ...]] = {
    "class": (str,),
    "name": (str, type(None)),
    "config": (dict,),
    "code": (dict, type(None)),
    "unsaved": (dict, list, type(None)),
}


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not valid JSON (corrupt or truncated: {e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ratingbench model checkpoint")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {doc.get('format_version')!r} is not supported "
            f"(this ratingbench reads version {FORMAT_VERSION})"
        )
    return doc


def _read_arrays(folder: Path, manifest: Any) -> dict[str, np.ndarray]:
    path = folder / ARRAYS_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    if not isinstance(manifest, dict):
        raise CheckpointError(f"{folder / STATE_FILE}: no array manifest")
    for k, want in manifest.items():
        if not (
            isinstance(want, dict)
            and isinstance(want.get("dtype"), str)
            and isinstance(want.get("shape"), list)
            and all(isinstance(n, int) and not isinstance(n, bool) for n in want["shape"])
        ):
            raise CheckpointError(
                f"{folder / STATE_FILE}: 'arrays.{k}' must be an object with a dtype string "
                f"and a shape of integers, got {_kind(want)}"
            )
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as e:
        why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{path}: unreadable, truncated or corrupt ({type(e).__name__}: {why})"
        ) from None
    if set(arrays) != set(manifest):
        missing = sorted(set(manifest) - set(arrays))
        extra = sorted(set(arrays) - set(manifest))
        raise CheckpointError(
            f"{path}: arrays do not match the state (missing {missing}, unknown {extra})"
        )
    for k, a in arrays.items():
        want = manifest[k]
        if a.dtype.str != want.get("dtype") or list(a.shape) != list(want.get("shape", [])):
            raise CheckpointError(
                f"{path}: array {k} is {a.dtype.str} {list(a.shape)}, the state says "
                f"{want.get('dtype')} {want.get('shape')}"
            )
    return arrays
