"""GPU training throughput: ratingbench's trainer against the notebook's Dataset/DataLoader.

For each torch model (``attention``, ``transformer``) on the synthetic data at the
notebook's full scale (200k users, ~13.6M ratings, 300-d embeddings):

1. **ratingbench**: ``registry.create(ModelSpec(name, {...}), context={"device": ...})``
   then ``.fit(train_set)`` with ``epochs=1`` on a training set cut to ``steps *
   batch_size`` targets (and no validation queries, so the clock holds training only):
   exactly ``steps`` optimizer steps whose batches are gathered from device arrays. A short
   fit first warms the device up (kernels, allocator). Reported: samples/s of the training
   loop (``fit_report_.settings["train_seconds"]``) and of the whole ``fit`` call.
2. **notebook**: the same module (the fitted predictor's ``module_``, same architecture and
   batch size), trained further with the notebook's loop (cell 12: per-batch ``.to(device)``,
   AdamW, MSE, clipping, ``loss.item()``, predictions copied back) fed by its per-sample
   ``RatingDataset`` and ``DataLoader(shuffle=True, num_workers=0)`` (cells 6-7) built from
   its pandas sequences and split loop. The first ``warmup`` steps are not timed.

Prints one JSON document and writes it to ``$OUT/gpu_check.json`` when ``$OUT`` is set (or
to ``--out``). Exits non-zero when a model fails (the JSON records which) or when CUDA was
asked for and is not available. ``--smoke`` runs a tiny size for a few steps (CPU is fine):
the check of the script itself.

    python tests/benchmarks/gpu_check.py --device cuda        # on a GPU machine
    python tests/benchmarks/gpu_check.py --smoke --device cpu  # anywhere
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for _p in (str(REPO), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

import numpy as np  # noqa: E402

from bench.fileio import atomic_write  # noqa: E402

MODELS = ("attention", "transformer")
FULL_USERS = 200_000
SMOKE_USERS = 300


def log(msg: str) -> None:
    print(f"[gpu_check {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- data


def build_data(n_users: int, seed: int) -> dict[str, Any]:
    """The synthetic dataset as ratingbench sees it (TrainSet with embeddings) and as the
    notebook sees it (a ratings DataFrame, movie_to_idx, normalised embedding matrix)."""
    import pandas as pd

    from bench.data.loading import align_embeddings
    from bench.data.split import make_split
    from bench.data.synthetic import make_synthetic
    from bench.data.types import build_interactions

    t0 = time.perf_counter()
    data = make_synthetic(n_users=n_users, seed=seed)
    inter = build_interactions(data.raw, name="synthetic")
    emb = align_embeddings("synthetic", data.embedding_item_id, data.embedding, inter.item_ids)
    split = make_split(inter)
    train = split.train_set(inter, embeddings=emb, seed=seed)
    rb_prep = time.perf_counter() - t0
    raw = data.raw
    ratings = pd.DataFrame(
        {
            "userId": raw.user_id,
            "movieId": raw.item_id,
            "rating": raw.rating.astype(np.float64),
            "timestamp": raw.timestamp,
        }
    )
    # cell 3: movieId -> row, L2-normalised embeddings
    movie_ids = data.embedding_item_id
    embeddings = np.asarray(data.embedding, dtype=np.float32)
    movie_to_idx = {mid: i for i, mid in enumerate(movie_ids.tolist())}
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return {
        "train": train,
        "ratings": ratings,
        "movie_to_idx": movie_to_idx,
        "embeddings_norm": embeddings / (norms + 1e-12),
        "info": {
            "n_users": inter.n_users,
            "n_ratings": len(inter),
            "n_items": inter.n_items,
            "emb_dim": int(embeddings.shape[1]),
            "n_train_targets": int(train.train_pos.shape[0]),
            "ratingbench_prep_seconds": rb_prep,
        },
    }


def notebook_train_data(ratings: Any) -> tuple[list[Any], float]:
    """Cells 4-5: the notebook's sequences and split; returns train_data and seconds."""
    import notebook_pipeline as nb

    t0 = time.perf_counter()
    seqs = nb.build_user_sequences(ratings)
    train_data, _, _ = nb.split_sequences(seqs)
    return train_data, time.perf_counter() - t0


