"""A complete model in plain numpy that keeps the predictor protocol without inheriting
from anything: item biases learned on the training events, and a user offset read from the
query's own history, recent ratings weighing more.

    bench check examples/decayed_bias.py:DecayedBias
    bench run --models user-mean,bias,examples/decayed_bias.py:DecayedBias:half_life_days=60

See docs/writing-a-model.md.
"""

from __future__ import annotations

from typing import Any

import numpy as np

DAY = 86_400.0


class DecayedBias:
    """mean + item bias + the recency-weighted mean of the history's residuals."""

    name = "decayed-bias"  # the model's name in results and tables

    def __init__(
        self,
        *,
        item_damping: float = 10.0,
        user_damping: float = 3.0,
        half_life_days: float = 180.0,
    ) -> None:
        if item_damping < 0 or user_damping < 0 or half_life_days <= 0:
            raise ValueError(
                "decayed-bias: item_damping and user_damping must be >= 0 and "
                f"half_life_days > 0, got {item_damping}, {user_damping}, {half_life_days}"
            )
        self.item_damping = item_damping
        self.user_damping = user_damping
        self.half_life_days = half_life_days

    def get_config(self) -> dict[str, Any]:
        return {
            "item_damping": self.item_damping,
            "user_damping": self.user_damping,
            "half_life_days": self.half_life_days,
        }

    def fit(self, train: Any) -> DecayedBias:
        ev = train.events  # everything before each user's validation target
        rating = ev.rating.astype(np.float64)
        self.mean_ = float(rating.mean())
        resid = np.bincount(ev.item, weights=rating - self.mean_, minlength=train.n_items)
        count = np.bincount(ev.item, minlength=train.n_items)
        self.item_bias_ = resid / (count + self.item_damping)
        self.low_, self.high_ = train.scale.low, train.scale.high
        return self

    def predict(self, queries: Any) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("decayed-bias: predict() called before fit()")
        # one weight per history row: 1/2 every half_life_days before the target time
        q = np.repeat(np.arange(len(queries)), np.diff(queries.hist_offsets))
        age_days = (queries.target_time[q] - queries.hist_timestamp) / DAY
        w = 0.5 ** (np.maximum(age_days, 0.0) / self.half_life_days)
        resid = queries.hist_rating - self.mean_ - self.item_bias_[queries.hist_item]
        num = np.bincount(q, weights=w * resid, minlength=len(queries))
        den = np.bincount(q, weights=w, minlength=len(queries)) + self.user_damping
        pred = self.mean_ + self.item_bias_[queries.target_item] + num / den
        return np.clip(pred, self.low_, self.high_).astype(np.float32)
