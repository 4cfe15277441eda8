"""Saving a fitted model and loading it back, in a safe format (no pickle of objects).

A model's learned state is its instance attributes ending in ``_`` (``mean_``, ``params_``,
``module_``...), the convention of every built-in. ``save_model`` writes a folder::

    checkpoint.json   what the model is and where it came from: format, class
                      (``module:qualname``), config (``get_config()``), the code identity
                      (sha256 of the file of every class in the model's MRO, of a nested
                      model's and of a torch module's class; the package and its version),
                      and the caller's ``meta`` (run id, dataset
                      and split hashes, seed, embedding, learning curve...)
    state.json        the learned state as a tree of JSON values: numbers, strings, lists,
                      dicts, and tagged nodes ({"$": kind, ...}) for arrays, tuples,
                      dataclasses (``RatingScale``, ``FitReport``, ``ALSParams``...),
                      nested models (knn's ``bias_``), torch tensors, devices and modules;
                      plus a manifest of the arrays (name, dtype, shape)
    arrays.npz        every array of the state (numpy arrays, torch tensors and the tensors
                      of a module's ``state_dict``), read with ``allow_pickle=False``

The folder is written beside its final place and renamed into it, so a folder under that
name is always complete. Loading never runs code named by the files beyond importing the
classes a model is built from, and those must live in ``predictors`` or in the module of the
model's own class (or one of its bases): a dataclass or nested model from anywhere else is
refused.

What cannot be saved (``NotSavable``, naming the attribute and its type): an object that is
none of the above (a library's model object, a file, a lambda), an array of Python objects,
and a torch module that cannot be rebuilt. A torch module is rebuilt on load before its
``state_dict`` is loaded (strictly: every key and shape must match): by the model's own
``rebuild_module(attr) -> nn.Module`` when it defines one (called once every other attribute
is restored), and for ``TorchSequencePredictor`` models (``module_``) by calling the model's
``_build`` on a stand-in training set that has the saved item count, scale and window
(``_build`` must put everything it derives from the data into parameters or persistent
buffers: ``transformer``'s mean rating and item biases are). Library adapters: the Surprise
models that predict from arrays (SVD, SVDpp, BaselineOnly, NMF) save those arrays, not the
library's object; the others, and every Cornac model, predict through the library's object
and are not saved (``UNSAVED``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import inspect
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "UNSAVED",
    "CheckpointError",
    "NotSavable",
    "PersistError",
    "class_ref",
    "code_changes",
    "learned_state",
    "load_model",
    "read_checkpoint",
    "save_model",
]

FORMAT = "ratingbench.model"
FORMAT_VERSION = 1
CHECKPOINT_FILE = "checkpoint.json"
STATE_FILE = "state.json"
ARRAYS_FILE = "arrays.npz"
_PLUGIN_MODULE = re.compile(r"^(ratingbench_plugin_.+)_[0-9a-f]{12}$")  # predictors.plugins


class PersistError(ValueError):
    """A model could not be saved or loaded; the message says which and why."""


class NotSavable(PersistError):
    """The model holds state that has no safe saved form."""


class CheckpointError(PersistError):
    """A checkpoint folder is missing files, corrupt, or does not match the class."""


# -- which attributes are state -----------------------------------------------------------
def learned_state(model: Any) -> dict[str, Any]:
    """The attributes of ``model`` that make its learned state: every instance attribute
    whose name ends in ``_`` (not a dunder), in definition order."""
    return {
        k: v
        for k, v in vars(model).items()
        if k.endswith("_") and not k.startswith("__") and k not in _skipped(model)
    }


def _surprise_unsaved(model: Any) -> dict[str, str] | None:
    """The Surprise adapters: the vectorised ones skip the library objects they never read
    when predicting; the others predict through them and cannot be saved."""
    from predictors.adapters import surprise

    if type(model).library_model in getattr(surprise, "_VECTORISED", ()):
        return {
            "algo_": "the library's fitted object; predict reads the arrays",
            "impossible_": "the library's exception class; predict reads the arrays",
        }
    return None


def _library_object(model: Any) -> dict[str, str] | None:
    return None


# Library adapters, by base class: the attributes that are not saved (restored as None), or
# None when the model cannot be saved at all (its predict needs the library's object).
UNSAVED: dict[str, Any] = {
    "predictors.adapters.surprise:SurpriseAdapter": _surprise_unsaved,
    "predictors.adapters.cornac:CornacAdapter": _library_object,
}


def _unsaved_rule(model: Any) -> tuple[str, dict[str, str] | None] | None:
    for base in type(model).__mro__:
        rule = UNSAVED.get(f"{base.__module__}:{base.__qualname__}")
        if rule is not None:
            return base.__qualname__, rule(model)
    return None


def _skipped(model: Any) -> dict[str, str]:
    found = _unsaved_rule(model)
    return {} if found is None or found[1] is None else found[1]


# -- classes ---------------------------------------------------------------------------
def class_ref(cls: type) -> str:
    """``module:qualname`` of a class."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _module_key(module: str) -> str:
    """A module's name as recorded: a file plugin's module without the content digest that
    ``predictors.plugins`` puts in its name (the sha256 tells the content)."""
    m = _PLUGIN_MODULE.match(module)
    return m[1] if m else module


