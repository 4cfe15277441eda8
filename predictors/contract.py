"""The model–harness contract: what a model receives besides its data, and what it gives back.

A model keeps the predictor protocol (``name``, ``fit(train) -> self``, ``predict(queries) ->
(B,) array``, ``get_config()``); see docs/ARCHITECTURE.md. This module holds the typed values
exchanged around that protocol:

- ``RunContext`` (frozen, from ``predictors.context``, re-exported here): the run's seed, the
  resolved device and a progress reporter. The harness puts it in ``TrainSet.context``; a
  model reads it there, nothing is set on the model from outside.
- ``Capabilities`` (declared on the class as ``capabilities``): uses embeddings (the run fits
  it once per ``--embedding``), takes a seed (the run fits it once per ``--seeds`` value),
  needs torch (the harness imports torch and resolves the device first).
- ``FitReport``: what fitting decided (tuned settings, whether it refit on the validation
  targets, the learning curve, the validation RMSE it chose on). ``BasePredictor`` keeps the
  one returned by ``_fit`` as ``fit_report_``.
- ``Prediction``: predictions in the scale, their fallback flags and how many were clipped,
  made in one place (``finish_prediction``) for every model.
- ``SelfChecking``: what a model offers beyond the protocol when it checks its own
  predictions (``predict_detailed``) and keeps its report (``fit_report_``);
  ``BasePredictor`` is the one implementation.
- ``Harnessed``: how the harness holds any model, a ``SelfChecking`` one or a plain class
  that only keeps the protocol: it fits it and returns the report, and returns a checked
  ``Prediction`` for every batch. The runner talks to models only through it.

Imports go one way: ``predictors.context`` <- ``predictors.types`` <- this module <-
``predictors.base``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from predictors.context import (
    Distributed,
    NullProgress,
    ProgressReporter,
    RichProgress,
    RunContext,
)

if TYPE_CHECKING:  # pragma: no cover
    from predictors.types import HistoryBatch, RatingScale, TrainSet

__all__ = [
    "Capabilities",
    "Distributed",
    "FitReport",
    "Harnessed",
    "NullProgress",
    "Prediction",
    "PredictionError",
    "ProgressReporter",
    "RichProgress",
    "RunContext",
    "SelfChecking",
    "capabilities_of",
    "finish_prediction",
]


# -- what a model declares ------------------------------------------------------------------
@dataclass(frozen=True)
class Capabilities:
    """What a model needs from the run; declared on the class as ``capabilities``."""

    embeddings: bool = False  # reads train.embeddings; fitted once per --embedding
    seeded: bool = False  # its fit depends on the seed; fitted once per --seeds value
    torch: bool = False  # imports torch: the harness resolves the device before fitting
    # trains data-parallel on every rank of a --ddp run (reads train.context.distributed);
    # in such a run a model without it is fitted on rank 0 alone
    distributed: bool = False

    def to_dict(self) -> dict[str, bool]:
        return {
            "embeddings": self.embeddings,
            "seeded": self.seeded,
            "torch": self.torch,
            "distributed": self.distributed,
        }


def capabilities_of(cls: type) -> Capabilities:
    """A class's declared capabilities; a plain class that declares none needs nothing."""
    caps = getattr(cls, "capabilities", None)
    if caps is None:
        return Capabilities()
    if not isinstance(caps, Capabilities):
        raise TypeError(
            f"{cls.__name__}.capabilities must be a predictors.contract.Capabilities, "
            f"got {type(caps).__name__}"
        )
    return caps


# -- what a model gives back ----------------------------------------------------------------
@dataclass(frozen=True)
class FitReport:
    """What fitting decided, recorded in the results.

    ``settings``: JSON-able facts of the fit (tuned hyper-parameters, epochs run, device...).
    ``refit``: the model refit on the training events plus the validation targets after
    choosing its settings (its validation figure is then the one it chose on, ``val_rmse``).
    ``learning_curve``: per-epoch records (train loss, validation RMSE...), or None.
    ``val_rmse``: the validation RMSE the model chose its settings on, when it has one."""

    settings: Mapping[str, Any] = field(default_factory=dict)
    refit: bool = False
    learning_curve: tuple[Mapping[str, Any], ...] | None = None
    val_rmse: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", dict(self.settings))
        if self.learning_curve is not None:
            object.__setattr__(self, "learning_curve", tuple(self.learning_curve))
        if self.val_rmse is not None:
            object.__setattr__(self, "val_rmse", float(self.val_rmse))


class PredictionError(ValueError):
    """A model returned predictions the harness cannot score (shape, dtype, NaN/inf)."""


