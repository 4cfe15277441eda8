"""Name -> predictor class, with options on the name: ``recent-k:k=10``, ``mf:factors=64:reg=0.02``.

Entries are ``"module:Class"`` strings so that importing the registry imports no model
module (torch models load only when asked for). Adding a model is one line here.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from typing import Any

from predictors.base import BasePredictor

__all__ = ["REGISTRY", "ModelSpec", "available", "create", "describe", "get_class", "parse_spec"]

# name -> (import path, one-line summary). Order is the display and run order.
REGISTRY: dict[str, tuple[str, str]] = {
    "global-mean": (
        "predictors.baselines:GlobalMean",
        "mean of all training ratings",
    ),
    "user-mean": (
        "predictors.baselines:UserMean",
        "mean of the query's whole history (global mean when empty)",
    ),
    "recent-k": (
        "predictors.baselines:RecentK",
        "mean of the last k ratings of the history (k=5)",
    ),
    "bias": (
        "predictors.baselines:Bias",
        "global mean + damped user and item biases, damping tuned on validation",
    ),
    "knn": (
        "predictors.knn:KNN",
        "similarity-weighted kNN over item embeddings (k, alpha, shrink tuned)",
    ),
    "mf": (
        "predictors.mf:MF",
        "biased matrix factorisation (ALS), factors/reg/sweeps tuned on validation",
    ),
    "svdpp": (
        "predictors.svdpp:SVDpp",
        "SVD++: biased MF + implicit feedback from the history, Adam, tuned on validation",
    ),
    "mf-temporal": (
        "predictors.mf_temporal:MFTemporal",
        "timeSVD-style MF: drifting user bias + recency-weighted session offset",
    ),
    "attention": (
        "predictors.attention:Attention",
        "the notebook's attention RatingPredictor over item embeddings + ratings",
    ),
    "transformer": (
        "predictors.transformer:Transformer",
        "Transformer encoder over history + query cross-attention + learned biases",
    ),
}


class UnknownModelError(KeyError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: registry name plus option overrides, as written by the user."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    # True when the spec came from expanding ``all``: such a model may be skipped (with a
    # note) when the data cannot serve it, e.g. no embeddings for an embedding model
    implicit: bool = field(default=False, compare=False)

    @property
    def label(self) -> str:
        """Canonical text form, used as the model's key in results."""
        if not self.options:
            return self.name
        opts = ":".join(f"{k}={_fmt(v)}" for k, v in self.options.items())
        return f"{self.name}:{opts}"


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    return str(v)


def _coerce(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def available() -> list[str]:
    return list(REGISTRY)


def describe() -> list[tuple[str, str]]:
    """(name, one-line summary) for every registered model."""
    return [(name, summary) for name, (_, summary) in REGISTRY.items()]


def _unknown(name: str) -> ValueError:
    near = difflib.get_close_matches(name, list(REGISTRY), n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    return ValueError(f"unknown model '{name}'.{hint} Known models: {', '.join(REGISTRY)}")


def get_class(name: str) -> type[BasePredictor]:
    if name not in REGISTRY:
        raise _unknown(name)
    path = REGISTRY[name][0]
    module, _, cls = path.partition(":")
    return getattr(importlib.import_module(module), cls)


def parse_spec(text: str) -> ModelSpec:
    """Parse ``name[:key=value[:key=value...]]``. Raises ValueError on an unknown name or
    a malformed option; unknown option keys are checked by ``create``."""
    parts = [p for p in text.strip().split(":")]
    name = parts[0].strip()
    if not name:
        raise ValueError(f"empty model name in '{text}'")
    if name not in REGISTRY:
        raise _unknown(name)
    options: dict[str, Any] = {}
    for p in parts[1:]:
        key, eq, value = p.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise ValueError(
                f"model option '{p}' in '{text}' is not key=value (e.g. recent-k:k=10)"
            )
        options[key] = _coerce(value)
    return ModelSpec(name=name, options=options)


def parse_models(text: str) -> list[ModelSpec]:
    """Comma-separated specs; ``all`` expands to every registered model."""
    specs: list[ModelSpec] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "all":
            specs.extend(ModelSpec(n, implicit=True) for n in REGISTRY)
        else:
            specs.append(parse_spec(item))
    if not specs:
        raise ValueError("no model given (e.g. --models all or --models user-mean,bias)")
    seen: set[str] = set()
    unique = []
    for s in specs:
        if s.label not in seen:
            seen.add(s.label)
            unique.append(s)
    return unique


def create(spec: ModelSpec | str) -> BasePredictor:
    """Instantiate a model from its spec; unknown option keys fail with the list of accepted
    ones, bad values with the model's own validation message. The run's seed and device are
    not options: they reach the model in ``train.context`` when it is fitted."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    cls = get_class(spec.name)
    params = inspect.signature(cls.__init__).parameters
    accepted = [k for k in params if k != "self"]
    for key in spec.options:
        if key not in accepted:
            near = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ValueError(
                f"unknown option '{key}' for model '{spec.name}'.{hint} "
                f"Accepted: {', '.join(accepted) or '(none)'}"
            )
    return cls(**spec.options)