def _same_class(ref: str, cls: type) -> bool:
    mod, _, qual = ref.partition(":")
    return qual == cls.__qualname__ and _module_key(mod) == _module_key(cls.__module__)


def _allowed_modules(top: type) -> set[str]:
    return {c.__module__ for c in top.__mro__}


def _resolve_class(ref: str, top: type) -> type:
    """The class ``ref`` names, when it may be built from a checkpoint of ``top``: it lives
    in ``predictors`` or in the module of ``top`` or one of its bases."""
    mod, colon, qual = ref.partition(":")
    allowed = _allowed_modules(top)
    ok_place = mod == "predictors" or mod.startswith("predictors.") or mod in allowed
    if not colon or not ok_place:
        raise CheckpointError(
            f"the state names the class {ref!r}, which a checkpoint of {class_ref(top)} may not "
            "build (only classes of predictors and of the model's own module)"
        )
    module = sys.modules.get(mod)
    if module is None:
        if mod not in allowed and not mod.startswith("predictors"):
            raise CheckpointError(f"the state names the class {ref!r}, whose module is not loaded")
        try:
            module = importlib.import_module(mod)
        except ImportError as e:
            raise CheckpointError(f"the state names the class {ref!r}: {e}") from None
    obj: Any = module
    for part in qual.split("."):
        obj = getattr(obj, part, None)
    if not inspect.isclass(obj):
        raise CheckpointError(f"the state names the class {ref!r}, which does not exist now")
    return obj


def _is_predictor(obj: Any) -> bool:
    return not inspect.isclass(obj) and all(
        callable(getattr(obj, m, None)) for m in ("fit", "predict", "get_config")
    )


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


# -- encoding ------------------------------------------------------------------------------
def _torch() -> Any:
    return sys.modules.get("torch")


