"""The shared training loop of the torch models, its config and the size-dependent schedule.

- ``train_model``: AdamW, cosine schedule over the epochs, gradient clipping, seeded
  shuffling with a local ``torch.Generator``, validation RMSE/MAE (original scale) every
  epoch, the best-validation state kept, optional early stopping, a learning curve, a loud
  error on a non-finite loss, optional bf16 autocast on CUDA, and a progress bar through the
  run's ``ProgressReporter`` (``predictors.contract``).
- ``resolve_schedule`` is the size rule the models share: a budget of training samples
  (``max_samples``) that leaves the asked-for epochs alone while they fit in it (every
  notebook-sized split) and otherwise keeps the number of epochs but makes each one a round
  of ``max_samples / epochs`` targets; ``"auto"`` batch size, learning rate and patience
  resolve to a model's small-size values or, once the budget binds, its large-size ones.
  ``val_subsample`` caps the validation queries read for model selection (``val_max``).

On CPU the same seed gives bit-identical results. On CUDA some kernels (index backward,
attention) are not deterministic; we do not force ``torch.use_deterministic_algorithms``.

Data parallel (``cfg.dist``, a ``predictors.contract.Distributed`` with the default process
group initialised): the module is wrapped in ``DistributedDataParallel``; every rank draws the
same seeded order of targets and gathers its own contiguous shard of each global batch of
``batch_size`` targets from its copy of the arrays (the last, short batch padded with
zero-weight rows so every rank runs the same shapes). The loss on a rank is its shard's summed
squared error times ``world_size / batch``, so DDP's gradient average is exactly the gradient
of the global batch's mean: the same update as one process with the same ``batch_size``, up
to the order of floating-point sums. Validation is sharded the same way and its sums are
all-reduced, so every rank sees the same RMSE and takes the same early-stopping decision.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from predictors.context import Distributed, NullProgress, ProgressReporter
from predictors.numerics import rmse
from predictors.torch.batches import SeqBatch, SequenceData
from predictors.types import RatingScale

__all__ = [
    "AUTO",
    "EVAL_BATCH",
    "AutoSettings",
    "ForwardFn",
    "Schedule",
    "TrainConfig",
    "TrainResult",
    "ValSet",
    "predict_unit",
    "resolve_schedule",
    "train_model",
    "val_subsample",
]

# queries per forward pass when predicting: on CPU 1024 runs the attention model 1.1x and the
# transformer 1.4x faster than 4096 (smaller intermediates stay in cache), and bounds the
# (B, L, E) gathered embeddings to ~37 MB
EVAL_BATCH = 1024


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``train_model``; defaults are the notebook's."""

    epochs: int = 30
    lr: float = 1e-3
    weight_decay: float = 0.01
    batch_size: int = 128
    clip: float | None = 1.0  # max gradient norm; None disables clipping
    eta_min: float = 1e-5  # cosine schedule floor (T_max = epochs, stepped per epoch)
    patience: int | None = None  # epochs without a better validation RMSE; None: no stop
    seed: int = 0
    bf16: bool = False  # bf16 autocast, CUDA only (ignored elsewhere)
    progress: bool = True  # show the epoch bar on ``reporter``; False: no bar
    # where the bar goes: the run's ``train.context.progress`` (a transient rich bar that
    # shows nothing off a terminal, or nothing at all); not compared, not a setting
    reporter: ProgressReporter = field(default_factory=NullProgress, compare=False)
    eval_batch_size: int = EVAL_BATCH
    desc: str = "train"
    # targets per epoch: None = all of them (a fresh permutation each epoch); k = the next k
    # of a seeded stream of permutations, so successive epochs cover every target before
    # any repeats
    epoch_size: int | None = None
    # data-parallel training across the ranks of the default process group; None: this
    # process alone (see the module docstring)
    dist: Distributed | None = field(default=None, compare=False)


