"""Everything a model needs, from one module (docs/writing-a-model.md walks through it).

    from predictors.api import BasePredictor, Capabilities, FitReport, HistoryBatch, TrainSet

The containers a model receives (``TrainSet``, ``HistoryBatch``, ``Queries``,
``EventStore``, ``RatingScale``, ``ItemEmbeddings``), the run's choices (``RunContext``), what
a model declares and returns (``Capabilities``, ``FitReport``, ``Prediction``), the protocol
(``Predictor``) and its convenience base class (``BasePredictor``), the option declarations
(``option``, ``@model_options``, ``Validated`` and the constraints ``Integer``, ``Interval``,
``OneOf``, ``Boolean``, ``Device``), and the conformance suite (``check_predictor``). The
torch pieces (``TorchSequencePredictor``, the shared torch adapter with its trainer; its
``SeqBatch`` and ``AutoSettings``) are imported on first use, so importing this module never
imports torch.
"""

from __future__ import annotations

import importlib
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
from predictors.options import (
    Boolean,
    Device,
    Integer,
    Interval,
    OneOf,
    Option,
    Validated,
    model_options,
    option,
    options_of,
    search_spaces,
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
    "AutoSettings",  # noqa: F822 - imported on first use (__getattr__)
    "BasePredictor",
    "Boolean",
    "Capabilities",
    "CheckReport",
    "CheckResult",
    "Device",
    "Distributed",
    "EventStore",
    "FitReport",
    "HistoryBatch",
    "Integer",
    "Interval",
    "ItemEmbeddings",
    "NotFittedError",
    "NullProgress",
    "OneOf",
    "Option",
    "Prediction",
    "PredictionError",
    "Predictor",
    "ProgressReporter",
    "Queries",
    "RatingScale",
    "RichProgress",
    "RunContext",
    "SeqBatch",  # noqa: F822 - imported on first use (__getattr__)
    "TorchSequencePredictor",  # noqa: F822 - imported on first use (__getattr__)
    "TrainSet",
    "Validated",
    "check_predictor",
    "gather_ranges",
    "model_options",
    "option",
    "options_of",
    "search_spaces",
]

# name -> the module that holds it; each imports torch, so it is imported on first use
_TORCH = {
    "AutoSettings": "predictors.torch.trainer",
    "SeqBatch": "predictors.torch.batches",
    "TorchSequencePredictor": "predictors.torch.adapter",
}


def __getattr__(name: str) -> Any:
    if name in _TORCH:
        return getattr(importlib.import_module(_TORCH[name]), name)
    raise AttributeError(f"module 'predictors.api' has no attribute '{name}'")
