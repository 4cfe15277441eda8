"""pytest-benchmark: training throughput of the ``attention`` model, three ways, in one run.

1. ``trainer``: ``predictors.torch.trainer.train_model`` (batches gathered by tensor indexing
   from the event store on the device), one epoch, no validation;
2. ``notebook``: a faithful copy of the research notebook's per-sample ``RatingDataset`` +
   ``DataLoader`` pipeline and its training loop (same model, same optimiser);
3. ``floor``: the pure compute floor, forward + backward + clip + AdamW step on batches
   pre-built as tensors before timing.

All three train the same module from the same initial weights on the same targets. The
machine may be shared, so the three are interleaved round by round and the median of the
rounds is reported. Ratios are ``floor_samples_per_s / x_samples_per_s`` (1.0 = as fast as
the floor). Also measured: predict throughput (queries/s) of ``attention`` and
``transformer``. Everything is printed and written atomically to
``results/bench_train.json``.

Run with ``nox -s bench`` or ``pytest -m benchmark tests/benchmarks/bench_train.py -s``;
``RATINGBENCH_BENCH_DEVICES=cpu,cuda`` chooses the devices (default: cpu, plus cuda when
available), ``RATINGBENCH_BENCH_ROUNDS`` the rounds (default 3).

``test_scale_training`` trains both torch models with their default settings (the sample
budget and the large-size ``"auto"`` values bind there) on the full split's shape at
``RATINGBENCH_BENCH_USERS`` synthetic users (default 20,000: one tenth; 200,000 is the full
split; ``RATINGBENCH_BENCH_MAX_SAMPLES`` sets a smaller budget for a quicker measurement),
and predicts every test query (timed only; no test metric is computed). Its
baseline, measured in the same process just before, is one epoch of the notebook's
``Dataset``/``DataLoader`` loop over the first ``NB_TARGETS`` training targets: each model's
training samples/s (its per-epoch validations timed apart) is reported as a ratio to it,
with fit and predict wall and CPU seconds, the resolved schedule, the validation RMSE it
selected on, and the peak RSS of the process.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import notebook_pipeline  # tests/benchmarks/, on sys.path under pytest
import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader

from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams, make_split
from bench.fileio import atomic_write
from predictors.attention import Attention, AttentionConfig, RatingPredictor
from predictors.torch.batches import SequenceData, normalised_embeddings
from predictors.torch.device import seeded
from predictors.torch.trainer import TrainConfig, train_model
from predictors.transformer import Transformer
from predictors.types import TrainSet

pytestmark = pytest.mark.benchmark  # deselected from the default suite; `nox -s bench`

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "results" / "bench_train.json"
N_USERS = 2000  # the notebook's quick-test size: 10,000 training targets
WINDOW = 30
BATCH = 128
ROUNDS = int(os.environ.get("RATINGBENCH_BENCH_ROUNDS", "3"))


def _devices() -> list[str]:
    env = os.environ.get("RATINGBENCH_BENCH_DEVICES")
    if env:
        return [d.strip() for d in env.split(",") if d.strip()]
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# --------------------------------------------------------------------------------------
# the notebook's pipeline, copied (comments translated); only the data source differs


# the notebook's per-sample Dataset, one copy shared with the scale benchmarks
RatingDataset = notebook_pipeline.RatingDataset


def denormalize_rating(rating, rating_min=0.5, rating_max=5.0):
    return rating * (rating_max - rating_min) + rating_min


def notebook_epoch(model, train_loader, criterion, optimizer, device) -> None:
    """One epoch of the notebook's training loop (tqdm bar left out)."""
    model.train()
    train_loss = 0
    train_preds = []
    train_targets = []
    for batch in train_loader:
        (hist_emb, hist_ratings, mask, target_emb, target_rating, target_rating_orig) = (
            notebook_pipeline.batch_on(batch, device)
        )

        optimizer.zero_grad()
        pred = model(hist_emb, hist_ratings, mask, target_emb)
        loss = criterion(pred, target_rating)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

        train_loss += loss.item()
        pred_orig = denormalize_rating(pred.detach().cpu().numpy())
        train_preds.extend(pred_orig)
        train_targets.extend(target_rating_orig.numpy())


# --------------------------------------------------------------------------------------
# setup


@pytest.fixture(scope="module")
def train() -> TrainSet:
    loaded = load_source(DataSource(dataset="synthetic", users=N_USERS, data_seed=0))
    split = make_split(loaded.interactions, SplitParams(samples_per_user=5, max_history=WINDOW))
    return split.train_set(loaded.interactions, embeddings=loaded.embeddings, seed=0)