@dataclass(frozen=True)
class ValSet:
    """Validation queries: the rows a model can predict as a ``SeqBatch``, the others get
    ``fallback``; ``truth`` is on the original scale."""

    batch: SeqBatch  # (V', L) the predictable queries
    rows: NDArray[np.int64]  # (V',) their positions among all V queries
    truth: NDArray[np.float32]  # (V,) float32 original scale
    fallback: float  # prediction for the other queries, original scale


@dataclass
class TrainResult:
    best_state: dict[str, Tensor]
    best_epoch: int  # 1-based; the last epoch when there is no validation set
    best_val_rmse: float | None
    curve: list[dict[str, Any]]
    stopped_early: bool
    seconds: float
    steps: int
    samples: int = 0  # training targets seen, summed over the epochs
    val_seconds: float = 0.0  # of ``seconds``, the time spent on validation


ForwardFn = Callable[[SeqBatch], Tensor]  # SeqBatch -> (B,) predictions in [0, 1] units


def _autocast(device: torch.device, bf16: bool) -> contextlib.AbstractContextManager[Any]:
    if bf16 and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict_unit(
    module: nn.Module,
    forward: ForwardFn,
    batch: SeqBatch,
    *,
    batch_size: int = EVAL_BATCH,
    bf16: bool = False,
) -> NDArray[np.float32]:
    """(B,) float32 predictions in [0, 1] units, in eval mode, in chunks of ``batch_size``."""
    was_training = module.training
    module.eval()
    out = []
    device = batch.target_item.device
    try:
        for lo in range(0, len(batch), batch_size):
            with _autocast(device, bf16):
                p = forward(batch.slice(lo, lo + batch_size))
            out.append(p.float().cpu())
    finally:
        module.train(was_training)
    if not out:
        return np.zeros(0, dtype=np.float32)
    return torch.cat(out).numpy()


def _val_metrics(
    module: nn.Module, forward: ForwardFn, val: ValSet, scale: RatingScale, cfg: TrainConfig
) -> tuple[float, float]:
    pred = np.full(val.truth.shape[0], val.fallback, dtype=np.float64)
    if val.rows.size:
        u = predict_unit(module, forward, val.batch, batch_size=cfg.eval_batch_size, bf16=cfg.bf16)
        pred[val.rows] = scale.from_unit(u)
    pred = np.clip(pred, scale.low, scale.high)
    if not np.all(np.isfinite(pred)):
        raise FloatingPointError("non-finite validation prediction(s)")
    truth = val.truth.astype(np.float64)
    return rmse(pred, truth), float(np.mean(np.abs(pred - truth)))


def _val_metrics_dist(
    module: nn.Module,
    forward: ForwardFn,
    val: ValSet,
    scale: RatingScale,
    cfg: TrainConfig,
    dist: Distributed,
) -> tuple[float, float]:
    """``_val_metrics`` over the ranks: each predicts its contiguous share of the
    predictable queries, the squared and absolute errors are summed in float64 and
    all-reduced (rank 0 adds the fallback queries), and rank 0's figures are broadcast, so
    every rank takes the same decision."""
    import torch.distributed as tdist

    n_rows = int(val.rows.size)
    lo = n_rows * dist.rank // dist.world_size
    hi = n_rows * (dist.rank + 1) // dist.world_size
    sums = np.zeros(3, dtype=np.float64)  # squared errors, absolute errors, non-finite count
    if hi > lo:
        u = predict_unit(
            module,
            forward,
            val.batch.slice(lo, hi),
            batch_size=cfg.eval_batch_size,
            bf16=cfg.bf16,
        )
        pred = np.clip(scale.from_unit(u).astype(np.float64), scale.low, scale.high)
        err = pred - val.truth[val.rows[lo:hi]].astype(np.float64)
        sums += [np.sum(err**2), np.sum(np.abs(err)), np.count_nonzero(~np.isfinite(pred))]
    if dist.rank == 0:
        others = np.ones(val.truth.shape[0], dtype=bool)
        others[val.rows] = False
        fb = np.clip(np.float64(val.fallback), scale.low, scale.high)
        err = fb - val.truth[others].astype(np.float64)
        sums[:2] += [np.sum(err**2), np.sum(np.abs(err))]
    t = torch.from_numpy(sums).to(_collective_device(dist))
    tdist.all_reduce(t)
    tdist.broadcast(t, src=0)
    sse, sae, bad = t.cpu().numpy().tolist()
    if bad:
        raise FloatingPointError("non-finite validation prediction(s)")
    n = val.truth.shape[0]
    return math.sqrt(sse / n), sae / n


