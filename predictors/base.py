"""The predictor protocol and a small base class that implements its bookkeeping.

A predictor stores keyword-only hyper-parameters in ``__init__``, learns in ``fit`` (learned
state ends in ``_``) and returns ``self``, and maps a ``HistoryBatch`` to one finite rating
per query inside the rating scale. Where it cannot predict (unknown item, empty history) it
falls back to a documented estimate and flags the query; the harness counts the flags.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar, Protocol, Self, runtime_checkable

import numpy as np
from numpy.typing import NDArray

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


class BasePredictor:
    """Shared plumbing: config from the ``__init__`` signature, fitted checks, clipping.

    Subclasses implement ``_fit(train)`` and ``_predict(batch) -> (pred, fallback)`` where
    ``pred`` is (B,) float and ``fallback`` (B,) bool marks queries answered by the fallback.
    Optional learned attributes the harness records when present:

    - ``fit_info_`` (dict): tuned hyper-parameters, epochs, anything JSON-able;
    - ``refit_`` (bool): whether the model refit on training + validation events;
    - ``learning_curve_`` (list of dict): per-epoch train loss / validation metrics;
    - ``n_clipped_`` (int): predictions that fell outside the scale and were clipped.
    """

    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""  # one line for `bench list`
    uses_torch: ClassVar[bool] = False
    uses_embeddings: ClassVar[bool] = False  # True: runs once per --embedding

    scale_: RatingScale

    def get_config(self) -> dict[str, Any]:
        params = inspect.signature(type(self).__init__).parameters
        return {k: getattr(self, k) for k in params if k != "self"}

    def fit(self, train: TrainSet, /) -> Self:
        self.scale_ = train.scale
        self.fit_info_: dict[str, Any] = {}
        self.refit_ = False
        self.n_clipped_ = 0
        self._fit(train)
        self._fitted = True
        return self

    def predict(self, queries: HistoryBatch, /) -> NDArray[np.float32]:
        return self.predict_with_fallback(queries)[0]

    def predict_with_fallback(
        self, queries: HistoryBatch, /
    ) -> tuple[NDArray[np.float32], NDArray[np.bool_]]:
        """Predictions (B,) float32 clipped to the rating scale, and the fallback mask (B,)."""
        if not getattr(self, "_fitted", False):
            raise NotFittedError(f"{self.name}: predict() called before fit()")
        if len(queries) == 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=bool)
        pred, fallback = self._predict(queries)
        pred = np.asarray(pred, dtype=np.float64)
        if pred.shape != (len(queries),):
            raise RuntimeError(
                f"{self.name}: predicted shape {pred.shape}, expected ({len(queries)},)"
            )
        if not np.all(np.isfinite(pred)):
            raise FloatingPointError(
                f"{self.name}: {int((~np.isfinite(pred)).sum())} non-finite prediction(s)"
            )
        # predictions outside the scale are clipped and counted (the count is reported)
        tol = 1e-6 * self.scale_.width
        out = (pred < self.scale_.low - tol) | (pred > self.scale_.high + tol)
        self.n_clipped_ = getattr(self, "n_clipped_", 0) + int(out.sum())
        return self.scale_.clip(pred), np.asarray(fallback, dtype=bool)

    def _fit(self, train: TrainSet) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _predict(
        self, batch: HistoryBatch
    ) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
