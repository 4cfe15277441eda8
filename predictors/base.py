"""The predictor protocol and a small base class that implements its bookkeeping.

A predictor stores keyword-only hyper-parameters in ``__init__``, learns in ``fit`` (learned
state ends in ``_``) and returns ``self``, and maps a ``HistoryBatch`` to one finite rating
per query inside the rating scale. Where it cannot predict (unknown item, empty history) it
falls back to a documented estimate and flags the query; the harness counts the flags.
The values exchanged with the harness (run context, fit report, prediction, capabilities)
are in ``predictors.contract``; docs/ARCHITECTURE.md describes the whole contract.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from predictors.contract import (
    Capabilities,
    FitReport,
    Prediction,
    SelfChecking,
    finish_prediction,
)
from predictors.types import HistoryBatch, RatingScale, TrainSet

__all__ = ["BasePredictor", "NotFittedError", "Predictor"]


class NotFittedError(RuntimeError):
    """``predict`` was called before ``fit``."""


@runtime_checkable
class Predictor(Protocol):
    name: ClassVar[str]

    def fit(self, train: TrainSet, /) -> Self: ...

    def predict(self, queries: HistoryBatch, /) -> NDArray[np.float32]: ...

    def get_config(self) -> dict[str, Any]: ...


class BasePredictor(SelfChecking):
    """Shared plumbing: config from the ``__init__`` signature, fitted checks, the fit report,
    one checked and clipped ``Prediction`` per batch.

    Subclasses declare ``name`` and ``capabilities`` (a plugin also ``summary``, its line in
    ``bench list``; a built-in's line is its entry in ``predictors.registry.REGISTRY``), and
    implement
    ``_fit(train) -> FitReport | None`` and ``_predict(batch) -> (pred, fallback)`` where
    ``pred`` is (B,) float and ``fallback`` (B,) bool marks queries answered by the
    fallback. The report ``_fit`` returns is kept as ``fit_report_`` (an empty one for None).
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # a plugin's line in `bench list` (a built-in's: the registry)
    capabilities: ClassVar[Capabilities] = Capabilities()

    scale_: RatingScale
    fit_report_: FitReport

    def get_config(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self"}

    def fit(self, train: TrainSet, /) -> Self:
        self.scale_ = train.scale
        self._fitted = False
        report = self._fit(train)
        if report is not None and not isinstance(report, FitReport):
            raise TypeError(
                f"{self.name}: _fit() must return a FitReport or None, got {type(report).__name__}"
            )
        self.fit_report_ = report if report is not None else FitReport()
        self._fitted = True
        return self

    def predict(self, queries: HistoryBatch, /) -> NDArray[np.float32]:
        return self.predict_detailed(queries).values

    def predict_detailed(self, queries: HistoryBatch, /) -> Prediction:
        """The checked predictions (clipped to the scale), fallback flags and clip count."""
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"{self.name}: predict() called before fit()")
        n = len(queries)
        if n == 0:
            return Prediction(np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool), 0)
        pred, fallback = self._predict(queries)
        return finish_prediction(self.name, pred, n, self.scale_, fallback)

    def _fit(self, train: TrainSet) -> FitReport | None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(
        self, batch: HistoryBatch
    ) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
