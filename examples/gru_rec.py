"""A complete torch model on the shared trainer: a GRU reads the history window (movie
embedding + rating at each step), and its last state meets the target movie's embedding in
a small head that predicts the rating.

    bench check examples/gru_rec.py:GRURec:epochs=2
    bench run --models user-mean,attention,examples/gru_rec.py:GRURec:hidden=64

The shared adapter (``TorchSequencePredictor``) does the rest: it gathers the history windows
on the device, trains with AdamW, cosine annealing and early stopping on validation within
a sample budget, shows a progress bar, keeps the best epoch, predicts in bounded chunks and
flags the fallbacks (an empty history, a target movie without an embedding). Its options
(epochs, lr, batch_size, window, seed, device, ...) are this model's options too.
See docs/writing-a-model.md.
"""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import Tensor, nn

from predictors.api import (
    AutoSettings,
    Integer,
    SeqBatch,
    TorchSequencePredictor,
    TrainSet,
    model_options,
    option,
)


class GRUNet(nn.Module):
    def __init__(self, emb_dim: int, hidden: int, dropout: float) -> None:
        super().__init__()
        self.gru = nn.GRU(emb_dim + 1, hidden, batch_first=True)
        self.head = nn.Sequential(
            nn.Linear(hidden + emb_dim, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, 1),
            nn.Sigmoid(),
        )

    def forward(self, hist: Tensor, lengths: Tensor, target: Tensor) -> Tensor:
        """hist (B, L, E+1) right-aligned, lengths (B,) >= 1, target (B, E) -> (B,) in [0, 1]."""
        # the windows are left-padded (newest event last): read each from its first real step
        packed = nn.utils.rnn.pack_padded_sequence(
            torch.flip(hist, dims=[1]), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        _, state = self.gru(packed)  # reads the flipped window: newest first, oldest last
        return self.head(torch.cat([state[-1], target], dim=-1)).squeeze(-1)


@model_options
class GRURec(TorchSequencePredictor):
    """GRU over the (movie embedding, rating) history; ``hidden`` is the GRU's width."""

    name = "gru-rec"
    summary = "GRU over the history window + target embedding head (example plugin)"
    needs_history = True  # an empty history falls back to the training mean

    auto_small: ClassVar[AutoSettings] = AutoSettings(batch_size=128, lr=1e-3, patience=None)
    auto_large: ClassVar[AutoSettings] = AutoSettings(batch_size=512, lr=2e-3, patience=10)

    hidden: int = option(64, Integer(1), help="the GRU's width")

    def _build(self, train: TrainSet, emb_dim: int) -> nn.Module:
        return GRUNet(emb_dim, self.hidden, float(self.dropout))

    def _forward(self, module: nn.Module, emb: Tensor, batch: SeqBatch) -> Tensor:
        mask = batch.mask
        steps = torch.cat([emb[batch.hist_item], batch.hist_rating.unsqueeze(-1)], dim=-1)
        steps = steps * mask.unsqueeze(-1)  # zeros where padded
        lengths = mask.sum(dim=1).clamp(min=1)
        return module(steps, lengths, emb[batch.target_item])