def cut_train_set(train: Any, n_targets: int, seed: int) -> Any:
    """``train`` with ``n_targets`` training targets drawn without replacement (kept in
    order) and no validation queries: ``fit`` with ``epochs=1`` then runs exactly
    ``ceil(n_targets / batch_size)`` steps and nothing else."""
    from predictors.types import HistoryBatch, Queries

    t = int(train.train_pos.shape[0])
    rng = np.random.default_rng(seed)
    sel = np.sort(rng.choice(t, size=min(n_targets, t), replace=False))
    empty = np.zeros(0, dtype=np.int64)
    val = Queries(
        batch=HistoryBatch.from_store(train.events, empty.astype(np.int32), empty),
        rating=np.zeros(0, dtype=np.float32),
    )
    return dataclasses.replace(
        train, train_user=train.train_user[sel], train_pos=train.train_pos[sel], val=val
    )


# --------------------------------------------------------------------------- models


def make_model(name: str, options: dict[str, Any], device: str) -> Any:
    """The registry's model, or the class from its module while the registry lacks it."""
    from predictors.registry import ModelSpec, create

    try:
        return create(ModelSpec(name, {**options, "device": device}))
    except ValueError as e:
        if "unknown model" not in str(e):
            raise
    if name == "attention":
        from predictors.attention import Attention as cls
    elif name == "transformer":
        from predictors.transformer import Transformer as cls
    else:
        raise ValueError(f"unknown torch model {name!r}; known: {', '.join(MODELS)}")
    return cls(**{"device": device, **options})


