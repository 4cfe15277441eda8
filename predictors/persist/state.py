"""Which attributes of a model are its learned state (``learned_state``), which library
adapters leave some out or cannot be saved (``UNSAVED``), and the classes a checkpoint names
(``class_ref``: ``module:qualname``) and which of them loading may build."""

from __future__ import annotations

import inspect
import re
import sys
from typing import Any

from predictors.persist.errors import CheckpointError

__all__ = ["UNSAVED", "class_ref", "learned_state"]

_PLUGIN_MODULE = re.compile(r"^(ratingbench_plugin_.+)_[0-9a-f]{12}$")  # predictors.plugins


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
    module = sys.modules.get(mod)  # never imported because the state names it
    if module is None:
        raise CheckpointError(
            f"the state names the class {ref!r}, whose module the model's code has not loaded"
        )
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