class _Writer:
    """Encodes values to JSON nodes, collecting arrays and the classes met."""

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}
        self.classes: set[type] = set()

    def array(self, a: np.ndarray, where: str) -> str:
        if a.dtype.hasobject:
            raise NotSavable(f"{where} is an array of Python objects (dtype object)")
        key = f"a{len(self.arrays)}"
        self.arrays[key] = np.ascontiguousarray(a)
        return key

    def tensor(self, t: Any, where: str) -> dict[str, Any]:
        torch = _torch()
        device = str(t.device)
        t = t.detach().cpu()
        dtype = str(t.dtype).removeprefix("torch.")
        if t.dtype == torch.bfloat16:
            a = t.view(torch.int16).numpy()
        else:
            try:
                a = t.numpy()
            except (TypeError, RuntimeError) as e:
                raise NotSavable(f"{where} is a torch tensor of dtype {dtype} ({e})") from None
        return {"$": "tensor", "array": self.array(a, where), "dtype": dtype, "device": device}

    def encode(self, v: Any, where: str) -> Any:
        if v is None or isinstance(v, bool | str):
            return v
        if isinstance(v, int) and not isinstance(v, np.integer):
            return v
        if isinstance(v, float) and not isinstance(v, np.floating):
            return v if math.isfinite(v) else {"$": "float", "value": repr(v)}
        if isinstance(v, np.generic):
            return {"$": "scalar", "array": self.array(np.asarray(v), where)}
        if isinstance(v, np.ndarray):
            return {"$": "ndarray", "array": self.array(v, where)}
        torch = _torch()
        if torch is not None:
            if isinstance(v, torch.Tensor):
                return self.tensor(v, where)
            if isinstance(v, torch.device):
                return {"$": "torch.device", "value": str(v)}
            if isinstance(v, torch.nn.Module):
                self.classes.add(type(v))
                state = {
                    k: self.tensor(t, f"{where}.state_dict()[{k!r}]")
                    for k, t in v.state_dict().items()
                }
                return {
                    "$": "module",
                    "class": class_ref(type(v)),
                    "training": bool(v.training),
                    "state": state,
                }
        if isinstance(v, list):
            return [self.encode(x, f"{where}[{i}]") for i, x in enumerate(v)]
        if isinstance(v, tuple) and not hasattr(v, "_fields"):
            return {
                "$": "tuple",
                "items": [self.encode(x, f"{where}[{i}]") for i, x in enumerate(v)],
            }
        if isinstance(v, dict) and type(v) is dict:
            if all(isinstance(k, str) for k in v):
                return {
                    "$": "dict",
                    "items": {k: self.encode(x, f"{where}[{k!r}]") for k, x in v.items()},
                }
            keys = [k for k in v if not isinstance(k, str | int | float | bool) and k is not None]
            if keys:
                raise NotSavable(f"{where} is a dict with a key of type {type(keys[0]).__name__}")
            return {
                "$": "dict",
                "pairs": [[k, self.encode(x, f"{where}[{k!r}]")] for k, x in v.items()],
            }
        if _is_predictor(v):
            self.classes.update(type(v).__mro__)
            return {"$": "model", **self.model(v, where)}
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            fields = {
                f.name: self.encode(getattr(v, f.name), f"{where}.{f.name}")
                for f in dataclasses.fields(v)
            }
            return {"$": "dataclass", "class": class_ref(type(v)), "fields": fields}
        raise NotSavable(
            f"{where} is a {type(v).__module__}.{type(v).__qualname__}, which has no safe saved "
            "form (arrays, tensors, torch modules, JSON values and dataclasses of them are saved)"
        )

    def model(self, model: Any, where: str) -> dict[str, Any]:
        found = _unsaved_rule(model)
        if found is not None and found[1] is None:
            raise NotSavable(
                f"{where} ({getattr(model, 'name', type(model).__name__)}) predicts through "
                f"the library's own fitted object, which has no safe saved form ({found[0]})"
            )
        try:
            config = json.loads(json.dumps(model.get_config(), allow_nan=False))
        except (TypeError, ValueError) as e:
            raise NotSavable(f"{where}: get_config() is not JSON-able ({e})") from None
        state = learned_state(model)
        if not state:
            raise NotSavable(
                f"{where} ({type(model).__name__}) has no learned state (no attribute ending "
                "in _): is it fitted?"
            )
        torch = _torch()
        for attr, v in state.items():
            if (
                torch is not None
                and isinstance(v, torch.nn.Module)
                and not _rebuildable(model, attr)
            ):
                raise NotSavable(
                    f"{where}.{attr} is a torch module ({type(v).__name__}) that cannot be rebuilt "
                    "on load: give the model a method rebuild_module(attr) -> nn.Module, or "
                    "inherit from TorchSequencePredictor"
                )
        return {
            "class": class_ref(type(model)),
            "config": config,
            "state": {k: self.encode(v, f"{where}.{k}") for k, v in state.items()},
            "unsaved": sorted(_skipped(model)),
        }