def _sync(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ratingbench_fit(
    name: str, train: Any, *, steps: int, warmup: int, batch_size: int, device: str, seed: int
) -> tuple[dict[str, Any], Any]:
    """Warm-up fit, then the measured fit of ``steps`` steps. Returns (numbers, predictor)."""
    opts = {"epochs": 1, "batch_size": batch_size, "progress": False, "seed": seed}
    if warmup:
        make_model(name, opts, device).fit(cut_train_set(train, warmup * batch_size, seed + 1))
    part = cut_train_set(train, steps * batch_size, seed)
    model = make_model(name, opts, device)
    t0 = time.perf_counter()
    model.fit(part)
    _sync(model.device_)
    fit_s = time.perf_counter() - t0
    info = model.fit_report_.settings
    n = int(info["n_train"])
    if info["steps"] != -(-n // batch_size):
        raise RuntimeError(f"{name}: expected {-(-n // batch_size)} steps, fit ran {info['steps']}")
    return {
        "steps": int(info["steps"]),
        "samples": n,
        "train_seconds": float(info["train_seconds"]),
        "fit_seconds": fit_s,
        "samples_per_s": n / float(info["train_seconds"]),
        "fit_samples_per_s": n / fit_s,
        "n_parameters": int(info["n_parameters"]),
        "device": str(info["device"]),
    }, model


def notebook_train(
    name: str,
    predictor: Any,
    train_data: list[Any],
    movie_to_idx: dict[Any, int],
    embeddings_norm: np.ndarray,
    *,
    steps: int,
    warmup: int,
    batch_size: int,
) -> dict[str, Any]:
    """The notebook's training loop (cell 12) over its DataLoader, on ``predictor.module_``."""
    import notebook_pipeline as nb
    import torch
    from torch import nn

    device = predictor.device_
    module = predictor.module_
    module.train()
    with_ids = name == "transformer"  # it needs the movie codes as well as the embeddings
    loader = nb.make_loader(
        train_data,
        movie_to_idx,
        embeddings_norm,
        batch_size=batch_size,
        shuffle=True,
        with_ids=with_ids,
    )
    criterion = nn.MSELoss()
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3, weight_decay=0.01)
    train_preds: list[Any] = []
    train_targets: list[Any] = []
    done = 0
    timed_samples = 0
    t0 = time.perf_counter()
    for batch in loader:
        if done == warmup:
            _sync(device)
            t0 = time.perf_counter()
            timed_samples = 0
        hist_emb, hist_ratings, mask, target_emb, target_rating, target_rating_orig = nb.batch_on(
            batch, device
        )

        optimizer.zero_grad()
        if with_ids:
            pred = module(
                hist_emb,
                hist_ratings,
                mask.bool(),
                target_emb,
                batch["hist_idx"].to(device),
                batch["target_idx"].to(device),
                # the notebook's Dataset carries no timestamps: gaps of 0 cost the same
                torch.zeros_like(hist_ratings),
            )
        else:
            pred = module(hist_emb, hist_ratings, mask, target_emb)
        loss = criterion(pred, target_rating)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        _ = loss.item()
        train_preds.extend(pred.detach().cpu().numpy() * 4.5 + 0.5)
        train_targets.extend(target_rating_orig.numpy())
        done += 1
        timed_samples += int(target_rating.shape[0])
        if done >= warmup + steps:
            break
    _sync(device)
    seconds = time.perf_counter() - t0
    if done < warmup + steps:
        raise RuntimeError(f"notebook loader ran out after {done} steps")
    return {
        "steps": steps,
        "warmup_steps": warmup,
        "samples": timed_samples,
        "train_seconds": seconds,
        "samples_per_s": timed_samples / seconds,
    }


# --------------------------------------------------------------------------- main


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda tmp: tmp.write_text(json.dumps(doc, indent=2) + "\n"))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="tiny data, few steps (CPU is fine)")
    ap.add_argument("--device", default="auto", help="auto, cuda, cpu, mps (default auto)")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--users", type=int, default=None, help=f"default {FULL_USERS:,}")
    ap.add_argument("--steps", type=int, default=None, help="timed steps (default 1000)")
    ap.add_argument("--warmup", type=int, default=None, help="untimed steps (default 20)")
    ap.add_argument("--batch-size", type=int, default=None, help="default 128 (smoke: 32)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default $OUT/...)")
    args = ap.parse_args(argv)

    users = args.users or (SMOKE_USERS if args.smoke else FULL_USERS)
    steps = args.steps or (3 if args.smoke else 1000)
    warmup = args.warmup if args.warmup is not None else (1 if args.smoke else 20)
    batch_size = args.batch_size or (32 if args.smoke else 128)  # the notebook's 128
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    out = args.out
    if out is None and os.environ.get("OUT"):
        out = Path(os.environ["OUT"]) / "gpu_check.json"

    import torch

    from predictors.torch.device import torch_device

    doc: dict[str, Any] = {
        "schema": "ratingbench/gpu_check/1",
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "smoke": bool(args.smoke),
        "settings": {
            "users": users,
            "steps": steps,
            "warmup": warmup,
            "batch_size": batch_size,
            "seed": args.seed,
            "models": models,
        },
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "cpus": os.cpu_count(),
        },
        "models": {},
        "ok": False,
    }
    status = 0
    t_start = time.perf_counter()
    try:
        device = torch_device(args.device)  # ValueError when cuda is asked for and absent
        doc["machine"]["device"] = str(device)
        log(f"device {device}; building data for {users:,} users")
        data = build_data(users, args.seed)
        doc["data"] = data["info"]
        log(f"data ready: {data['info']}")
        train_data, nb_prep = notebook_train_data(data["ratings"])
        doc["data"]["notebook_prep_seconds"] = nb_prep
        doc["data"]["notebook_train_samples"] = len(train_data)
        del data["ratings"]
        log(f"notebook sequences + split: {nb_prep:.1f} s")
    except Exception as e:
        doc["error"] = f"{type(e).__name__}: {e}"
        traceback.print_exc()
        status = 2
        models = []
    for name in models:
        row: dict[str, Any] = {}
        doc["models"][name] = row
        try:
            log(f"{name}: ratingbench trainer, {steps} steps")
            rb, predictor = ratingbench_fit(
                name,
                data["train"],
                steps=steps,
                warmup=warmup,
                batch_size=batch_size,
                device=str(device),
                seed=args.seed,
            )
            row["ratingbench"] = rb
            log(f"{name}: ratingbench {rb['samples_per_s']:,.0f} samples/s; notebook loop")
            nb = notebook_train(
                name,
                predictor,
                train_data,
                data["movie_to_idx"],
                data["embeddings_norm"],
                steps=steps,
                warmup=warmup,
                batch_size=batch_size,
            )
            row["notebook"] = nb
            row["speedup"] = rb["samples_per_s"] / nb["samples_per_s"]
            row["status"] = "ok"
            log(
                f"{name}: notebook {nb['samples_per_s']:,.0f} samples/s, "
                f"speedup {row['speedup']:.1f}x"
            )
        except Exception as e:
            row["status"] = "failed"
            row["error"] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
            status = 1
        if out is not None:
            write_json(doc, out)  # partial results survive a later failure or timeout
    doc["seconds"] = time.perf_counter() - t_start
    doc["ok"] = status == 0
    if out is not None:
        write_json(doc, out)
    print(json.dumps(doc, indent=2))
    return status


if __name__ == "__main__":
    sys.exit(main())
