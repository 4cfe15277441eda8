"""Shared plumbing of the torch models: the device, array-backed sequence batches, one trainer.

- ``resolve_device`` is the one place that turns ``"auto" | "cpu" | "cuda" | "mps"`` into a
  ``torch.device``.
- ``SequenceData`` holds an event store as tensors on the device (plus the training target
  positions) and gathers a training batch of B targets purely by tensor indexing: for target
  row ``p`` of a user whose rows start at ``s``, the history rows are ``p - L .. p - 1`` and
  a column is real where its row is ``>= s`` (left padding, the notebook's layout; the newest
  event is column ``L - 1``). No per-sample ``Dataset.__getitem__``, no Python list per batch.
- ``history_batch`` does the same for a ``HistoryBatch`` (validation and test queries).
- ``train_model`` is the shared loop: AdamW, cosine schedule over the epochs, gradient
  clipping, seeded shuffling with a local ``torch.Generator``, validation RMSE/MAE (original
  scale) every epoch, the best-validation state kept, optional early stopping, a learning
  curve, a loud error on a non-finite loss, optional bf16 autocast on CUDA, and a transient
  rich progress bar.
- ``resolve_schedule`` is the size rule the models share: a budget of training samples
  (``max_samples``) that leaves the asked-for epochs alone while they fit in it (every
  notebook-sized split) and otherwise keeps the number of epochs but makes each one a round
  of ``max_samples / epochs`` targets; ``"auto"`` batch size, learning rate and patience
  resolve to a model's small-size values or, once the budget binds, its large-size ones.
  ``val_subsample`` caps the validation queries read for model selection (``val_max``).
- ``TorchSequencePredictor`` is the adapter plumbing the torch models share (fit/predict over
  ``TrainSet``/``HistoryBatch``, fallbacks, determinism, the resolved schedule in
  ``fit_info_``).

Items without an embedding: the notebook dropped every rating of a movie without an
embedding before building sequences. We do the same, vectorised: such events are removed
from the fitting store and from query histories (so the window holds the last L *embedded*
events), training targets on such items are skipped, and a query whose target item has no
embedding gets the fallback and is flagged.

Determinism: the module's initialisation and dropout draw from torch's global generator,
so the adapter runs them inside ``seeded(seed)`` (``torch.random.fork_rng`` + ``manual_seed``),
which restores the global state afterwards; shuffling uses a local ``torch.Generator``. On
CPU the same seed gives bit-identical predictions. On CUDA some kernels (index backward,
attention) are not deterministic; we do not force ``torch.use_deterministic_algorithms``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from predictors.base import BasePredictor
from predictors.types import EventStore, HistoryBatch, RatingScale, TrainSet, last_k

__all__ = [
    "AUTO",
    "AutoSettings",
    "Schedule",
    "SeqBatch",
    "SequenceData",
    "TorchSequencePredictor",
    "TrainConfig",
    "TrainResult",
    "ValSet",
    "filter_batch",
    "filter_store",
    "history_batch",
    "normalised_embeddings",
    "resolve_device",
    "resolve_schedule",
    "seeded",
    "train_model",
    "val_subsample",
]

_DEVICES = ("auto", "cpu", "cuda", "mps")
# queries per forward pass when predicting: on CPU 1024 runs the attention model 1.1x and the
# transformer 1.4x faster than 4096 (smaller intermediates stay in cache), and bounds the
# (B, L, E) gathered embeddings to ~37 MB
EVAL_BATCH = 1024


# --------------------------------------------------------------------------------------
# device


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu. ``"cuda"``/``"mps"`` raise ValueError when
    that backend is not available; any other name raises ValueError listing the known ones.
    ``"cuda:1"`` selects a GPU by index."""
    if isinstance(device, torch.device):
        return device
    name = str(device).strip().lower()
    kind = name.split(":", 1)[0]
    if kind not in _DEVICES:
        raise ValueError(f"unknown device '{device}'; known: {', '.join(_DEVICES)}")
    mps_ok = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if mps_ok:
            return torch.device("mps")
        return torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available (use auto or cpu)")
    if kind == "mps" and not mps_ok:
        raise ValueError("device 'mps' requested but MPS is not available (use auto or cpu)")
    return torch.device(name)


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global generators seeded by ``seed``, then restore them
    (``torch.random.fork_rng``), so module init and dropout are reproducible without
    touching the caller's random state."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


def normalised_embeddings(vectors: NDArray[np.floating], device: torch.device) -> Tensor:
    """(n_items, D) float32 L2-normalised rows on ``device`` (zero rows stay zero), as the
    notebook's ``embeddings / (norm + 1e-12)``."""
    v = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(v, axis=1, keepdims=True)
    return torch.from_numpy(np.ascontiguousarray(v / (norms + 1e-12))).to(device)


