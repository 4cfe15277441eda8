"""The runner: one split, every chosen model (per seed) fitted and scored on it.

A model that fails is recorded with its error and the run goes on; Ctrl-C keeps every
finished model (the results file is marked incomplete). Test truth is read only here and in
``bench.scoring``, for the metrics, never handed to a model. The pieces: ``bench.spec``
(what is asked), ``bench.plan`` (the jobs and the prepared data), ``bench.scoring``
(statistics), ``bench.provenance`` (where it ran); docs/ARCHITECTURE.md draws the flow.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from threadpoolctl import threadpool_limits

from bench import embeddings as E
from bench import memory, stats
from bench.checkpoints import CheckpointTarget, save_checkpoint
from bench.data.loading import load_source
from bench.data.split import make_split
from bench.data.types import time_unit_note
from bench.errors import ConfigError
from bench.executors import Executor, JobInputs, make_executor, torch_threads
from bench.plan import (
    ModelRun,
    Prepared,
    RunOutcome,
    ValCheck,
    capabilities,
    fit_rows,
    plan_runs,
    predicted_runs,
    predictions_frame,
)
from bench.provenance import PeakRSS
from bench.provenance import provenance as where_it_runs
from bench.results import (
    SCHEMA,
    SCHEMA_VERSION,
    new_results_path,
    new_run_id,
    resume_results,
    write_results,
)
from bench.scoring import score_all, seed_summary
from bench.spec import CHECK_LEVELS, RunSpec
from predictors.contract import (
    Harnessed,
    NullProgress,
    Prediction,
    RichProgress,
    RunContext,
)
from predictors.device import resolve_device as _resolve_device
from predictors.registry import (
    ModelSpec,
    changed_plugins,
    create,
    parse_spec,
)
from predictors.types import TrainSet

__all__ = [
    "CHECK_LEVELS",
    "ModelRun",
    "PeakRSS",
    "RunOutcome",
    "RunSpec",
    "execute",
    "job_inputs",
    "prepare",
]


def resolve_device(name: str) -> str:
    """``--device`` resolved (``predictors.device``): ``auto`` stays ``auto`` until torch is
    imported (only when a model declares torch), so a run of the baselines never imports it."""
    try:
        return _resolve_device(name)
    except ValueError as e:
        raise ConfigError(f"--device: {e}") from e


def prepare(spec: RunSpec, console: Console) -> Prepared:
    """Load the data, build the embeddings and the split, and plan the jobs (nothing fitted,
    nothing written)."""
    timings: dict[str, float] = {}
    models = list(spec.models)
    ref_spec = next((m for m in models if m.label == spec.reference), None)
    if ref_spec is None:
        ref_spec = parse_spec(spec.reference)
        models.insert(0, ref_spec)  # the reference is always scored alongside
    broken: dict[str, str] = {}
    for m in models:
        if not m.is_plugin:
            create(m)  # unknown options / bad values fail now, not after loading
            continue
        # a plugin that cannot be built, or fails its checks, is recorded as a failed model;
        # the others go on
        try:
            create(m)
        except Exception as e:
            broken[m.label] = str(e)
            continue
        why = _check_plugin(m, spec.check, console)
        if why is not None:
            broken[m.label] = why
    for label, error in broken.items():
        console.print(f"[red]plugin failed[/] {label}: {error}")
    models_ok = [m for m in models if m.label not in broken]

    def uses_emb(m: ModelSpec) -> bool:
        return capabilities(m).embeddings

    need_emb = any(uses_emb(m) for m in models_ok)

    t0 = time.perf_counter()
    with console.status("loading data"):
        loaded = load_source(spec.source)
    timings["load_s"] = time.perf_counter() - t0
    skipped: list[str] = []
    if need_emb and not spec.embeddings and loaded.embeddings is None and loaded.catalog is None:
        # nothing to build embeddings from: models that came from 'all' are skipped
        skipped = [m.label for m in models_ok if uses_emb(m) and m.implicit]
        if skipped:
            models = [m for m in models if m.label not in skipped]
            models_ok = [m for m in models_ok if m.label not in skipped]
            need_emb = any(uses_emb(m) for m in models_ok)
            console.print(
                f"[yellow]skipped[/] {', '.join(skipped)}: no item embeddings (give "
                "--embedding NAME|FILE.parquet, or --catalog to build them)"
            )
    t0 = time.perf_counter()
    loaded, embs, emb_info = E.prepare(
        loaded,
        spec.embeddings,
        policy=spec.missing_embedding,
        embedding_dir=spec.embedding_dir,
        split_params=spec.split,
        need=need_emb,
        notify=console.print,
        progress=console.is_terminal,
    )
    if skipped:
        emb_info = {**emb_info, "skipped_models": skipped}
    timings["embeddings_s"] = time.perf_counter() - t0
    inter = loaded.interactions
    console.print(
        f"[bold]{inter.name}[/]: {len(inter):,} ratings, {inter.n_users:,} users, "
        f"{inter.n_items:,} items, scale {inter.scale.low:g}–{inter.scale.high:g}"
        f"{time_unit_note(inter)}"
    )
    for note in loaded.info.get("notes", ()):  # e.g. a first line read as data, the shipped copy
        console.print(f"note: {escape(str(note))}")
    t0 = time.perf_counter()
    split = make_split(inter, spec.split)
    timings["split_s"] = time.perf_counter() - t0
    c = split.counts()
    console.print(
        f"split {split.hash}: {c['train']:,} train / {c['val']:,} validation / "
        f"{c['test']:,} test targets from {c['users']:,} users"
    )
    if embs:
        test_items = inter.item[split.test_pos]
        hist_items = inter.item[fit_rows(split, inter)]
        emb_info["coverage"] = {n: E.coverage(e, hist_items, test_items) for n, e in embs.items()}
    runs = plan_runs(spec, models, ref_spec.label, list(embs) if need_emb else [], broken)
    ref_key = next((r.key for r in runs if r.spec.label == ref_spec.label), None)
    return Prepared(
        loaded=loaded,
        split=split,
        truth=split.test_truth(inter),
        embeddings=embs,
        embedding_info=emb_info,
        runs=runs,
        ref_key=ref_key,
        timings=timings,
    )


def _check_plugin(m: ModelSpec, level: str, console: Console) -> str | None:
    """Why the plugin ``m`` may not be benchmarked (the failed conformance checks), or None."""
    if level == "none":
        return None
    from predictors.testing import check_predictor

    with console.status(f"checking plugin {m.label} ({level})"):
        report = check_predictor(lambda: create(m), quick=level == "quick")
    if report.passed:
        return None
    reasons = "; ".join(f"{r.name}: {r.reason}" for r in report.failures)
    return (
        f"plugin {m.label} failed {len(report.failures)} conformance check(s) "
        f"(`bench check` shows them all; --check none skips them): {reasons}"
    )


def run_job(run: ModelRun, inputs: JobInputs, console: Console | None = None) -> ModelRun:
    """One job, wherever its executor runs it (``bench.executors``): ``_fit_predict`` with the
    run's torch threads; a failure of the model's own is recorded on ``run`` (status
    ``failed``, the error and its traceback), not raised. Returns ``run``."""
    try:
        with torch_threads(inputs.torch_threads):
            _fit_predict(run, inputs, console)
    except KeyboardInterrupt:
        raise
    except Exception as e:  # a failed model is recorded; the run goes on
        run.status = "failed"
        run.error = f"{type(e).__name__}: {e}"
        run.traceback = traceback.format_exc(limit=8)
    return run


def _fit_predict(run: ModelRun, inputs: JobInputs, console: Console | None = None) -> None:
    """Fit one job's model and predict the test queries, through the model contract: the
    model gets a ``RunContext`` in its TrainSet, returns a ``FitReport``, and every batch
    comes back as a checked ``Prediction`` (``predictors.contract``). ``inputs``: the
    TrainSets, validation check and test batches every job shares."""
    spec, val_check = inputs.spec, inputs.val_check
    # Small batched solves are fastest on one BLAS thread, and several threads on a busy
    # machine can be 10-100x slower (oversubscription): limit them while the model runs.
    limits = (
        threadpool_limits(limits=spec.blas_threads, user_api="blas")
        if spec.blas_threads is not None
        else contextlib.nullcontext()
    )
    with PeakRSS() as mem, limits:
        model = Harnessed(create(run.spec))
        run.config = model.config()
        together = inputs.distributed is not None and capabilities(run.spec).distributed
        context = RunContext(
            seed=run.seed,
            device=inputs.device,
            progress=RichProgress(console) if console is not None else NullProgress(),
            distributed=inputs.distributed if together else None,
        )
        train = dataclasses.replace(inputs.trains[run.embedding], context=context)
        t0 = time.perf_counter()
        report = model.fit(train)
        run.fit_s = time.perf_counter() - t0
        if inputs.fit_only:  # a rank > 0 of a data-parallel fit: rank 0 does the rest
            run.status = "ok"
            return
        run.fit_info = dict(report.settings)
        run.refit = report.refit
        # validation RMSE for the table's sanity flag; a model that refit on the validation
        # targets reports the figure it chose its settings on instead
        if not report.refit and len(val_check.batch):
            vp = model.predict(val_check.batch).values.astype(np.float64)
            run.val_rmse = float(np.sqrt(np.mean((vp - val_check.truth) ** 2)))
        else:
            run.val_rmse = report.val_rmse
        t0 = time.perf_counter()
        out = Prediction.concat([model.predict(b) for b in inputs.test_batches()])
        run.predict_s = time.perf_counter() - t0
    run.pred, run.fallback, run.n_clipped = out.values, out.fallback, out.n_clipped
    curve = report.learning_curve
    run.learning_curve = None if curve is None else [dict(c) for c in curve]
    run.peak_rss_mb = mem.peak
    run.rss_delta_mb = None if mem.start is None or mem.peak is None else mem.peak - mem.start
    run.flags, run.notes = [], []
    if run.val_rmse is not None and run.val_rmse > val_check.global_mean_rmse + 1e-6:
        run.flags.append(
            f"validation RMSE {run.val_rmse:.4f} is worse than global-mean's "
            f"{val_check.global_mean_rmse:.4f}"
        )
    if run.n_clipped:
        run.notes.append(f"{run.n_clipped} prediction(s) outside the scale were clipped")
    run.status = "ok"
    if inputs.checkpoints is not None:
        note = save_checkpoint(run, model.model, inputs.checkpoints, embedding=train.embeddings)
        if note is not None:
            run.notes.append(note)


def _document(
    spec: RunSpec,
    prep: Prepared,
    device: str,
    status: str,
    started: str,
    provenance: dict[str, Any],
    executor: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "status": status,
        "created": started,
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": spec.command,
        "run_spec": spec.to_dict(),
        "protocol": spec.protocol,
        **provenance,
        "device": device,
        "executor": executor,  # where the jobs ran (the results do not depend on it)
        "seeds": spec.seeds,
        "dataset": {**prep.loaded.interactions.summary(), **prep.loaded.info},
        "split": prep.split.summary(),
        "embeddings": prep.embedding_info or None,
        "statistics": {
            "metric_ci": "bootstrap over test queries",
            "difference_ci": "paired bootstrap over the same resampled queries",
            "resampling": "one resampling of the test users shared by every model "
            "(a user's test targets stay together)",
            "method": prep.stats_method,
            "units": "users",
            "n_units": prep.stats_units,
            "metrics": list(stats.METRICS),
            "multiplicity": "p-values Holm-adjusted across the comparisons with the reference; "
            "verdicts read the adjusted p-value",
            "min_test_users": spec.min_test_users,
            "per_seed": spec.per_seed,
            "table": prep.table or None,
            "n_resamples": spec.n_resamples,
            "confidence": spec.confidence,
            "seed": spec.stats_seed,
            "reference": prep.ref_key,
        },
        "timings": prep.timings,
        "models": [r.to_dict() for r in prep.runs],
        "seed_summary": seed_summary(prep.runs),
    }


def job_inputs(spec: RunSpec, prep: Prepared, device: str, need_torch: bool) -> JobInputs:
    """What every job reads (shipped once per worker): one TrainSet per embedding, built once
    and sharing the event arrays (models must not mutate them), the validation check and the
    test batches (kept when small enough, else rebuilt by each job)."""
    inter = prep.loaded.interactions
    base = prep.split.train_set(inter, embeddings=None, seed=spec.seeds[0])
    trains: dict[str | None, TrainSet] = {None: base}
    for name, emb in prep.embeddings.items():
        trains[name] = dataclasses.replace(base, embeddings=emb)
    if prep.embeddings and not any(r.embedding for r in prep.runs):
        trains[None] = dataclasses.replace(base, embeddings=next(iter(prep.embeddings.values())))
    batches = prep.test_batches(spec.chunk_size)  # built once and kept when small enough
    return JobInputs(
        spec=spec,
        device=device,
        torch_threads=_torch_threads(spec, need_torch),
        trains=trains,
        val_check=ValCheck.of(base),
        test_cache=None if prep.test_cache is None else tuple(batches),
        test_source=None if prep.test_cache is not None else (inter, prep.split),
    )


def _torch_threads(spec: RunSpec, need_torch: bool) -> int | None:
    """The torch intra-op threads of every job: ``--torch-threads``, else (when a model uses
    torch, or a plugin imported it) torch's default in this process, the same number in every
    worker so that the predictions do not depend on the executor."""
    if spec.torch_threads is not None:
        return spec.torch_threads
    if not need_torch and "torch" not in sys.modules:
        return None
    import torch

    return int(torch.get_num_threads())


def _progress_state(executor: Executor, running: int, failed: int, total: int) -> str:
    if executor.name == "serial":
        return f"{failed} failed" if failed else ""
    done = total - executor.pending
    return f"{done} done, {running} running, {failed} failed"


def _check_out_dir(out_dir: Path) -> None:
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(f"--out {out_dir}: cannot create the output folder ({e.strerror})") from e
    if not os.access(out_dir, os.W_OK):
        raise ConfigError(f"--out {out_dir}: the output folder is not writable")


def execute(
    spec: RunSpec, console: Console | None = None, *, resume: Path | None = None
) -> RunOutcome:
    """Load, split, fit and score every model, writing the results after each model (so a
    crash keeps what finished; the file says ``incomplete`` until the end). Raises
    ``BenchError`` on bad data or options before anything is written; a model that fails is
    recorded and the run goes on. With ``resume``, models finished in that results file are
    taken back (after checking that the data and split hashes are identical) and only the
    rest are run; the file is updated in place. The jobs run on the executor the spec names
    (``bench.executors``: serial, local processes or Ray); the results do not depend on it."""
    console = console or Console(stderr=True)
    # connect first (Ray: an unreachable address or a missing install fails before anything)
    with make_executor(spec, console) as executor:
        return _execute(spec, console, resume, executor)


def _execute(
    spec: RunSpec, console: Console, resume: Path | None, executor: Executor
) -> RunOutcome:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir = Path(spec.out_dir) if resume is None else Path(resume).parent
    _check_out_dir(out_dir)
    prep = prepare(spec, console)
    memory.check_fits(prep.memory_needs(spec.chunk_size), memory.available_bytes(), executor.copies)
    # torch is imported (and the device resolved) only when a torch model runs
    need_torch = any(capabilities(r.spec).torch for r in prep.runs if r.status == "pending")
    if need_torch:
        import torch  # noqa: F401
    device = executor.place(resolve_device(spec.device))
    inter = prep.loaded.interactions

    if resume is not None:
        path = Path(resume)
        old, notes = resume_results(
            path,
            dataset_hash=inter.hash,
            split_hash=prep.split.hash,
            queries=predictions_frame(prep),
        )
        started = old.raw.get("created", started)
        changed = changed_plugins((old.run_spec or {}).get("models") or [], spec.models)
        for label, why in changed.items():
            console.print(
                f"[yellow]note:[/] plugin {label}: {why} since the run began; its finished "
                "runs are run again"
            )
        done = {rec.key: rec for rec in old.finished() if rec.pred is not None}
        for r in prep.runs:
            rec = done.get(r.run_key) if r.spec.label not in changed else None
            if rec is not None and rec.pred is not None and rec.fallback is not None:
                r.restore(rec.record, rec.pred, rec.fallback)
        n_done = sum(r.status == "ok" for r in prep.runs)
        for note in notes:
            console.print(f"[yellow]note:[/] {note}")
        console.print(f"resuming {path.name}: {n_done} of {len(prep.runs)} model runs finished")
    else:
        stem = f"{inter.name}-{started.replace(':', '').replace('-', '').replace('+0000', '')}"
        path = new_results_path(out_dir, stem.replace("/", "_"))

    inputs = job_inputs(spec, prep, device, need_torch)

    # every process of the run takes part in the same jobs (ddp: rank 0's list, checked)
    agreed = executor.agree(
        [r for r in prep.runs if r.status == "pending"],
        {"dataset": inter.hash, "split": prep.split.hash},
    )
    if not executor.writes:  # a rank > 0 of a data-parallel run: fit with the others, no file
        executor.follow(run_job, inputs, agreed)
        return RunOutcome(path=None, doc={}, runs=prep.runs, interrupted=False)

    written = resume is not None
    run_id = (old.raw.get("run_id") if resume is not None else None) or new_run_id()
    provenance = {**where_it_runs(), "run_id": run_id}  # run_id pairs the JSON and its sidecar

    sidecar_keys: list[str] | None = None  # the models in the sidecar this run last wrote

    def save(status: str) -> dict[str, Any]:
        nonlocal written, path, sidecar_keys
        # every finished model is scored again on the run's one resampling: cheap (one
        # column per model), and the file on disk always carries complete intervals
        t0 = time.perf_counter()
        score_all(prep, spec)
        prep.timings["statistics_s"] = time.perf_counter() - t0
        doc = _document(spec, prep, device, status, started, provenance, executor.record())
        keys = [r.key for r in predicted_runs(prep)]
        if written and keys == sidecar_keys:  # e.g. the final save: only the JSON changes
            path = write_results(path, doc, None, overwrite=True, sidecar_current=True)
        else:
            path = write_results(path, doc, predictions_frame(prep), overwrite=written)
        written, sidecar_keys = True, keys
        return doc

    if spec.save_models:
        save("incomplete")  # claims the results name: the checkpoints go beside it
        inputs = dataclasses.replace(
            inputs, checkpoints=CheckpointTarget.of(path, run_id, prep, device)
        )
    interrupted = False
    todo = [r for r in prep.runs if r.status == "pending"]
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[state]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    t_models = time.perf_counter()
    n_failed = 0
    try:
        with progress:
            task = progress.add_task("models", total=len(todo), state="")
            if todo:
                executor.start(run_job, inputs)
            for i, r in enumerate(todo):
                executor.submit(i, r)
            while executor.pending:
                running = executor.running()
                progress.update(
                    task,
                    description="fitting " + ", ".join(j.key for j in running),
                    state=_progress_state(executor, len(running), n_failed, len(todo)),
                )
                outcome = executor.next_done()
                r = todo[outcome.index]
                outcome.apply(r)
                if r.status == "ok":
                    console.print(
                        f"  [green]ok[/] {r.key}: fit {r.fit_s:.2f}s, predict {r.predict_s:.2f}s"
                    )
                else:
                    n_failed += 1
                    console.print(f"  [red]failed[/] {r.key}: {r.error}")
                save("incomplete")
                progress.advance(task)
    except KeyboardInterrupt:
        interrupted = True
        executor.close(kill=True)
        for r in prep.runs:
            if r.status == "pending":
                r.status = "not run"
        console.print("[yellow]interrupted: the finished models are kept[/]")
    prep.timings["models_s"] = time.perf_counter() - t_models
    doc = save("incomplete" if interrupted else "complete")
    return RunOutcome(path=path, doc=doc, runs=prep.runs, interrupted=interrupted)
