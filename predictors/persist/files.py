"""A checkpoint folder on disk: its layout (``checkpoint.json``, ``state.json``,
``arrays.npz``) and format version, the atomic write of a whole folder, reading and checking
its files back, and the code identity recorded in ``checkpoint.json`` (``code_changes``)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import math
import os
import shutil
import sys
import tempfile
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


def code_changes(recorded: Mapping[str, Any], cls: type) -> str | None:
    """How the code that ``cls`` is made of now differs from a checkpoint's record
    (``checkpoint.json["code"]``), or None: a file whose sha256 changed, a module that no
    longer exists, or (for files without a hash) another package version."""
    files: dict[str, str | None] = dict(recorded.get("files") or {})
    here: dict[str, str] = {_module_key(c.__module__): c.__module__ for c in cls.__mro__}
    for key, digest in files.items():
        module: str = here.get(key, key)
        if module not in sys.modules:
            with contextlib.suppress(ImportError):
                importlib.import_module(module)
        path = _file_of(module)
        if path is None:
            if key.startswith("ratingbench_plugin_") and key not in here:
                return f"{key} is not the module of {cls.__qualname__} now"
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
    return _read_json(path)


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
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as e:
        raise CheckpointError(f"{path}: unreadable ({type(e).__name__}: {e})") from None
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
