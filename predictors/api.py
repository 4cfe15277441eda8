"""Everything a model needs, from one module (docs/writing-a-model.md walks through it).

    from predictors.api import BasePredictor, Capabilities, FitReport, HistoryBatch, TrainSet

The containers a model receives (``TrainSet``, ``HistoryBatch``, ``Queries``,
``EventStore``, ``RatingScale``, ``ItemEmbeddings``), the run's choices (``RunContext``), what
a model declares and returns (``Capabilities``, ``FitReport``, ``Prediction``), the protocol
(``Predictor``) and its convenience base class (``BasePredictor``), and the conformance suite
(``check_predictor``). ``TorchSequencePredictor`` (the shared torch adapter, with its trainer)
is imported on first use, so importing this module never imports torch.
"""

from __future__ import annotations

from typing import Any

from predictors.base import BasePredictor, NotFittedError, Predictor
from predictors.contract import (
    Capabilities,
    Distributed,
    FitReport,
    NullProgress,
    Prediction,
    PredictionError,
    ProgressReporter,
    RichProgress,
    RunContext,
)
from predictors.testing import CheckReport, CheckResult, check_predictor
from predictors.types import (
    EventStore,
    HistoryBatch,
    ItemEmbeddings,
    Queries,
    RatingScale,
    TrainSet,
    gather_ranges,
)

__all__ = [
    "BasePredictor",
    "Capabilities",
    "CheckReport",
    "CheckResult",
    "Distributed",
    "EventStore",
    "FitReport",
    "HistoryBatch",
    "ItemEmbeddings",
    "NotFittedError",
    "NullProgress",
    "Prediction",
    "PredictionError",
    "Predictor",
    "ProgressReporter",
    "Queries",
    "RatingScale",
    "RichProgress",
    "RunContext",
    "TorchSequencePredictor",  # noqa: F822 - imported on first use (__getattr__)
    "TrainSet",
    "check_predictor",
    "gather_ranges",
]


def __getattr__(name: str) -> Any:
    if name == "TorchSequencePredictor":
        from predictors.torch.adapter import TorchSequencePredictor

        return TorchSequencePredictor
    raise AttributeError(f"module 'predictors.api' has no attribute '{name}'")
