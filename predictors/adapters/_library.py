"""What the library adapters (``cornac:``, ``surprise:``) share: the library imported only
when a model is asked for, the model a name means, the options its constructor takes, and
the checks their values pass before anything is fitted."""

from __future__ import annotations

import copy
import difflib
import importlib
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.contract import Capabilities
from predictors.plugins import PluginError


@dataclass(frozen=True)
class Library:
    """A model library the harness adapts: where its classes live and how it is installed."""

    prefix: str  # the model names' prefix: "cornac" in "cornac:MF"
    title: str  # the library's name in messages: "Cornac"
    module: str  # the module to import: "cornac"
    package: str  # what cannot be imported, in messages: "cornac", "scikit-surprise"
    install: str  # the command that installs it: "pip install ratingbench[cornac]"
    models: Mapping[str, str]  # model -> one line for `bench list`
    classes_in: str = ""  # the sub-module holding the model classes ("models"), or ""

    def load(self, model: str) -> ModuleType:
        """The library module. Raises ``PluginError`` naming ``install`` when it cannot be
        imported."""
        try:
            return importlib.import_module(self.module)
        except ImportError as e:
            raise PluginError(
                f"{self.prefix}:{model} needs {self.package}, which cannot be imported ({e}): "
                f"{self.install}"
            ) from e

    def model_class(self, model: str) -> Any:
        """The library's class of ``model``."""
        mod = self.load(model)
        return getattr(getattr(mod, self.classes_in) if self.classes_in else mod, model)

    def adapter(self, model: str, classes: Mapping[str, type]) -> type:
        """``classes[model]``, with the library importable. Raises ``PluginError`` for an
        unknown model (suggesting the nearest, listing ``models``) or a missing library."""
        cls = classes.get(model)
        if cls is None:
            same_case = [m for m in self.models if m.lower() == model.lower()]
            near = same_case or difflib.get_close_matches(model, list(self.models), n=1)
            hint = f" Did you mean '{self.prefix}:{near[0]}'?" if near else ""
            raise PluginError(
                f"unknown {self.title} model '{model}'.{hint} Known: "
                + ", ".join(f"{self.prefix}:{m}" for m in self.models)
            )
        self.load(model)
        return cls

    def named_options(self, model: str) -> list[str]:
        """The parameters ``model``'s constructor takes by name."""
        params = inspect.signature(self.model_class(model).__init__).parameters
        return [
            k
            for k, p in params.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def check_constructs(self, model: str, name: str, kwargs: Mapping[str, Any]) -> None:
        """Build (and discard) one library instance, so that its constructor checks the
        values. Raises ``ValueError`` with the library's message."""
        try:
            self.model_class(model)(**copy.deepcopy(dict(kwargs)))
        except PluginError:
            raise
        except Exception as e:
            raise ValueError(f"{name}: the library rejected the options: {e}") from e

    def adapter_class(self, base: type, model: str, *, seeded: bool) -> type:
        """The module-level predictor class of ``model``: a ``base`` subclass named
        ``<Title><model>`` in ``base``'s module (picklable by reference)."""
        qualname = f"{self.title}{model}"
        return type(
            qualname,
            (base,),
            {
                "__module__": base.__module__,
                "__qualname__": qualname,
                "__doc__": f"{self.models[model]}, through the {self.title} adapter "
                "(module docstring).",
                "name": f"{self.prefix}:{model}",
                "summary": self.models[model],
                "library_model": model,
                "capabilities": Capabilities(seeded=seeded),
            },
        )


def unknown_option(name: str, key: str, candidates: Sequence[str], accepted: str) -> ValueError:
    """The error for an option ``key`` that model ``name`` does not take, suggesting the
    nearest of ``candidates``."""
    near = difflib.get_close_matches(key, list(candidates), n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    return ValueError(f"unknown option '{key}' for model '{name}'.{hint} Accepted: {accepted}")


def check_json(name: str, key: str, value: Any) -> None:
    """Raise ``ValueError`` unless option ``key``'s value is JSON (what results record)."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name}: option {key} must be JSON-able, got {value!r}") from e


def lookup(index: NDArray[np.int64], codes: NDArray[np.integer]) -> NDArray[np.int64]:
    """The library's index of each harness code in ``codes`` (-1 for a code ``index`` does
    not know or cannot hold)."""
    codes = np.asarray(codes, dtype=np.int64)
    ok = (codes >= 0) & (codes < index.shape[0])
    return np.where(ok, index[np.where(ok, codes, 0)], -1)
