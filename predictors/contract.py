"""The model–harness contract: what a model receives besides its data, and what it gives back.

A model keeps the predictor protocol (``name``, ``fit(train) -> self``, ``predict(queries) ->
(B,) array``, ``get_config()``); see docs/ARCHITECTURE.md. This module holds the typed values
exchanged around that protocol:

- ``RunContext`` (frozen): the run's seed, the resolved device and a progress reporter. The
  harness puts it in ``TrainSet.context``; a model reads it there, nothing is set on the model
  from outside.
- ``Capabilities`` (declared on the class as ``capabilities``): uses embeddings (the run fits
  it once per ``--embedding``), takes a seed (the run fits it once per ``--seeds`` value),
  needs torch (the harness imports torch and resolves the device first).
- ``FitReport``: what fitting decided (tuned settings, whether it refit on the validation
  targets, the learning curve, the validation RMSE it chose on). ``BasePredictor`` keeps the
  one returned by ``_fit`` as ``fit_report_``.
- ``Prediction``: predictions in the scale, their fallback flags and how many were clipped,
  made in one place (``finish_prediction``) for every model.
- ``Harnessed``: how the harness holds any model, a ``BasePredictor`` or a plain class that
  only keeps the protocol: it fits it and returns the report, and returns a checked
  ``Prediction`` for every batch. The runner talks to models only through it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

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
    "capabilities_of",
    "finish_prediction",
]


# -- progress -----------------------------------------------------------------------------
Step = Callable[..., None]  # step(completed: int, **fields): the bar's position and fields


@runtime_checkable
class ProgressReporter(Protocol):
    """Where a model shows the progress of a long fit. ``bar`` opens a bar of ``total`` steps;
    the value it yields is called as ``step(completed, **fields)`` (e.g. ``loss="0.81"``)."""

    def bar(
        self, description: str, total: int, **fields: Any
    ) -> contextlib.AbstractContextManager[Step]: ...


class NullProgress:
    """Shows nothing (tests, pipes, the Python API without a terminal)."""

    @contextlib.contextmanager
    def bar(self, description: str, total: int, **fields: Any) -> Iterator[Step]:
        yield lambda completed, **kw: None


class RichProgress:
    """A transient rich bar on ``console`` (a ``rich.console.Console``; default stderr). Pass
    the console that already shows a live display: rich nests live displays of one console.
    Shows nothing when the console is not a terminal."""

    def __init__(self, console: Any = None) -> None:
        self.console = console

    @contextlib.contextmanager
    def bar(self, description: str, total: int, **fields: Any) -> Iterator[Step]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = self.console if self.console is not None else Console(stderr=True)
        if not console.is_terminal:
            yield lambda completed, **kw: None
            return
        columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn(f"{k} {{task.fields[{k}]}}") for k in fields]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(description, total=total, **fields)

            def step(completed: int, **kw: Any) -> None:
                progress.update(task, completed=completed, **kw)

            yield step


# -- what a model receives ------------------------------------------------------------------
@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel fit (``bench run --ddp N`` or ``torchrun``):
    ``world_size`` processes train one model together, each on its shard of every batch; the
    default ``torch.distributed`` process group is initialised (``backend`` gloo on CPU, nccl
    on CUDA). Rank 0 alone predicts and writes."""

    rank: int
    world_size: int
    backend: str = "gloo"
    local_rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunContext:
    """The run's choices a model may read while fitting (``train.context``).

    ``seed``: the run's seed (one run per ``--seeds`` value); a model's own ``seed`` option,
    when set, wins. ``device``: ``cpu``, ``cuda``, ``cuda:1``, ``mps``, or ``auto`` when the run
    did not need to resolve it (no model declared torch). ``progress``: where to show a long
    fit's progress. ``distributed``: see ``Distributed``."""

    seed: int = 0
    device: str = "cpu"
    progress: ProgressReporter = field(default_factory=NullProgress, compare=False)
    # set on every rank of a data-parallel run, for the models that declare
    # ``Capabilities(distributed=True)``; None otherwise (and for every other model)
    distributed: Distributed | None = None


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


class Harnessed:
    """The harness's handle on one model, whatever it inherits from.

    ``fit(train)`` fits and returns the ``FitReport`` (a plain model that keeps only the
    protocol reports nothing beyond its config); ``predict(batch)`` returns a checked
    ``Prediction``. A ``BasePredictor`` supplies fallback flags and its report, and clips
    (and counts) predictions outside the scale; any other model must predict inside the
    scale (a value outside it is an error) and every query counts as a model prediction."""

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
        from predictors.base import BasePredictor

        self.scale = train.scale
        out = self.model.fit(train)
        if out is not self.model:
            raise PredictionError(f"{self.name}: fit() must return self, got {type(out).__name__}")
        if isinstance(self.model, BasePredictor):
            return self.model.fit_report_
        return FitReport()

    def predict(self, batch: HistoryBatch) -> Prediction:
        from predictors.base import BasePredictor

        if self.scale is None:
            raise RuntimeError(f"{self.name}: predict() before fit()")
        if isinstance(self.model, BasePredictor):
            return self.model.predict_detailed(batch)
        raw = self.model.predict(batch)
        return finish_prediction(self.name, raw, len(batch), self.scale, strict=True)
