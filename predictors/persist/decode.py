"""Decoding a saved state tree back into a model: arrays and tensors from ``arrays.npz``,
dataclasses and nested models by their (allowed) classes, torch modules rebuilt and their
``state_dict`` loaded strictly; ``CheckpointError`` for whatever does not fit."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

from predictors.persist.errors import CheckpointError
from predictors.persist.files import ARRAYS_FILE, STATE_FILE
from predictors.persist.state import _resolve_class, _same_class, class_ref


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
        unsaved = node.get("unsaved") or []
        if not isinstance(unsaved, list):
            raise CheckpointError(f"{where}: the saved 'unsaved' is not a list of names")
        for attr in (*state, *unsaved):
            if not _is_state_name(attr):
                raise CheckpointError(
                    f"{where}: the saved state names the attribute {str(attr)[:80]!r}; a "
                    "model's learned state is attributes whose names end in _"
                )
        modules: dict[str, Mapping[str, Any]] = {}
        for attr, value in state.items():
            if isinstance(value, dict) and value.get("$") == "module":
                modules[attr] = value
                continue
            setattr(model, attr, self.decode(value, f"{where}.{attr}"))
        for attr in unsaved:
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


def _is_state_name(attr: Any) -> bool:
    """Whether ``attr`` may name learned state (``state.learned_state``'s rule)."""
    return isinstance(attr, str) and attr.endswith("_") and not attr.startswith("__")


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
    from predictors.context import RunContext
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