def _collective_device(dist: Distributed) -> torch.device:
    """Where the tensors of a collective live: nccl needs them on this rank's GPU."""
    if dist.backend == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


class _Forward(nn.Module):
    """``forward`` as a module, so that DistributedDataParallel wraps it: the parameters are
    ``inner``'s (the module ``forward`` closes over), the hooks fire on them."""

    def __init__(self, inner: nn.Module, forward: ForwardFn) -> None:
        super().__init__()
        self.inner = inner
        self._fn = forward

    def forward(self, batch: SeqBatch) -> Tensor:
        return self._fn(batch)


def _shard(idx: Tensor, dist: Distributed) -> tuple[Tensor, Tensor, int]:
    """This rank's contiguous shard of a global batch of target rows, padded to
    ``ceil(len / world_size)`` with zero-weight rows (the batch's first), the weights, and
    how many of the shard's rows are real (counted here: no device sync)."""
    b, w = int(idx.shape[0]), dist.world_size
    per = -(-b // w)
    pad = per * w - b
    weight = torch.ones(per * w, dtype=torch.float32, device=idx.device)
    if pad:
        idx = torch.cat([idx, idx[:1].expand(pad)])
        weight[b:] = 0.0
    lo, hi = dist.rank * per, (dist.rank + 1) * per
    return idx[lo:hi], weight[lo:hi], max(0, min(hi, b) - lo)


def _param_groups(
    module: nn.Module, weight_decay: float, no_decay: Callable[[str, Tensor], bool] | None
) -> list[dict[str, Any]]:
    decay, plain = [], []  # type: ignore[var-annotated]
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (plain if no_decay is not None and no_decay(name, p) else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}]
    if plain:
        groups.append({"params": plain, "weight_decay": 0.0})
    return groups


def _epoch_orders(n: int, epoch_size: int | None, gen: torch.Generator) -> Iterator[Tensor]:
    """Per-epoch target orders (CPU int64): a fresh ``randperm(n)`` per epoch when
    ``epoch_size`` is None or >= n, else consecutive ``epoch_size`` slices of a stream of
    permutations (the last slice of one permutation is topped up from the next)."""
    if epoch_size is None or epoch_size >= n:
        while True:
            yield torch.randperm(n, generator=gen)
    buf = torch.zeros(0, dtype=torch.int64)
    while True:
        while buf.shape[0] < epoch_size:
            buf = torch.cat([buf, torch.randperm(n, generator=gen)])
        yield buf[:epoch_size]
        buf = buf[epoch_size:]


