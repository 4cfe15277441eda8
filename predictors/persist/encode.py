"""Encoding a model's learned state as a tree of JSON values with tagged nodes, collecting
its arrays (numpy arrays, torch tensors, the tensors of a module's ``state_dict``) for
``arrays.npz``; ``NotSavable`` for whatever has no safe saved form."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any

import numpy as np

from predictors.persist.errors import NotSavable
from predictors.persist.state import (
    _is_predictor,
    _skipped,
    _unsaved_rule,
    class_ref,
    learned_state,
)


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