def _rebuildable(model: Any, attr: str) -> bool:
    if callable(getattr(model, "rebuild_module", None)):
        return True
    from predictors.torch.adapter import TorchSequencePredictor

    return isinstance(model, TorchSequencePredictor) and attr == "module_"


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


def save_model(model: Any, folder: Path, *, meta: Mapping[str, Any]) -> None:
    """Save the fitted ``model`` into ``folder`` (created, or replaced whole; its parent must
    exist): ``checkpoint.json`` (class, config, code identity and ``meta``, which must be
    JSON-able), ``state.json`` and ``arrays.npz`` (see the module docstring). Written into a
    temporary folder beside it, then renamed. Raises ``NotSavable`` naming the attribute and
    its type when some state has no safe form; nothing is left behind then."""
    folder = Path(folder)
    w = _Writer()
    name = getattr(model, "name", "") or type(model).__name__
    tree = w.model(model, name)
    try:
        meta_json = _plain(dict(meta))
    except TypeError as e:
        raise NotSavable(f"{name}: the checkpoint's meta is not JSON-able ({e})") from None
    modules = {c.__module__ for c in type(model).__mro__} | {c.__module__ for c in w.classes}
    manifest = {k: {"dtype": a.dtype.str, "shape": list(a.shape)} for k, a in w.arrays.items()}
    checkpoint = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "class": tree["class"],
        "name": name,
        "config": tree["config"],
        "code": _code_identity(modules),
        "unsaved": tree["unsaved"],
        **meta_json,
    }
    state = {"format": FORMAT, "format_version": FORMAT_VERSION, "model": tree, "arrays": manifest}
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    try:
        with open(tmp / ARRAYS_FILE, "wb") as fh:
            np.savez(fh, **w.arrays)  # type: ignore[arg-type]
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


# -- decoding ------------------------------------------------------------------------------
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


