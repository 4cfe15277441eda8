"""``TorchSequencePredictor``: the predictor protocol over a window of the history, shared by
the torch models, with the options they share declared once.

Items without an embedding: the notebook dropped every rating of a movie without an
embedding before building sequences. We do the same, vectorised: such events are removed
from the fitting store and from query histories (so the window holds the last L *embedded*
events), training targets on such items are skipped, and a query whose target item has no
embedding gets the fallback and is flagged.

The run's context (``train.context``) supplies what the options leave as None: the seed
(``seed=None``) and the device (``device=None``; ``"auto"`` is resolved here), and the
progress reporter the training bar is shown on (``progress=False`` turns the bar off).
Determinism: module init and dropout run inside ``seeded(seed, device)`` (in a data-parallel
fit, rank r > 0 draws its dropout masks from its own stream); shuffling uses a
local generator; on CPU the same seed gives bit-identical predictions.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from predictors.base import BasePredictor
from predictors.contract import Capabilities, FitReport
from predictors.options import (
    Boolean,
    Device,
    Integer,
    Interval,
    Validated,
    model_options,
    option,
)
from predictors.torch.batches import SeqBatch, SequenceData, history_batch, normalised_embeddings
from predictors.torch.device import seeded, torch_device
from predictors.torch.trainer import (
    AutoSettings,
    Schedule,
    TrainConfig,
    ValSet,
    predict_unit,
    resolve_schedule,
    train_model,
    val_subsample,
)
from predictors.types import HistoryBatch, TrainSet

__all__ = ["TorchSequencePredictor"]

# queries gathered into one SeqBatch when predicting (each then runs in EVAL_BATCH chunks)
_PREDICT_CHUNK = 8192


@model_options
class TorchSequencePredictor(Validated, BasePredictor):
    """Fit/predict plumbing of the torch models over a window of the history, and the
    options they share (the fields below; a subclass redeclares a field to change its
    default, e.g. ``epochs``).

    Subclasses are decorated with ``@model_options`` (``predictors.options``) and declare
    their own options with ``option(...)``; these options are theirs too, checked as declared
    here. They implement ``_build(train, emb_dim)`` -> module and
    ``_forward(module, emb, batch)`` -> (B,) predictions in [0, 1] units.
    ``needs_history``: queries with an empty (embedded) history cannot be predicted and fall
    back. The fallback is the mean of the training
    events (``mean_``); a target item without an embedding always falls back.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        embeddings=True, seeded=True, torch=True, distributed=True
    )
    needs_history: ClassVar[bool] = True
    # what "auto" resolves to while the sample budget does not bind / when it binds
    auto_small: ClassVar[AutoSettings]
    auto_large: ClassVar[AutoSettings]

    epochs: int = option(30, Integer(1), help="most training epochs")
    lr: float | str = option("auto", Interval(1e-12, 10.0), help="AdamW learning rate, or auto")
    weight_decay: float = option(0.01, Interval(0.0), help="AdamW weight decay")
    batch_size: int | str = option("auto", Integer(1), help="training batch size, or auto")
    dropout: float = option(0.1, Interval(0.0, 0.99), help="dropout rate")
    patience: int | str | None = option(
        "auto", None, Integer(1), help="epochs without gain before stopping (None: never), auto"
    )
    max_samples: int | None = option(
        2_000_000, None, Integer(1), help="budget of training samples (see resolve_schedule)"
    )
    val_max: int | None = option(
        10_000, None, Integer(1), help="validation queries used for model selection, at most"
    )
    window: int | None = option(None, Integer(1), help="history window; None: the split's")
    eta_min: float = option(1e-5, Interval(0.0), help="final learning rate of the cosine decay")
    clip: float | None = option(1.0, None, Interval(1e-12), help="gradient norm clip; None: off")
    seed: int | None = option(None, Integer(0), help="seed of the fit; None: the run's seed")
    device: str | None = option(None, Device(), help="device to train on; None: the run's")
    bf16: bool = option(False, Boolean(), help="train in bfloat16 autocast")
    progress: bool = option(True, Boolean(), help="show the training bar of the run's progress")

    # -- hooks -------------------------------------------------------------------------
    def _build(self, train: TrainSet, emb_dim: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _forward(self, module: nn.Module, emb: Tensor, batch: SeqBatch) -> Tensor:
        raise NotImplementedError  # pragma: no cover

    def _no_decay(self, name: str, p: Tensor) -> bool:
        return False  # the notebook decays every parameter

    def _targets(self) -> str:
        """Training targets: the split's (``"split"``) or every event (``"all"``)."""
        return "split"

    def _epoch_size(self) -> int | None:
        """Targets per epoch (None: all of them); see ``TrainConfig.epoch_size``."""
        return None

    # -- fit / predict -----------------------------------------------------------------
    def _fit(self, train: TrainSet) -> FitReport:
        if train.embeddings is None:
            raise ValueError(f"{self.name} needs item embeddings: pass --embedding ...")
        if train.embeddings.vectors.shape[0] != train.n_items:
            raise ValueError(
                f"{self.name}: embedding has {train.embeddings.vectors.shape[0]} rows for "
                f"{train.n_items} items"
            )
        if train.events.n_events == 0:
            raise ValueError(f"{self.name}: cannot fit on an empty training set")
        device = torch_device(train.context.device if self.device is None else self.device)
        window = int(self.window or train.meta.get("max_history", 30))
        seed = int(train.context.seed if self.seed is None else self.seed)
        keep_item = np.asarray(train.embeddings.present, dtype=bool)
        emb = normalised_embeddings(train.embeddings.vectors, device)
        data, skipped = SequenceData.from_train(
            train,
            window,
            device,
            keep_item=keep_item,
            min_history=int(self.needs_history),
            targets=self._targets(),
        )
        self.mean_ = float(np.mean(train.events.rating, dtype=np.float64))
        self.window_, self.device_, self.keep_item_, self.emb_ = window, device, keep_item, emb

        schedule = self.schedule_for(len(data))
        # model selection reads a seeded subsample of the validation queries when there
        # are more than val_max (cheap per-epoch validation at scale)
        vb, vtruth = train.val.batch, np.asarray(train.val.rating, dtype=np.float32)
        sub = val_subsample(len(vb), self.val_max, seed)
        if sub is not None:
            vb, vtruth = vb.take(sub), vtruth[sub]
        val = None
        if len(vb):
            seq = history_batch(vb, window, train.scale, device, keep_item=keep_item)
            ok = self._predictable(seq)
            rows = np.flatnonzero(ok).astype(np.int64)
            val = ValSet(
                batch=seq.index(torch.from_numpy(rows).to(device)),
                rows=rows,
                truth=vtruth,
                fallback=self.mean_,
            )
        cfg = TrainConfig(
            epochs=schedule.epochs,
            lr=schedule.lr,
            weight_decay=float(self.weight_decay),
            batch_size=schedule.batch_size,
            clip=self.clip,
            eta_min=float(self.eta_min),
            patience=schedule.patience,
            seed=seed,
            bf16=self.bf16,
            progress=self.progress,
            reporter=train.context.progress,
            desc=self.name,
            epoch_size=schedule.epoch_size,
            dist=train.context.distributed,
        )
        dist = train.context.distributed
        with seeded(seed, device):
            module = self._build(train, int(emb.shape[1])).to(device)
            n_params = sum(p.numel() for p in module.parameters())
            if dist is not None and dist.rank > 0:
                # the same initial weights (DDP broadcasts rank 0's), but each rank its own
                # dropout masks; rank 0 keeps the single-process stream
                torch.manual_seed(
                    int(np.random.SeedSequence([seed, dist.rank]).generate_state(1)[0])
                )

            def fwd(b: SeqBatch) -> Tensor:
                return self._forward(module, emb, b)

            result = train_model(module, fwd, data, val, train.scale, cfg, no_decay=self._no_decay)
        module.load_state_dict(result.best_state)
        module.eval()
        self.module_ = module
        if result.stopped_early:
            stop = f"no better validation RMSE in {schedule.patience} epochs"
        elif schedule.budget_binds:
            stop = "sample budget spent"
        else:
            stop = "all epochs run"
        settings: dict[str, Any] = {
            "device": str(device),
            "window": window,
            "seed": seed,
            "n_parameters": int(n_params),
            "n_train": len(data),
            **skipped,
            # the resolved schedule (the "auto" options and the sample budget)
            **schedule.to_dict(),
            "epochs_run": len(result.curve),
            "samples_seen": result.samples,
            "best_epoch": result.best_epoch,
            "best_val_rmse": result.best_val_rmse,
            "stopped_early": result.stopped_early,
            "stop_reason": stop,
            "train_seconds": result.seconds,
            "val_seconds": result.val_seconds,  # of train_seconds
            "steps": result.steps,
            "n_val": len(train.val.batch),
            "n_val_used": len(vb),
            # data-parallel training: the ranks that trained this model together
            "distributed": None if dist is None else dist.to_dict(),
            "val_fallbacks": 0 if val is None else int(len(vb) - val.rows.size),
        }
        return FitReport(
            settings=settings,
            learning_curve=tuple(result.curve),
            val_rmse=result.best_val_rmse,
        )

    def schedule_for(self, n_train: int) -> Schedule:
        """The schedule this model's options resolve to at ``n_train`` training targets
        (see ``resolve_schedule``)."""
        return resolve_schedule(
            n_train,
            epochs=self.epochs,
            epoch_size=self._epoch_size(),
            batch_size=self.batch_size,
            lr=self.lr,
            patience=self.patience,
            max_samples=self.max_samples,
            small=self.auto_small,
            large=self.auto_large,
        )

    def _forward_fitted(self, batch: SeqBatch) -> Tensor:
        return self._forward(self.module_, self.emb_, batch)

    def _predictable(self, seq: SeqBatch) -> NDArray[np.bool_]:
        """(B,) bool: target item has an embedding and (if needed) the history is not empty."""
        ok = self.keep_item_[seq.target_item.cpu().numpy()]
        if self.needs_history:
            ok &= seq.mask.any(dim=1).cpu().numpy()
        return ok

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        pred = np.full(len(batch), self.mean_, dtype=np.float64)
        fallback = np.ones(len(batch), dtype=bool)
        for lo in range(0, len(batch), _PREDICT_CHUNK):
            sub = batch.take(np.arange(lo, min(lo + _PREDICT_CHUNK, len(batch))))
            seq = history_batch(
                sub, self.window_, self.scale_, self.device_, keep_item=self.keep_item_
            )
            ok = self._predictable(seq)
            rows = np.flatnonzero(ok)
            if rows.size:
                seq = seq.index(torch.from_numpy(rows).to(self.device_))
                u = predict_unit(self.module_, self._forward_fitted, seq, bf16=self.bf16)
                pred[lo + rows] = self.scale_.from_unit(u)
            fallback[lo + rows] = False
        return pred, fallback