def _notebook_data(train: TrainSet, limit: int | None = None) -> tuple[list[Any], np.ndarray]:
    """The notebook's list of (user, [(movie, rating), ...], movie, rating) tuples (built
    outside the timed region; the first ``limit`` training targets) and its normalised
    embedding matrix."""
    ev = train.events
    items, ratings = ev.item.tolist(), ev.rating.tolist()
    data = []
    users, pos = train.train_user[:limit].tolist(), train.train_pos[:limit].tolist()
    for u, p in zip(users, pos, strict=True):
        s = max(int(ev.user_offsets[u]), p - WINDOW)
        hist = list(zip(items[s:p], ratings[s:p], strict=True))
        data.append((u, hist, items[p], ratings[p]))
    v = train.embeddings.vectors
    return data, v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)


def _write_json(payload: dict[str, Any]) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    old: dict[str, Any] = {}
    if OUT.exists():
        try:
            old = json.loads(OUT.read_text())
        except (OSError, ValueError):
            old = {}
    old.update(payload)
    atomic_write(OUT, lambda tmp: tmp.write_text(json.dumps(old, indent=2, sort_keys=True)))


def _record(key: str, res: dict[str, Any]) -> None:
    """Keep ``res``, with the environment, under ``key`` in ``results/bench_train.json``."""
    _write_json({key: {**res, "env": _env()}})