class _Reader:
    def __init__(self, arrays: Mapping[str, np.ndarray], top: type, device: str | None) -> None:
        self.arrays = arrays
        self.top = top
        self.device = device

    def array(self, node: Mapping[str, Any], where: str) -> np.ndarray:
        key = str(node.get("array"))
        if key not in self.arrays:
            raise CheckpointError(f"{where}: the array {key!r} is not in {ARRAYS_FILE}")
        return self.arrays[key]

    def torch_device(self, saved: str) -> Any:
        torch = _import_torch()
        if self.device is not None:
            return torch.device(self.device)
        dev = torch.device(saved)
        if dev.type == "cuda" and not (
            torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()
        ):
            return torch.device("cpu")
        if dev.type == "mps" and not torch.backends.mps.is_available():
            return torch.device("cpu")
        return dev

    def tensor(self, node: Mapping[str, Any], where: str, device: Any = None) -> Any:
        torch = _import_torch()
        a = self.array(node, where)
        dtype = str(node.get("dtype"))
        t = torch.from_numpy(np.array(a, copy=True))
        if dtype == "bfloat16":
            t = t.view(torch.bfloat16)
        elif str(t.dtype).removeprefix("torch.") != dtype:
            raise CheckpointError(f"{where}: tensor of dtype {t.dtype}, the state says {dtype}")
        return t if device is None else t.to(device)

    def decode(self, node: Any, where: str) -> Any:
        if node is None or isinstance(node, bool | int | float | str):
            return node
        if isinstance(node, list):
            return [self.decode(x, f"{where}[{i}]") for i, x in enumerate(node)]
        if not isinstance(node, dict) or "$" not in node:
            raise CheckpointError(f"{where}: unreadable node in {STATE_FILE}")
        kind = node["$"]
        try:
            if kind == "float":
                return float(node["value"])
            if kind == "ndarray":
                return np.array(self.array(node, where), copy=True)
            if kind == "scalar":
                return self.array(node, where)[()]
            if kind == "tuple":
                return tuple(self.decode(x, f"{where}[{i}]") for i, x in enumerate(node["items"]))
            if kind == "dict":
                if "items" in node:
                    return {k: self.decode(x, f"{where}[{k!r}]") for k, x in node["items"].items()}
                return {
                    (tuple(k) if isinstance(k, list) else k): self.decode(x, f"{where}[{k!r}]")
                    for k, x in node["pairs"]
                }
            if kind == "tensor":
                return self.tensor(node, where, self.torch_device(str(node.get("device", "cpu"))))
            if kind == "torch.device":
                return self.torch_device(str(node["value"]))
            if kind == "dataclass":
                cls = _resolve_class(str(node["class"]), self.top)
                if not dataclasses.is_dataclass(cls):
                    raise CheckpointError(f"{where}: {node['class']} is not a dataclass now")
                return self.dataclass(cls, node["fields"], where)
            if kind == "model":
                cls = _resolve_class(str(node["class"]), self.top)
                return self.model(cls, node, where)
            if kind == "module":
                return node  # rebuilt by ``model`` once the other attributes are restored
        except CheckpointError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise CheckpointError(
                f"{where}: corrupt {kind!r} node ({type(e).__name__}: {e})"
            ) from None
        raise CheckpointError(f"{where}: unknown node kind {kind!r} in {STATE_FILE}")

    def dataclass(self, cls: type, fields: Mapping[str, Any], where: str) -> Any:
        declared = {f.name: f for f in dataclasses.fields(cls)}
        if set(fields) != set(declared):
            missing = sorted(set(declared) - set(fields))
            extra = sorted(set(fields) - set(declared))
            raise CheckpointError(
                f"{where}: {cls.__qualname__}'s fields are not the saved ones "
                f"(missing {missing}, unknown {extra})"
            )
        values = {k: self.decode(v, f"{where}.{k}") for k, v in fields.items()}
        init = {k: v for k, v in values.items() if declared[k].init}
        try:
            obj = cls(**init)
        except Exception as e:
            raise CheckpointError(
                f"{where}: {cls.__qualname__} rejects the saved fields: {e}"
            ) from None
        for k, v in values.items():
            if not declared[k].init:
                object.__setattr__(obj, k, v)
        return obj

    def model(self, cls: type, node: Mapping[str, Any], where: str) -> Any:
        config = node.get("config")
        if not isinstance(config, dict):
            raise CheckpointError(f"{where}: the saved config is not a dict")
        try:
            model = cls(**config)
        except Exception as e:
            raise CheckpointError(
                f"{where}: {cls.__qualname__} rejects the saved config ({type(e).__name__}: {e})"
            ) from None
        state = node.get("state")
        if not isinstance(state, dict):
            raise CheckpointError(f"{where}: the saved state is not a dict")
        modules: dict[str, Mapping[str, Any]] = {}
        for attr, value in state.items():
            if isinstance(value, dict) and value.get("$") == "module":
                modules[attr] = value
                continue
            setattr(model, attr, self.decode(value, f"{where}.{attr}"))
        for attr in node.get("unsaved") or []:
            setattr(model, attr, None)
        for attr, value in modules.items():
            setattr(model, attr, self.module(model, attr, value, f"{where}.{attr}"))
        from predictors.base import BasePredictor

        if isinstance(model, BasePredictor):
            model._fitted = True
        return model

    def module(self, model: Any, attr: str, node: Mapping[str, Any], where: str) -> Any:
        try:
            module = _rebuild(model, attr)
        except Exception as e:
            raise CheckpointError(
                f"{where}: rebuilding the module failed ({type(e).__name__}: {e})"
            ) from None
        if not _same_class(str(node.get("class")), type(module)):
            raise CheckpointError(
                f"{where}: the model rebuilds a {class_ref(type(module))}, the checkpoint "
                f"holds a {node.get('class')}"
            )
        state = {k: self.tensor(v, f"{where}[{k!r}]") for k, v in dict(node["state"]).items()}
        saved = next((str(v.get("device", "cpu")) for v in dict(node["state"]).values()), "cpu")
        module = module.to(self.torch_device(saved))
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as e:
            first = str(e).strip().splitlines()
            why = " ".join(x.strip() for x in first[:3])
            raise CheckpointError(
                f"{where}: the saved weights do not fit the module ({why})"
            ) from None
        module.train(bool(node.get("training", False)))
        return module


