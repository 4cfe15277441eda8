"""Fit one torch model on a small synthetic split, alone or as a rank of a torchrun job, and
save rank 0's test predictions and learning curve: ``python tests/ddp_fit.py MODEL OUT.npz
[BATCH]`` (with ``torchrun --nproc-per-node N`` in front for a data-parallel fit). Used by
tests/test_ddp.py; dropout is off, so a data-parallel fit is the single-process fit up to
float rounding."""

from __future__ import annotations

import dataclasses
import os
import sys

import numpy as np
import torch

from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams, make_split
from predictors.attention import Attention
from predictors.contract import Distributed, RunContext
from predictors.transformer import Transformer


def fit(model: str, batch_size: int) -> tuple[np.ndarray, list[dict], dict, int]:
    loaded = load_source(DataSource(dataset="synthetic", users=300, data_seed=0))
    split = make_split(loaded.interactions, SplitParams(samples_per_user=3, max_history=12))
    train = split.train_set(loaded.interactions, embeddings=loaded.embeddings, seed=0)
    dist, rank = None, 0
    if "WORLD_SIZE" in os.environ:
        import torch.distributed as tdist

        tdist.init_process_group("gloo")
        rank = tdist.get_rank()
        dist = Distributed(rank=rank, world_size=tdist.get_world_size())
    train = dataclasses.replace(train, context=RunContext(seed=0, device="cpu", distributed=dist))
    opts = dict(epochs=3, batch_size=batch_size, dropout=0.0, device="cpu", progress=False)
    if model == "attention":
        m = Attention(hidden=16, **opts)
    else:
        m = Transformer(d_model=16, heads=2, layers=1, **opts)
    m.fit(train)
    ((_, test),) = split.test_batches(loaded.interactions, 100_000)
    pred = m.predict(test)
    report = m.fit_report_
    if dist is not None:
        import torch.distributed as tdist

        tdist.destroy_process_group()
    return pred, list(report.learning_curve or ()), dict(report.settings), rank


if __name__ == "__main__":
    torch.set_num_threads(1)
    model, out = sys.argv[1], sys.argv[2]
    batch = int(sys.argv[3]) if len(sys.argv) > 3 else 64
    pred, curve, settings, rank = fit(model, batch)
    if rank == 0:
        np.savez(
            out,
            pred=pred,
            val_rmse=np.array([c["val_rmse"] for c in curve]),
            train_loss=np.array([c["train_loss"] for c in curve]),
            best_epoch=settings["best_epoch"],
            samples=settings["samples_seen"],
        )