def _measure_once(benchmark: Any, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """``run()`` once under pytest-benchmark; its result also goes to the extra info."""
    res = benchmark.pedantic(run, rounds=1, iterations=1)
    benchmark.extra_info.update(res)
    return res


def _env() -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "rounds": ROUNDS,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


# --------------------------------------------------------------------------------------
# the comparison


def compare_training(train: TrainSet, device_name: str, rounds: int = ROUNDS) -> dict[str, Any]:
    device = torch.device(device_name)
    emb = normalised_embeddings(train.embeddings.vectors, device)
    data, _ = SequenceData.from_train(train, WINDOW, device, min_history=1)
    n = len(data)
    with seeded(0, device):
        init = RatingPredictor(AttentionConfig(emb_dim=emb.shape[1])).to(device).state_dict()
    init = {k: v.clone() for k, v in init.items()}

    def fresh() -> nn.Module:
        m = RatingPredictor(AttentionConfig(emb_dim=emb.shape[1])).to(device)
        m.load_state_dict(init)
        return m

    # notebook pipeline inputs (built once, untimed)
    nb_data, nb_emb = _notebook_data(train)
    nb_loader = DataLoader(
        RatingDataset(nb_data, {i: i for i in range(train.n_items)}, nb_emb, WINDOW),
        batch_size=BATCH,
        shuffle=True,
        num_workers=0,
    )
    # floor inputs: every batch pre-gathered as tensors (untimed)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(device)
    floor_batches = []
    for lo in range(0, n, BATCH):
        b = data.gather(perm[lo : lo + BATCH])
        he = (emb[b.hist_item] * b.mask.unsqueeze(-1)).contiguous()
        floor_batches.append((he, b.hist_rating, b.mask, emb[b.target_item], b.target_rating))

    def run_trainer() -> None:
        m = fresh()

        def fwd(b):
            return m(
                emb[b.hist_item] * b.mask.unsqueeze(-1), b.hist_rating, b.mask, emb[b.target_item]
            )

        cfg = TrainConfig(epochs=1, batch_size=BATCH, progress=False)
        train_model(m, fwd, data, None, train.scale, cfg)

    def run_notebook() -> None:
        m = fresh()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
        notebook_epoch(m, nb_loader, nn.MSELoss(), opt, device)

    def run_floor() -> None:
        m = fresh()
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
        for he, hr, mk, te, y in floor_batches:
            loss = torch.mean((m(he, hr, mk, te) - y) ** 2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
            opt.step()

    runs = {"floor": run_floor, "trainer": run_trainer, "notebook": run_notebook}
    times: dict[str, list[float]] = {k: [] for k in runs}
    with seeded(0, device):
        run_floor()  # warm-up (allocator, kernels)
        for _ in range(rounds):
            for name, fn in runs.items():  # interleaved: contention hits all alike
                _sync(device)
                t0 = time.perf_counter()
                fn()
                _sync(device)
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    sps = {k: n / v for k, v in med.items()}
    return {
        "device": device_name,
        "n_samples": n,
        "batch_size": BATCH,
        "seconds_per_epoch": med,
        "seconds_all_rounds": times,
        "samples_per_s": sps,
        "trainer_vs_floor": med["trainer"] / med["floor"],
        "notebook_vs_floor": med["notebook"] / med["floor"],
        "notebook_vs_trainer": med["notebook"] / med["trainer"],
    }


def predict_throughput(train: TrainSet, device_name: str, rounds: int = ROUNDS) -> dict[str, Any]:
    """Queries/s of predict() over the validation queries repeated to ~20k (weights after
    one epoch: the speed does not depend on them)."""
    vb = train.val.batch
    reps = max(1, 20_000 // len(vb))
    batch = vb.take(np.tile(np.arange(len(vb)), reps))
    out: dict[str, Any] = {"n_queries": len(batch)}
    for cls in (Attention, Transformer):
        m = cls(epochs=1, device=device_name, progress=False, seed=0).fit(train)
        m.predict(batch.take(np.arange(256)))  # warm-up
        ts = []
        for _ in range(rounds):
            _sync(torch.device(device_name))
            t0 = time.perf_counter()
            m.predict(batch)
            _sync(torch.device(device_name))
            ts.append(time.perf_counter() - t0)
        out[cls.name] = {"queries_per_s": len(batch) / statistics.median(ts), "seconds": ts}
    return out


@pytest.mark.parametrize("device_name", _devices())
def test_train_throughput(benchmark: Any, train: TrainSet, device_name: str) -> None:
    res = _measure_once(benchmark, lambda: compare_training(train, device_name))
    print(
        f"\n[{device_name}] samples/s: "
        + ", ".join(f"{k} {v:,.0f}" for k, v in res["samples_per_s"].items())
        + f" | trainer/floor {res['trainer_vs_floor']:.2f}x, "
        f"notebook/floor {res['notebook_vs_floor']:.2f}x, "
        f"notebook/trainer {res['notebook_vs_trainer']:.2f}x"
    )
    _record(f"train_{device_name}", res)
    assert res["trainer_vs_floor"] > 0


@pytest.mark.parametrize("device_name", _devices())
def test_predict_throughput(benchmark: Any, train: TrainSet, device_name: str) -> None:
    res = _measure_once(benchmark, lambda: predict_throughput(train, device_name))
    print(
        f"\n[{device_name}] predict queries/s: "
        + ", ".join(f"{k} {res[k]['queries_per_s']:,.0f}" for k in ("attention", "transformer"))
    )
    _record(f"predict_{device_name}", res)
    assert res["attention"]["queries_per_s"] > 0


def test_validation_quality(benchmark: Any, train: TrainSet) -> None:
    """Validation RMSE (never test) and fit time of both torch models with their default
    settings against the baselines, on the notebook-sized synthetic split. Slow on CPU
    (the attention model's 30 epochs)."""
    from predictors.baselines import Bias, GlobalMean, RecentK, UserMean

    truth = train.val.rating.astype(np.float64)

    def score() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for m in (
            GlobalMean(),
            UserMean(),
            RecentK(k=5),
            Bias(),
            Attention(progress=False),
            Transformer(progress=False),
        ):
            t0 = time.perf_counter()
            m.fit(train)
            fit_s = time.perf_counter() - t0
            p = m.predict(train.val.batch)
            out[m.name] = {
                "val_rmse": float(np.sqrt(np.mean((p - truth) ** 2))),
                "val_mae": float(np.mean(np.abs(p - truth))),
                "fit_seconds": fit_s,
                **(
                    {
                        "best_epoch": m.fit_report_.settings["best_epoch"],
                        "epochs_run": m.fit_report_.settings["epochs_run"],
                        "device": m.fit_report_.settings["device"],
                    }
                    if m.capabilities.torch
                    else {}
                ),
            }
        return out

    res = _measure_once(benchmark, score)
    for k, v in res.items():
        print(
            f"\n{k:12s} val RMSE {v['val_rmse']:.4f}  MAE {v['val_mae']:.4f}  "
            f"fit {v['fit_seconds']:.1f}s"
        )
    _record("quality", res)
    assert res["transformer"]["val_rmse"] < res["global-mean"]["val_rmse"]


# --------------------------------------------------------------------------------------
# full-scale-shaped training


SCALE_USERS = int(os.environ.get("RATINGBENCH_BENCH_USERS", "20000"))
# the models' sample budget; unset: their default (a smaller one gives a quicker measurement)
SCALE_MAX_SAMPLES = os.environ.get("RATINGBENCH_BENCH_MAX_SAMPLES")
NB_TARGETS = 20_000  # targets of the notebook-loop baseline epoch


def notebook_samples_per_s(train: TrainSet, device: torch.device) -> dict[str, float]:
    """One epoch of the notebook's DataLoader loop over the first ``NB_TARGETS`` targets."""
    nb_data, nb_emb = _notebook_data(train, NB_TARGETS)
    loader = DataLoader(
        RatingDataset(nb_data, {i: i for i in range(train.n_items)}, nb_emb, WINDOW),
        batch_size=BATCH,
        shuffle=True,
        num_workers=0,
    )
    with seeded(0, device):
        m = RatingPredictor(AttentionConfig(emb_dim=nb_emb.shape[1])).to(device)
        opt = torch.optim.AdamW(m.parameters(), lr=1e-3, weight_decay=0.01)
        _sync(device)
        t0, c0 = time.perf_counter(), time.process_time()
        notebook_epoch(m, loader, nn.MSELoss(), opt, device)
        _sync(device)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {
        "samples": len(nb_data),
        "seconds": wall,
        "cpu_seconds": cpu,
        "samples_per_s": len(nb_data) / wall,
    }


def scale_training(users: int, device_name: str) -> dict[str, Any]:
    """Fit + predict of both torch models at ``users`` synthetic users (the full split's
    shape), against the notebook loop's samples/s measured first in the same process."""
    from bench.runner import PeakRSS

    device = torch.device(device_name)
    loaded = load_source(DataSource(dataset="synthetic", users=users, data_seed=0))
    inter = loaded.interactions
    split = make_split(inter, SplitParams(samples_per_user=5, max_history=WINDOW))
    train = split.train_set(inter, embeddings=loaded.embeddings, seed=0)
    out: dict[str, Any] = {
        "users": users,
        "counts": split.counts(),
        "max_samples": SCALE_MAX_SAMPLES and int(SCALE_MAX_SAMPLES),
    }
    nb = notebook_samples_per_s(train, device)
    out["notebook"] = nb
    for cls in (Attention, Transformer):
        with PeakRSS() as mem:
            t0, c0 = time.perf_counter(), time.process_time()
            opts: dict[str, Any] = {"device": device_name, "progress": False, "seed": 0}
            if SCALE_MAX_SAMPLES:
                opts["max_samples"] = int(SCALE_MAX_SAMPLES)
            m = cls(**opts).fit(train)
            fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
            t0, c0 = time.perf_counter(), time.process_time()
            n_pred = 0
            for _, batch in split.test_batches(inter, 50_000):
                n_pred += len(m.predict(batch))  # timed only: no test metric is computed
            pred_s, pred_cpu = time.perf_counter() - t0, time.process_time() - c0
        fi = m.fit_report_.settings
        # training steps only: the per-epoch validations are timed apart (val_seconds)
        sps = fi["samples_seen"] / (fi["train_seconds"] - fi["val_seconds"])
        out[cls.name] = {
            "fit_seconds": fit_s,
            "fit_cpu_seconds": fit_cpu,
            "predict_seconds": pred_s,
            "predict_cpu_seconds": pred_cpu,
            "predict_queries": n_pred,
            "predict_queries_per_s": n_pred / pred_s,
            "train_samples_per_s": sps,
            "samples_per_s_vs_notebook": sps / nb["samples_per_s"],
            # what the notebook's loop would need for the same samples (training only)
            "notebook_equivalent_seconds": fi["samples_seen"] / nb["samples_per_s"],
            "peak_rss_mb": mem.peak,
            "rss_start_mb": mem.start,
            **{
                k: fi[k]
                for k in (
                    "n_train",
                    "batch_size",
                    "lr",
                    "patience",
                    "epochs",
                    "epoch_size",
                    "budget_binds",
                    "epochs_run",
                    "samples_seen",
                    "best_epoch",
                    "best_val_rmse",
                    "stop_reason",
                    "train_seconds",
                    "val_seconds",
                    "n_val_used",
                )
            },
        }
    return out


def test_scale_training(benchmark: Any) -> None:
    device_name = _devices()[-1]
    res = _measure_once(benchmark, lambda: scale_training(SCALE_USERS, device_name))
    nb = res["notebook"]
    print(f"\n[{device_name}] {SCALE_USERS:,} users, {res['counts']['train']:,} training targets")
    print(f"notebook loop: {nb['samples_per_s']:,.0f} samples/s")
    for name in ("attention", "transformer"):
        r = res[name]
        print(
            f"{name:12s} {r['train_samples_per_s']:,.0f} samples/s "
            f"({r['samples_per_s_vs_notebook']:.2f}x the notebook loop), "
            f"fit {r['fit_seconds']:.0f}s "
            f"(cpu {r['fit_cpu_seconds']:.0f}s; the notebook loop would need "
            f"{r['notebook_equivalent_seconds']:.0f}s for the same {r['samples_seen']:,} samples), "
            f"predict {r['predict_queries']:,} in {r['predict_seconds']:.1f}s, "
            f"peak {r['peak_rss_mb']:.0f} MB, val RMSE {r['best_val_rmse']:.4f}, {r['stop_reason']}"
        )
    _record(f"scale_{SCALE_USERS}_{device_name}", res)
    assert res["attention"]["samples_seen"] > 0