@dataclass(frozen=True)
class Prediction:
    """One batch's predictions: (B,) float32 inside the scale, (B,) bool fallback flags, and
    how many raw predictions fell outside the scale and were clipped."""

    values: NDArray[np.float32]
    fallback: NDArray[np.bool_]
    n_clipped: int = 0

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @classmethod
    def concat(cls, parts: list[Prediction]) -> Prediction:
        if not parts:
            return cls(np.zeros(0, np.float32), np.zeros(0, bool), 0)
        return cls(
            np.concatenate([p.values for p in parts]).astype(np.float32, copy=False),
            np.concatenate([p.fallback for p in parts]).astype(bool, copy=False),
            sum(p.n_clipped for p in parts),
        )


def finish_prediction(
    name: str,
    raw: Any,
    n: int,
    scale: RatingScale,
    fallback: Any = None,
    *,
    strict: bool = False,
) -> Prediction:
    """Check a model's raw output for ``n`` queries and bring it into the scale: the one place
    where predictions are validated, clipped and counted. Raises ``PredictionError`` naming
    the model and what was expected. ``strict``: a value outside the scale is an error too
    (a model that keeps only the protocol promises in-scale predictions; ``BasePredictor``
    clips and counts instead, as documented)."""
    try:
        pred = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise PredictionError(
            f"{name}: predict() must return a numeric array of shape ({n},), "
            f"got {type(raw).__name__} ({e})"
        ) from e
    if pred.shape != (n,):
        raise PredictionError(f"{name}: predict() returned shape {pred.shape}, expected ({n},)")
    bad = ~np.isfinite(pred)
    if bad.any():
        raise PredictionError(
            f"{name}: predict() returned {int(bad.sum())} non-finite value(s) (NaN or inf) "
            f"of {n}; every query needs a finite rating"
        )
    tol = 1e-6 * scale.width
    out = (pred < scale.low - tol) | (pred > scale.high + tol)
    if strict and out.any():
        raise PredictionError(
            f"{name}: predict() returned {int(out.sum())} value(s) outside the rating scale "
            f"[{scale.low:g}, {scale.high:g}] (e.g. {float(pred[out][0]):g}); clip them, or "
            "inherit from BasePredictor, which clips and counts"
        )
    if fallback is None:
        flags = np.zeros(n, dtype=bool)
    else:
        flags = np.asarray(fallback, dtype=bool)
        if flags.shape != (n,):
            raise PredictionError(
                f"{name}: fallback flags have shape {flags.shape}, expected ({n},)"
            )
    return Prediction(scale.clip(pred), flags, int(out.sum()))


class SelfChecking:
    """A model that checks its own predictions and reports its fit: ``predict_detailed``
    returns the batch's ``Prediction`` (clipped to the scale, fallbacks flagged, clips
    counted) and ``fit_report_`` is the ``FitReport`` of the last fit. ``BasePredictor``
    implements both; ``Harnessed`` uses them for such a model and checks any other itself."""

    fit_report_: FitReport

    def predict_detailed(
        self, queries: HistoryBatch, /
    ) -> Prediction:  # pragma: no cover - abstract
        raise NotImplementedError


class Harnessed:
    """The harness's handle on one model, whatever it inherits from.

    ``fit(train)`` fits and returns the ``FitReport`` (a plain model that keeps only the
    protocol reports nothing beyond its config); ``predict(batch)`` returns a checked
    ``Prediction``. A ``SelfChecking`` model (a ``BasePredictor``) supplies fallback flags and
    its report, and clips (and counts) predictions outside the scale; any other model must
    predict inside the scale (a value outside it is an error) and every query counts as a
    model prediction."""

    def __init__(self, model: Any) -> None:
        for attr in ("fit", "predict", "get_config"):
            if not callable(getattr(model, attr, None)):
                raise TypeError(
                    f"{type(model).__name__} is not a predictor: it has no {attr}() method "
                    "(a predictor has name, fit(train) -> self, predict(queries) -> (B,) "
                    "array and get_config())"
                )
        self.model = model
        self.name = str(getattr(type(model), "name", "") or type(model).__name__)
        self.capabilities = capabilities_of(type(model))
        self.scale: RatingScale | None = None

    def config(self) -> dict[str, Any]:
        return dict(self.model.get_config())

    def fit(self, train: TrainSet) -> FitReport:
        self.scale = train.scale
        out = self.model.fit(train)
        if out is not self.model:
            raise PredictionError(f"{self.name}: fit() must return self, got {type(out).__name__}")
        if isinstance(self.model, SelfChecking):
            return self.model.fit_report_
        return FitReport()

    def predict(self, batch: HistoryBatch) -> Prediction:
        if self.scale is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        if isinstance(self.model, SelfChecking):
            return self.model.predict_detailed(batch)
        raw = self.model.predict(batch)
        return finish_prediction(self.name, raw, len(batch), self.scale, strict=True)