def _import_torch() -> Any:
    try:
        import torch
    except ImportError as e:  # pragma: no cover - torch is a dependency
        raise CheckpointError(
            f"this checkpoint holds torch state, but torch is missing ({e})"
        ) from None
    return torch


def _rebuild(model: Any, attr: str) -> Any:
    """The untrained module of ``model.attr``, built without touching torch's global RNG."""
    torch = _import_torch()
    with torch.random.fork_rng(devices=[]):
        hook = getattr(model, "rebuild_module", None)
        if callable(hook):
            return hook(attr)
        return model._build(_stand_in(model), int(model.emb_.shape[1]))


def _stand_in(model: Any) -> Any:
    """A one-event training set with what a ``TorchSequencePredictor._build`` reads: the item
    count, the scale, the window (``meta["max_history"]``)."""
    from predictors.contract import RunContext
    from predictors.types import EventStore, HistoryBatch, Queries, TrainSet

    scale = model.scale_
    n_items = int(np.asarray(model.keep_item_).shape[0])
    store = EventStore(
        user_offsets=np.array([0, 1], dtype=np.int64),
        item=np.zeros(1, dtype=np.int32),
        rating=np.array([scale.mid], dtype=np.float32),
        timestamp=np.zeros(1, dtype=np.int64),
    )
    z32, z64 = np.zeros(0, dtype=np.int32), np.zeros(0, dtype=np.int64)
    empty = HistoryBatch(
        z32, z32, z64, np.zeros(1, dtype=np.int64), z32, np.zeros(0, np.float32), z64
    )
    return TrainSet(
        events=store,
        train_user=z32,
        train_pos=z64,
        val=Queries(empty, np.zeros(0, dtype=np.float32)),
        n_items=n_items,
        scale=scale,
        context=RunContext(seed=0, device="cpu"),
        meta={"max_history": int(model.window_), "min_history": 0, "n_users": 1},
    )


def load_model(folder: Path, cls: type, *, device: str | None = None) -> Any:
    """The fitted model saved in ``folder`` by ``save_model``, as an instance of ``cls``
    (``cls(**config)`` with its learned state restored; a ``BasePredictor`` is marked
    fitted). ``device``: where torch tensors and modules go (default: where they were, or
    the CPU when that device is not here; predictions are identical on the same device).

    Raises ``CheckpointError`` when a file is missing or corrupt, the checkpoint holds
    another class, an array is missing or of another dtype or shape than recorded, a class
    named in the state may not be built from here or no longer fits, ``cls`` rejects the
    saved config, or the saved weights do not fit the rebuilt module."""
    folder = Path(folder)
    meta = read_checkpoint(folder)
    state = _read_json(folder / STATE_FILE)
    tree = state.get("model")
    if not isinstance(tree, dict) or not isinstance(tree.get("class"), str):
        raise CheckpointError(f"{folder / STATE_FILE}: no model in it")
    if not _same_class(tree["class"], cls) or not _same_class(str(meta.get("class")), cls):
        raise CheckpointError(
            f"{folder}: the checkpoint holds a {tree['class']}, not a {class_ref(cls)}"
        )
    arrays = _read_arrays(folder, state.get("arrays"))
    return _Reader(arrays, cls, device).model(cls, tree, str(meta.get("name") or cls.__name__))


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
