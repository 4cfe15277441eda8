"""The first flagged value of a check: what the readers, the interactions builder and the
metrics report when a column holds bad values (how many, and where the first one is)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Flagged:
    """The entries a boolean mask flags: how many, and the (0-based) index of the first."""

    count: int
    first: int


def flagged(mask: NDArray[np.bool_]) -> Flagged | None:
    """The entries the (N,) bool ``mask`` flags, or None when it flags none."""
    if not mask.any():
        return None
    return Flagged(count=int(mask.sum()), first=int(np.flatnonzero(mask)[0]))
