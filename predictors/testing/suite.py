"""What the checks of one ``check_predictor`` call share (``_Suite``: the factory, the data
settings, a lazily fitted model, a cache of watched fits), how a check says it failed
(``_CheckFailed``, or ``_KnockOn`` when the failure follows from another check's) and how
reasons word an exception (``_err``) and two predictions that differ (``_diff_reason``)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.context import RunContext
from predictors.testing.world import SyntheticWorld, synthetic_world
from predictors.types import HistoryBatch, TrainSet


class _CheckFailed(Exception):
    """A check's verdict: the message is the one-line reason."""


class _KnockOn(_CheckFailed):
    """A failure that follows from another check's (``of``): the model breaks that rule, and
    this check cannot see past it. The message says what this check saw."""

    def __init__(self, of: str, reason: str) -> None:
        super().__init__(reason)
        self.of = of


class _Suite:
    """State shared by the checks of one ``check_predictor`` call: the factory, the data
    settings and a lazily fitted model that checks copy before use."""

    def __init__(
        self,
        make: Callable[[], Any],
        name: str,
        cls: type | None,
        embeddings: bool,
        seed: int,
        device: str,
    ) -> None:
        self.make = make
        self.name = name
        self.cls = cls
        self.embeddings = embeddings
        self.seed = seed
        self.device = device
        self._fitted: tuple[Any, Any] | None = None  # (model, what fit returned)
        self._fit_error: BaseException | None = None
        self._pred: Any = None
        self.cache: dict[str, Any] = {}  # what other modules' checks share (watched fits)

    # data and models
    def world(self, n_test: int = 1) -> SyntheticWorld:
        ctx = RunContext(seed=self.seed, device=self.device)
        return synthetic_world(self.seed, n_test=n_test, embeddings=self.embeddings, context=ctx)

    def new(self) -> Any:
        try:
            return self.make()
        except Exception as e:
            raise _CheckFailed(f"{self.name}: building the model raised {_err(e)}") from e

    def fit(self, model: Any, train: TrainSet) -> Any:
        try:
            return model.fit(train)
        except _CheckFailed:
            raise
        except Exception as e:
            raise _KnockOn("fit_returns_self", f"{self.name}: fit() raised {_err(e)}") from e

    def predict(self, model: Any, batch: HistoryBatch) -> Any:
        try:
            return model.predict(batch)
        except Exception as e:
            raise _KnockOn(
                "output_shape", f"{self.name}: predict() on {len(batch)} queries raised {_err(e)}"
            ) from e

    def values(self, model: Any, batch: HistoryBatch) -> NDArray[np.float64]:
        """``predict`` as (B,) float64 for comparisons; shape problems are output_shape's."""
        raw = self.predict(model, batch)
        try:
            out = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise _KnockOn(
                "output_shape",
                f"{self.name}: predict() output is not numeric ({type(raw).__name__}); "
                "cannot compare (see output_shape)",
            ) from e
        if out.shape[0] != len(batch):
            raise _KnockOn(
                "output_shape",
                f"{self.name}: predict() returned {out.shape[0]} values for {len(batch)} "
                "queries; cannot compare (see output_shape)",
            )
        return out

    def require_agree(
        self,
        got: NDArray[np.float64],
        want: NDArray[np.float64],
        tol: float,
        *,
        context: str,
        expected: str,
        after: str = "",
    ) -> None:
        """Raise ``_CheckFailed("{name}: {context} {how they differ}{after}; expected
        {expected}")`` unless ``got`` and ``want`` agree within ``tol`` (``_diff_reason``)."""
        diff = _diff_reason(got, want, tol)
        if diff is not None:
            raise _CheckFailed(f"{self.name}: {context} {diff}{after}; expected {expected}")

    def fitted(self) -> tuple[Any, Any]:
        """The model fitted once on the standard world, and what its fit returned."""
        if self._fit_error is not None:
            raise _CheckFailed(str(self._fit_error))
        if self._fitted is None:
            try:
                model = self.new()
                self._fitted = (model, self.fit(model, self.world().train))
            except _CheckFailed as e:
                self._fit_error = e
                raise
        return self._fitted

    def fresh_fitted(self) -> Any:
        """A copy of the fitted model (so that checks do not share state), or a new fit."""
        model, _ = self.fitted()
        try:
            return copy.deepcopy(model)
        except Exception:
            m = self.new()
            self.fit(m, self.world().train)
            return m

    def prediction(self) -> Any:
        """The fitted model's raw ``predict`` output on the standard test batch (once)."""
        if self._pred is None:
            self._pred = (self.predict(self.fresh_fitted(), self.world().test),)
        return self._pred[0]


def _err(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__


def _diff_reason(a: NDArray[np.float64], b: NDArray[np.float64], tol: float) -> str | None:
    """None when ``a`` and ``b`` agree within ``tol`` (NaN equals NaN), else how they differ."""
    same = (np.abs(a - b) <= tol) | (np.isnan(a) & np.isnan(b)) | (a == b)
    if same.all():
        return None
    d = np.abs(a - b)[~same]
    worst = float(np.nanmax(d)) if np.isfinite(d).any() else float("nan")
    return f"{int((~same).sum())} of {a.shape[0]} predictions differ (max |diff| {worst:.3g})"
