"""Choosing (factors, reg, epochs) on validation: the grid search shared by ``mf`` and ``svdpp``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np

__all__ = ["GridChoice", "grid_search"]

P = TypeVar("P")


@dataclass
class GridChoice(Generic[P]):
    factors: int
    reg: float
    epochs: int
    val_rmse: float | None  # None when there were no validation queries to score
    params: P  # the parameters of the chosen epoch
    grid: list[dict[str, Any]]  # per setting, the validation RMSE of every epoch


def grid_search(
    train: Callable[[int, float, int, Callable[[int, P], bool]], P],
    score: Callable[[P], float],
    factors: Sequence[int],
    regs: Sequence[float],
    *,
    max_epochs: int,
    fixed_epochs: int | None,
    tune: bool,
    patience: int = 3,
) -> GridChoice[P]:
    """Train every (factors, reg) setting, scoring the parameters after each epoch on
    validation, and keep the best epoch of the best setting.

    ``train(factors, reg, epochs, on_epoch)`` returns the final parameters and calls
    ``on_epoch(epoch, params)`` after each epoch; ``on_epoch`` returns True to stop early
    (after ``patience`` epochs without improvement, only when ``fixed_epochs`` is None).
    ``score(params)`` is the validation RMSE. With ``tune`` False (no validation queries)
    only the first setting is trained, for ``fixed_epochs`` or ``max_epochs`` epochs.
    """
    n_epochs = max_epochs if fixed_epochs is None else int(fixed_epochs)
    if not tune:
        factors, regs = factors[:1], regs[:1]
    best: dict[str, Any] = {
        "val_rmse": np.inf,
        "factors": factors[0],
        "reg": regs[0],
        "epochs": n_epochs,
        "params": None,
    }
    grid: list[dict[str, Any]] = []
    params: P | None = None
    for f in factors:
        for reg in regs:
            curve: list[float] = []

            def on_epoch(
                epoch: int, prm: P, curve: list[float] = curve, f: int = f, reg: float = reg
            ) -> bool:
                if not tune:
                    return False
                s = score(prm)
                curve.append(s)
                if s < best["val_rmse"]:
                    best.update(val_rmse=s, factors=f, reg=reg, epochs=epoch, params=prm)
                return fixed_epochs is None and epoch - int(np.argmin(curve)) > patience

            params = train(f, reg, n_epochs, on_epoch)
            grid.append({"factors": f, "reg": reg, "val_rmse": [round(c, 5) for c in curve]})
    if best["params"] is None:  # nothing scored: the (only) trained setting
        best["params"] = params
    return GridChoice(
        factors=int(best["factors"]),
        reg=float(best["reg"]),
        epochs=n_epochs if fixed_epochs is not None else int(best["epochs"]),
        val_rmse=None if not np.isfinite(best["val_rmse"]) else float(best["val_rmse"]),
        params=best["params"],
        grid=grid,
    )