# --------------------------------------------------------------------------------------
# batches


@dataclass(frozen=True)
class SeqBatch:
    """B left-padded history windows of length L, with their targets, on one device."""

    hist_item: Tensor  # (B, L) int64 item codes, 0 where padded
    hist_rating: Tensor  # (B, L) float32 ratings scaled to [0, 1], 0 where padded
    mask: Tensor  # (B, L) bool, True on real events; column L - 1 is the newest
    target_item: Tensor  # (B,) int64
    target_rating: Tensor | None = None  # (B,) float32 in [0, 1]; None for queries
    # (B, L) float32 seconds from each history event to the target time (>= 0), 0 where
    # padded; None when the batch was built without times
    hist_gap: Tensor | None = None

    def __len__(self) -> int:
        return int(self.target_item.shape[0])

    def slice(self, lo: int, hi: int) -> SeqBatch:
        tr = None if self.target_rating is None else self.target_rating[lo:hi]
        gap = None if self.hist_gap is None else self.hist_gap[lo:hi]
        return SeqBatch(
            self.hist_item[lo:hi],
            self.hist_rating[lo:hi],
            self.mask[lo:hi],
            self.target_item[lo:hi],
            tr,
            gap,
        )

    def index(self, idx: Tensor) -> SeqBatch:
        tr = None if self.target_rating is None else self.target_rating[idx]
        gap = None if self.hist_gap is None else self.hist_gap[idx]
        return SeqBatch(
            self.hist_item[idx],
            self.hist_rating[idx],
            self.mask[idx],
            self.target_item[idx],
            tr,
            gap,
        )


