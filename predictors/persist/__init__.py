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
name is always complete. Loading imports nothing the files name: the classes a model is
built from are taken from modules already loaded, and must live in ``predictors`` or in the
module of the model's own class (or one of its bases): a dataclass or nested model from
anywhere else is refused. The code identity is checked by hashing files at paths derived
here (the modules of the model's class and its bases, the ``predictors`` package's own
folder), never by importing a module that ``checkpoint.json`` names (``code_changes``).

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

The package: ``save_model`` and ``load_model`` live here; ``state`` says which attributes are
state and which classes a checkpoint may name, ``encode`` turns the state into the JSON tree
and arrays, ``decode`` turns them back into a model, ``files`` holds the folder's layout,
its atomic write and reading, and the code identity (``code_changes``); ``errors`` the
exceptions. Every public name is importable from ``predictors.persist``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from predictors.persist.decode import _Reader
from predictors.persist.encode import _Writer
from predictors.persist.errors import CheckpointError, NotSavable, PersistError
from predictors.persist.files import ARRAYS_FILE as ARRAYS_FILE
from predictors.persist.files import CHECKPOINT_FILE as CHECKPOINT_FILE
from predictors.persist.files import (
    FORMAT,
    FORMAT_VERSION,
    STATE_FILE,
    _code_identity,
    _plain,
    _read_arrays,
    _read_json,
    _write_folder,
    code_changes,
    read_checkpoint,
)
from predictors.persist.state import UNSAVED, _same_class, class_ref, learned_state

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
    _write_folder(folder, w.arrays, state, checkpoint)


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
    held_by = ((folder / CHECKPOINT_FILE, meta["class"]), (folder / STATE_FILE, tree["class"]))
    for where, held in held_by:
        if not _same_class(held, cls):
            raise CheckpointError(
                f"{where}: the checkpoint holds a {held}, not a {class_ref(cls)} (the class "
                "the results file records for this model run)"
            )
    arrays = _read_arrays(folder, state.get("arrays"))
    return _Reader(arrays, cls, device).model(cls, tree, str(meta.get("name") or cls.__name__))