def train_model(
    module: nn.Module,
    forward: ForwardFn,
    data: SequenceData,
    val: ValSet | None,
    scale: RatingScale,
    cfg: TrainConfig,
    *,
    no_decay: Callable[[str, Tensor], bool] | None = None,
) -> TrainResult:
    """Train ``module`` with MSE on [0, 1]-scaled ratings; ``forward(batch)`` returns (B,)
    predictions in [0, 1] units. Every epoch: a seeded shuffle of the targets (or the next
    ``cfg.epoch_size`` of a seeded stream of shuffles), AdamW steps
    (gradient norm clipped to ``cfg.clip``), validation RMSE/MAE on the original scale, and
    one cosine step (``T_max = epochs``). Keeps the state dict of the best validation RMSE
    (the last epoch when ``val`` is None or empty); stops after ``cfg.patience`` epochs
    without improvement when set. Leaves ``module`` in train mode with its final weights;
    the caller loads ``best_state``.

    Raises FloatingPointError on a non-finite training loss, ValueError on an empty
    training set.
    """
    n = len(data)
    if n == 0:
        raise ValueError("no training targets left (every target lacked an embedding or history)")
    device = data.device
    opt = torch.optim.AdamW(_param_groups(module, cfg.weight_decay, no_decay), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.eta_min)
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(cfg.seed))
    has_val = val is not None and val.truth.size > 0
    # the loss is read back every step on CPU (free) and every few steps on accelerators
    sync_every = 1 if device.type == "cpu" else 16
    curve: list[dict[str, Any]] = []
    best_rmse, best_epoch, best_state = math.inf, 0, None
    stale, stopped_early, steps, samples = 0, False, 0, 0
    val_seconds = 0.0
    t_start = time.perf_counter()
    dist = cfg.dist if cfg.dist is not None and cfg.dist.world_size > 1 else None
    train_forward: Callable[[SeqBatch], Tensor] = forward
    if dist is not None:
        import torch.distributed as tdist
        from torch.nn.parallel import DistributedDataParallel

        # rank 0's initial weights are broadcast to every rank here
        train_forward = DistributedDataParallel(
            _Forward(module, forward),
            device_ids=[device.index] if device.type == "cuda" else None,
        )
    reporter = cfg.reporter if cfg.progress else NullProgress()
    order = _epoch_orders(n, cfg.epoch_size, gen)
    n_batches = math.ceil(min(n, cfg.epoch_size or n) / cfg.batch_size)
    with reporter.bar(cfg.desc, n_batches, loss="-") as step:
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            lr = float(opt.param_groups[0]["lr"])
            module.train()
            perm = next(order).to(device)
            loss_sum = torch.zeros((), device=device)
            seen = 0
            step(0, description=f"{cfg.desc} {epoch}/{cfg.epochs}")
            n_epoch = int(perm.shape[0])
            for b, lo in enumerate(range(0, n_epoch, cfg.batch_size)):
                idx = perm[lo : lo + cfg.batch_size]
                n_global = n_seen = int(idx.shape[0])
                weight = None
                if dist is not None:
                    idx, weight, n_seen = _shard(idx, dist)
                batch = data.gather(idx)
                with _autocast(device, cfg.bf16):
                    pred = train_forward(batch)
                sq = (pred.float() - batch.target_rating) ** 2  # type: ignore[operator]
                if weight is None:
                    loss = torch.mean(sq)
                    batch_loss = loss.detach() * idx.shape[0]
                else:
                    assert dist is not None
                    batch_loss = torch.sum(sq * weight)
                    # DDP averages the ranks' gradients: scaled so the average is the
                    # gradient of the global batch's mean
                    loss = batch_loss * (dist.world_size / n_global)
                    batch_loss = batch_loss.detach()
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip)
                opt.step()
                steps += 1
                loss_sum += batch_loss
                seen += n_seen
                if (b + 1) % sync_every == 0 or lo + cfg.batch_size >= n_epoch:
                    running = float(loss_sum) / seen
                    if not math.isfinite(running):
                        raise FloatingPointError(
                            f"{cfg.desc}: non-finite training loss ({running}) at epoch {epoch}, "
                            f"step {b + 1}; try a lower lr or disable bf16"
                        )
                    step(b + 1, loss=f"{running:.4f}")
            if dist is not None:  # the epoch's loss and count over every rank
                tot = torch.tensor(
                    [float(loss_sum), float(seen)],
                    dtype=torch.float64,
                    device=_collective_device(dist),
                )
                tdist.all_reduce(tot)
                train_loss, seen = float(tot[0]) / float(tot[1]), int(tot[1])
            else:
                train_loss = float(loss_sum) / seen
            samples += seen
            sched.step()
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
            if has_val:
                assert val is not None
                t_val = time.perf_counter()
                if dist is not None:
                    rmse, mae = _val_metrics_dist(module, forward, val, scale, cfg, dist)
                else:
                    rmse, mae = _val_metrics(module, forward, val, scale, cfg)
                val_seconds += time.perf_counter() - t_val
                row.update(val_rmse=rmse, val_mae=mae)
            else:
                rmse = math.nan
                row.update(val_rmse=None, val_mae=None)
            row.update(lr=lr, seconds=time.perf_counter() - t0)
            curve.append(row)
            improved = (not has_val) or rmse < best_rmse
            if improved:
                best_rmse = rmse if has_val else math.inf
                best_epoch = epoch
                best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                stale = 0
            else:
                stale += 1
                if cfg.patience is not None and stale >= cfg.patience:
                    stopped_early = True
                    break
    assert best_state is not None
    return TrainResult(
        best_state=best_state,
        best_epoch=best_epoch,
        best_val_rmse=best_rmse if has_val else None,
        curve=curve,
        stopped_early=stopped_early,
        seconds=time.perf_counter() - t_start,
        steps=steps,
        samples=samples,
        val_seconds=val_seconds,
    )