def filter_store(
    store: EventStore, keep: NDArray[np.bool_]
) -> tuple[EventStore, NDArray[np.int64]]:
    """Drop the events where ``keep`` (N,) is False. Returns the new store and (N,) int64
    the new row of every old row (-1 for dropped rows). Vectorised."""
    keep = np.asarray(keep, dtype=bool)
    if keep.all():
        return store, np.arange(store.n_events, dtype=np.int64)
    user = store.user()
    counts = np.bincount(user[keep], minlength=store.n_users)
    offsets = np.zeros(store.n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    new_row = np.where(keep, np.cumsum(keep) - 1, -1).astype(np.int64)
    new = EventStore(
        user_offsets=offsets,
        item=store.item[keep],
        rating=store.rating[keep],
        timestamp=store.timestamp[keep],
    )
    return new, new_row


def filter_batch(batch: HistoryBatch, keep_item: NDArray[np.bool_] | None) -> HistoryBatch:
    """``batch`` without the history rows whose item is not in ``keep_item`` (n_items,)."""
    if keep_item is None or batch.hist_item.size == 0:
        return batch
    keep = keep_item[batch.hist_item]
    if keep.all():
        return batch
    counts = np.bincount(batch.hist_query()[keep], minlength=len(batch))
    offsets = np.zeros(len(batch) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return HistoryBatch(
        user=batch.user,
        target_item=batch.target_item,
        target_time=batch.target_time,
        hist_offsets=offsets,
        hist_item=batch.hist_item[keep],
        hist_rating=batch.hist_rating[keep],
        hist_timestamp=batch.hist_timestamp[keep],
    )


def history_batch(
    batch: HistoryBatch,
    window: int,
    scale: RatingScale,
    device: torch.device,
    *,
    keep_item: NDArray[np.bool_] | None = None,
) -> SeqBatch:
    """The last ``window`` history events of every query as a left-padded ``SeqBatch`` on
    ``device`` (history rows whose item is not in ``keep_item`` are dropped first)."""
    batch = filter_batch(batch, keep_item)
    rows, mask = last_k(batch, window)  # (B, L) each
    if batch.hist_item.size:
        item = np.where(mask, batch.hist_item[rows], 0).astype(np.int64)
        rating = np.where(mask, scale.to_unit(batch.hist_rating)[rows], 0.0).astype(np.float32)
        dt = batch.target_time[:, None] - batch.hist_timestamp[rows]  # (B, L) int64
        gap = np.where(mask, np.maximum(dt, 0), 0).astype(np.float32)
    else:
        item = np.zeros(rows.shape, dtype=np.int64)
        rating = np.zeros(rows.shape, dtype=np.float32)
        gap = np.zeros(rows.shape, dtype=np.float32)
    return SeqBatch(
        hist_item=torch.from_numpy(item).to(device),
        hist_rating=torch.from_numpy(rating).to(device),
        mask=torch.from_numpy(mask).to(device),
        target_item=torch.from_numpy(batch.target_item.astype(np.int64)).to(device),
        hist_gap=torch.from_numpy(gap).to(device),
    )


class SequenceData:
    """An event store as tensors on the device, plus the training targets (rows of it).

    ``gather(idx)`` returns the ``SeqBatch`` of targets ``idx`` (B,) by pure indexing::

        rows = target_pos[:, None] - L + arange(L)      # (B, L)
        mask = rows >= target_start[:, None]           # same user, left padding
    """

    def __init__(
        self,
        store: EventStore,
        target_pos: NDArray[np.integer],
        scale: RatingScale,
        window: int,
        device: torch.device,
    ) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        target_pos = np.asarray(target_pos, dtype=np.int64)
        user = store.user()
        self.window = int(window)
        self.device = device
        self.item = torch.from_numpy(store.item.astype(np.int64)).to(device)  # (N,) int64
        self.rating = torch.from_numpy(scale.to_unit(store.rating)).to(device)  # (N,) float32
        self.timestamp = torch.from_numpy(store.timestamp.astype(np.int64)).to(device)  # (N,)
        self.target_pos = torch.from_numpy(target_pos).to(device)  # (T,) int64
        start = store.user_offsets[:-1][user[target_pos]] if target_pos.size else target_pos
        self.target_start = torch.from_numpy(np.asarray(start, dtype=np.int64)).to(device)
        self._cols = torch.arange(-self.window, 0, device=device)  # (L,)

    def __len__(self) -> int:
        return int(self.target_pos.shape[0])

    @classmethod
    def from_train(
        cls,
        train: TrainSet,
        window: int,
        device: torch.device,
        *,
        keep_item: NDArray[np.bool_] | None = None,
        min_history: int = 0,
        targets: str = "split",
    ) -> tuple[SequenceData, dict[str, int]]:
        """Training targets of ``train`` over ``train.events``: the split's ``train_pos``
        (``targets="split"``) or every event of ``train.events`` (``"all"``; each with the
        user's earlier events as history: all of them precede the validation targets).
        Events of items outside ``keep_item`` are dropped first (targets on them are
        skipped); targets with fewer than ``min_history`` remaining history events are
        skipped. Returns the data and the counts of skipped targets."""
        if targets == "split":
            pos = np.asarray(train.train_pos, dtype=np.int64)
        elif targets == "all":
            pos = np.arange(train.events.n_events, dtype=np.int64)
        else:
            raise ValueError(f"targets must be 'split' or 'all', got {targets!r}")
        store = train.events
        n0 = int(pos.size)
        skipped_item = 0
        if keep_item is not None:
            keep = keep_item[store.item]
            store, new_row = filter_store(store, keep)
            pos = new_row[pos]
            skipped_item = int((pos < 0).sum())
            pos = pos[pos >= 0]
        skipped_hist = 0
        if min_history > 0 and pos.size:
            start = store.user_offsets[:-1][store.user()[pos]]
            ok = pos - start >= min_history
            skipped_hist = int((~ok).sum())
            pos = pos[ok]
        info = {
            "n_targets": n0,
            "skipped_no_embedding": skipped_item,
            "skipped_short_history": skipped_hist,
        }
        return cls(store, pos, train.scale, window, device), info

    def gather(self, idx: Tensor) -> SeqBatch:
        """The ``SeqBatch`` of training targets ``idx`` (B,) int64 (device tensor)."""
        pos = self.target_pos[idx]  # (B,)
        rows = pos[:, None] + self._cols  # (B, L)
        mask = rows >= self.target_start[idx][:, None]  # (B, L)
        rows = torch.where(mask, rows, torch.zeros_like(rows))
        hist_item = torch.where(mask, self.item[rows], torch.zeros_like(rows))
        hist_rating = self.rating[rows] * mask
        gap = (self.timestamp[pos][:, None] - self.timestamp[rows]).clamp_min(0) * mask
        return SeqBatch(hist_item, hist_rating, mask, self.item[pos], self.rating[pos], gap.float())


# --------------------------------------------------------------------------------------
# training


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
    progress: bool = True  # transient rich bar; off when the console is not a terminal
    console: Any = None  # rich Console for the bar; None: a new Console(stderr=True)
    eval_batch_size: int = EVAL_BATCH
    desc: str = "train"
    # targets per epoch: None = all of them (a fresh permutation each epoch); k = the next k
    # of a seeded stream of permutations, so successive epochs cover every target before
    # any repeats
    epoch_size: int | None = None


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
    err = pred - val.truth.astype(np.float64)
    return float(np.sqrt(np.mean(err**2))), float(np.mean(np.abs(err)))


def _make_progress(enabled: bool, console: Any = None) -> Any:
    """A transient rich Progress on ``console`` (default: stderr), or None when disabled or
    the console is not a terminal (pytest, CliRunner, pipes). Pass the caller's console when
    it shows its own live display: rich nests live displays of the same console."""
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console if console is not None else Console(stderr=True)
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


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
    progress = _make_progress(cfg.progress, cfg.console)
    order = _epoch_orders(n, cfg.epoch_size, gen)
    n_batches = math.ceil(min(n, cfg.epoch_size or n) / cfg.batch_size)
    ctx = progress if progress is not None else contextlib.nullcontext()
    with ctx:
        task = None
        if progress is not None:
            task = progress.add_task(cfg.desc, total=n_batches, loss="-")
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            lr = float(opt.param_groups[0]["lr"])
            module.train()
            perm = next(order).to(device)
            loss_sum = torch.zeros((), device=device)
            seen = 0
            if progress is not None:
                progress.reset(
                    task, total=n_batches, description=f"{cfg.desc} {epoch}/{cfg.epochs}"
                )
            n_epoch = int(perm.shape[0])
            for b, lo in enumerate(range(0, n_epoch, cfg.batch_size)):
                idx = perm[lo : lo + cfg.batch_size]
                batch = data.gather(idx)
                with _autocast(device, cfg.bf16):
                    pred = forward(batch)
                loss = torch.mean((pred.float() - batch.target_rating) ** 2)  # type: ignore[operator]
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.clip is not None:
                    torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.clip)
                opt.step()
                steps += 1
                loss_sum += loss.detach() * idx.shape[0]
                seen += int(idx.shape[0])
                if (b + 1) % sync_every == 0 or lo + cfg.batch_size >= n_epoch:
                    running = float(loss_sum) / seen
                    if not math.isfinite(running):
                        raise FloatingPointError(
                            f"{cfg.desc}: non-finite training loss ({running}) at epoch {epoch}, "
                            f"step {b + 1}; try a lower lr or disable bf16"
                        )
                    if progress is not None:
                        progress.update(task, completed=b + 1, loss=f"{running:.4f}")
            train_loss = float(loss_sum) / seen
            samples += seen
            sched.step()
            row: dict[str, Any] = {"epoch": epoch, "train_loss": train_loss}
            if has_val:
                assert val is not None
                t_val = time.perf_counter()
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


# --------------------------------------------------------------------------------------
# the shared adapter


def _check_int(model: str, key: str, v: Any, lo: int, *, none_ok: bool = False) -> None:
    if v is None and none_ok:
        return
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise ValueError(f"{model}: option {key} must be an integer >= {lo}, got {v!r}")


def _check_float(model: str, key: str, v: Any, lo: float, hi: float = math.inf) -> None:
    if isinstance(v, bool) or not isinstance(v, int | float) or not (lo <= v <= hi):
        raise ValueError(f"{model}: option {key} must be a number in [{lo}, {hi}], got {v!r}")


class TorchSequencePredictor(BasePredictor):
    """Fit/predict plumbing of the torch models over a window of the history.

    Subclasses store their options in ``__init__`` (calling ``_check_common``) and
    implement ``_build(train, emb_dim)`` -> module and ``_forward(module, emb, batch)`` ->
    (B,) predictions in [0, 1] units. ``needs_history``: queries with an empty (embedded)
    history cannot be predicted and fall back. The fallback is the mean of the training
    events (``mean_``); a target item without an embedding always falls back.
    """

    uses_torch: ClassVar[bool] = True
    uses_embeddings: ClassVar[bool] = True
    needs_history: ClassVar[bool] = True
    # a caller showing its own rich live display may set this to its Console so that the
    # training bar nests inside it (not a hyper-parameter: not in get_config)
    console: Any = None
    # set by subclasses' __init__
    epochs: int
    lr: float | str  # a number or "auto"
    weight_decay: float
    batch_size: int | str  # an integer or "auto"
    dropout: float
    patience: int | str | None  # an integer, None (no early stopping) or "auto"
    max_samples: int | None  # budget of training samples (see resolve_schedule)
    val_max: int | None  # validation queries used for model selection, at most
    window: int | None
    seed: int | None
    device: str
    bf16: bool
    progress: bool
    eta_min: float
    clip: float | None
    # what "auto" resolves to while the sample budget does not bind / when it binds
    auto_small: ClassVar[AutoSettings]
    auto_large: ClassVar[AutoSettings]
    # overridden by subclasses that take them as options
    targets: str = "split"  # training targets: the split's ("split") or every event ("all")
    epoch_size: int | None = None  # targets per epoch (None: all); see TrainConfig

    def _check_common(self) -> None:
        m = self.name
        _check_int(m, "epochs", self.epochs, 1)
        if self.batch_size != AUTO:
            _check_int(m, "batch_size", self.batch_size, 1)
        if self.patience != AUTO:
            _check_int(m, "patience", self.patience, 1, none_ok=True)
        _check_int(m, "max_samples", self.max_samples, 1, none_ok=True)
        _check_int(m, "val_max", self.val_max, 1, none_ok=True)
        _check_int(m, "window", self.window, 1, none_ok=True)
        _check_int(m, "seed", self.seed, 0, none_ok=True)
        _check_int(m, "epoch_size", self.epoch_size, 1, none_ok=True)
        if self.targets not in ("split", "all"):
            raise ValueError(f"{m}: option targets must be 'split' or 'all', got {self.targets!r}")
        if self.lr != AUTO:
            _check_float(m, "lr", self.lr, 1e-12, 10.0)
        _check_float(m, "weight_decay", self.weight_decay, 0.0)
        _check_float(m, "dropout", self.dropout, 0.0, 0.99)
        _check_float(m, "eta_min", self.eta_min, 0.0)
        if self.clip is not None:
            _check_float(m, "clip", self.clip, 1e-12)
        if not isinstance(self.device, str | torch.device):
            raise ValueError(f"{m}: option device must be one of {', '.join(_DEVICES)}")
        resolve_device(self.device)  # fails early on an unknown or unavailable device
        for key in ("bf16", "progress"):
            if not isinstance(getattr(self, key), bool):
                raise ValueError(f"{m}: option {key} must be true or false")

    # -- hooks -------------------------------------------------------------------------
    def _build(self, train: TrainSet, emb_dim: int) -> nn.Module:  # pragma: no cover
        raise NotImplementedError

    def _forward(self, module: nn.Module, emb: Tensor, batch: SeqBatch) -> Tensor:
        raise NotImplementedError  # pragma: no cover

    def _no_decay(self, name: str, p: Tensor) -> bool:
        return False  # the notebook decays every parameter

    # -- fit / predict -----------------------------------------------------------------
    def _fit(self, train: TrainSet) -> None:
        if train.embeddings is None:
            raise ValueError(f"{self.name} needs item embeddings: pass --embedding ...")
        if train.embeddings.vectors.shape[0] != train.n_items:
            raise ValueError(
                f"{self.name}: embedding has {train.embeddings.vectors.shape[0]} rows for "
                f"{train.n_items} items"
            )
        if train.events.n_events == 0:
            raise ValueError(f"{self.name}: cannot fit on an empty training set")
        device = resolve_device(self.device)
        window = int(self.window or train.meta.get("max_history", 30))
        seed = int(train.seed if self.seed is None else self.seed)
        keep_item = np.asarray(train.embeddings.present, dtype=bool)
        emb = normalised_embeddings(train.embeddings.vectors, device)
        data, skipped = SequenceData.from_train(
            train,
            window,
            device,
            keep_item=keep_item,
            min_history=int(self.needs_history),
            targets=self.targets,
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
            desc=self.name,
            console=self.console,
            epoch_size=schedule.epoch_size,
        )
        with seeded(seed, device):
            module = self._build(train, int(emb.shape[1])).to(device)
            n_params = sum(p.numel() for p in module.parameters())

            def fwd(b: SeqBatch) -> Tensor:
                return self._forward(module, emb, b)

            result = train_model(module, fwd, data, val, train.scale, cfg, no_decay=self._no_decay)
        module.load_state_dict(result.best_state)
        module.eval()
        self.module_ = module
        self.learning_curve_ = result.curve
        if result.stopped_early:
            stop = f"no better validation RMSE in {schedule.patience} epochs"
        elif schedule.budget_binds:
            stop = "sample budget spent"
        else:
            stop = "all epochs run"
        self.fit_info_ = {
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
            "val_fallbacks": 0 if val is None else int(len(vb) - val.rows.size),
        }

    def schedule_for(self, n_train: int) -> Schedule:
        """The schedule this model's options resolve to at ``n_train`` training targets
        (see ``resolve_schedule``)."""
        return resolve_schedule(
            n_train,
            epochs=self.epochs,
            epoch_size=self.epoch_size,
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
        chunk = 8192
        for lo in range(0, len(batch), chunk):
            sub = batch.take(np.arange(lo, min(lo + chunk, len(batch))))
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