# --------------------------------------------------------------------------------------
# the size-dependent schedule

AUTO = "auto"


@dataclass(frozen=True)
class AutoSettings:
    """What the ``"auto"`` options of a model resolve to at one size regime."""

    batch_size: int
    lr: float
    patience: int | None  # epochs without a better validation RMSE; None: no early stop


@dataclass(frozen=True)
class Schedule:
    """The training a model runs at a given training-set size (see ``resolve_schedule``)."""

    epochs: int  # rounds; each ends with a validation and one cosine step
    epoch_size: int | None  # targets per round; None: one full pass over the targets
    batch_size: int
    lr: float
    patience: int | None
    max_samples: int | None  # the budget of training samples; None: no budget
    budget_binds: bool  # True when the asked-for epochs would have exceeded the budget

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_schedule(
    n_train: int,
    *,
    epochs: int,
    epoch_size: int | None,
    batch_size: int | str,
    lr: float | str,
    patience: int | str | None,
    max_samples: int | None,
    small: AutoSettings,
    large: AutoSettings,
) -> Schedule:
    """Resolve the sample budget and the ``"auto"`` options for ``n_train`` targets.

    The asked-for training sees ``epochs * min(epoch_size or n_train, n_train)`` samples.
    While that is within ``max_samples`` (or ``max_samples`` is None) nothing changes: full
    epochs (or ``epoch_size`` rounds) as asked, and ``"auto"`` options take ``small``. When
    it exceeds the budget, the budget binds: the number of rounds stays ``epochs`` (so the
    cosine schedule and the validations keep their count) and each round is the next
    ``ceil(max_samples / epochs)`` targets of a seeded stream of shuffles (every target
    once before any repeats), so about ``max_samples`` samples are seen in all; ``"auto"``
    options take ``large``. Explicit values are kept as given in both regimes.
    """
    per_round = n_train if epoch_size is None else min(epoch_size, n_train)
    binds = max_samples is not None and epochs * per_round > max_samples
    if binds:
        assert max_samples is not None
        epoch_size = max(1, math.ceil(max_samples / epochs))
    auto = large if binds else small
    return Schedule(
        epochs=int(epochs),
        epoch_size=epoch_size,
        batch_size=auto.batch_size if batch_size == AUTO else int(batch_size),
        lr=auto.lr if lr == AUTO else float(lr),
        patience=auto.patience if patience == AUTO else patience,  # type: ignore[arg-type]
        max_samples=max_samples,
        budget_binds=bool(binds),
    )


def val_subsample(n_val: int, val_max: int | None, seed: int) -> NDArray[np.int64] | None:
    """Sorted (val_max,) int64 rows of a seeded sample without replacement of the ``n_val``
    validation queries, or None (use them all) when ``val_max`` is None or not below
    ``n_val``."""
    if val_max is None or n_val <= val_max:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_val, size=val_max, replace=False)).astype(np.int64)
