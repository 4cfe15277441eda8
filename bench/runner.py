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
from bench.executors.base import ctrl_c_pressed
from bench.executors.faults import failure_text
from bench.jobs import FitJob, FitResult, Status
from bench.plan import (
    Prepared,
    RunOutcome,
    TestBatches,
    ValCheck,
    capabilities,
    fit_rows,
    plan_jobs,
    predicted,
    predictions_frame,
    refused_results,
)
from bench.provenance import PeakRSS
from bench.provenance import provenance as where_it_runs
from bench.results import ResultsWriter, new_run_id, resume_results
from bench.results.schema import document, record_of, statistics_section
from bench.runkey import RunKey
from bench.scoring import Scores, score
from bench.spec import CHECK_LEVELS, RunSpec
from bench.text import shown
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
    "FitJob",
    "FitResult",
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
    ref_spec = next((m for m in models if m.label == spec.stats.reference), None)
    if ref_spec is None:
        ref_spec = parse_spec(spec.stats.reference)
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
        console.print(f"[red]plugin failed[/] {shown(label)}: {shown(error)}")
    models_ok = [m for m in models if m.label not in broken]

    def uses_emb(m: ModelSpec) -> bool:
        return capabilities(m).embeddings

    need_emb = any(uses_emb(m) for m in models_ok)

    t0 = time.perf_counter()
    with console.status("loading data"):
        loaded = load_source(spec.source)
    timings["load_s"] = time.perf_counter() - t0
    skipped: list[str] = []
    nothing_given = not spec.embedding.embeddings and loaded.catalog is None
    if need_emb and nothing_given and loaded.embeddings is None:
        # nothing to build embeddings from: models that came from 'all' are skipped
        skipped = [m.label for m in models_ok if uses_emb(m) and m.implicit]
        if skipped:
            models = [m for m in models if m.label not in skipped]
            models_ok = [m for m in models_ok if m.label not in skipped]
            need_emb = any(uses_emb(m) for m in models_ok)
            console.print(
                f"[yellow]skipped[/] {shown(', '.join(skipped))}: no item embeddings (give "
                "--embedding NAME|FILE.parquet, or --catalog to build them)"
            )
    t0 = time.perf_counter()
    loaded, embs, emb_info = E.prepare(
        loaded,
        spec.embedding.embeddings,
        policy=spec.embedding.missing_embedding,
        embedding_dir=spec.embedding.embedding_dir,
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
        f"[bold]{shown(inter.name)}[/]: {len(inter):,} ratings, {inter.n_users:,} users, "
        f"{inter.n_items:,} items, scale {inter.scale.low:g}–{inter.scale.high:g}"
        f"{time_unit_note(inter)}"
    )
    for note in loaded.info.get("notes", ()):  # e.g. a first line read as data, the shipped copy
        console.print(f"note: {shown(note)}")
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
    jobs = plan_jobs(spec, models, ref_spec.label, list(embs) if need_emb else [], broken)
    ref_key = next((j.run_key for j in jobs if j.spec.label == ref_spec.label), None)
    return Prepared(
        loaded=loaded,
        split=split,
        truth=split.test_truth(inter),
        embeddings=embs,
        embedding_info=emb_info,
        jobs=tuple(jobs),
        refused=refused_results(jobs, broken),
        ref_key=ref_key,
        timings=timings,
    )


def _check_plugin(m: ModelSpec, level: str, console: Console) -> str | None:
    """Why the plugin ``m`` may not be benchmarked (the failed conformance checks), or None."""
    if level == "none":
        return None
    from predictors.testing import check_predictor

    with console.status(f"checking plugin {shown(m.label)} ({level})"):
        report = check_predictor(lambda: create(m), quick=level == "quick")
    if report.passed:
        return None
    reasons = "; ".join(f"{r.name}: {r.reason}" for r in report.failures)
    return (
        f"plugin {m.label} failed {len(report.failures)} conformance check(s) "
        f"(`bench check` shows them all; --check none skips them): {reasons}"
    )


def run_job(job: FitJob, inputs: JobInputs, console: Console | None = None) -> FitResult:
    """One job, wherever its executor runs it (``bench.executors``): ``_fit_predict`` with the
    run's torch threads. Returns its result: ``ok``, or ``failed`` with the error and its
    traceback (and what the job had learned before it failed) when the model raised
    anything at all (``SystemExit``, ``GeneratorExit``, ``KeyboardInterrupt`` of its own); only
    the user's Ctrl-C (``ctrl_c_pressed``) goes up, to interrupt the run."""
    got: dict[str, Any] = {}  # what the job learned so far, kept when the model fails
    handed: dict[str, Any] = {}  # what the model was handed, named as the error names it
    try:
        with torch_threads(inputs.torch_threads):
            return _fit_predict(job, inputs, console, got, handed)
    except BaseException as e:  # a failed model is recorded; the run goes on
        if isinstance(e, KeyboardInterrupt) and ctrl_c_pressed():
            raise
        return FitResult(
            job,
            Status.FAILED,
            error=failure_text(e, handed),
            traceback=traceback.format_exc(limit=8),
            **got,
        )


def _fit_predict(
    job: FitJob,
    inputs: JobInputs,
    console: Console | None,
    got: dict[str, Any],
    handed: dict[str, Any],
) -> FitResult:
    """Fit one job's model and predict the test queries, through the model contract: the
    model gets a ``RunContext`` in its TrainSet, returns a ``FitReport``, and every batch
    comes back as a checked ``Prediction`` (``predictors.contract``). ``inputs``: the
    TrainSets, validation check and test batches every job shares. ``got`` collects the
    result's fields as they are learned (the caller keeps them when the model fails)."""
    spec, val_check = inputs.spec, inputs.val_check
    # Small batched solves are fastest on one BLAS thread, and several threads on a busy
    # machine can be 10-100x slower (oversubscription): limit them while the model runs.
    limits = (
        threadpool_limits(limits=spec.execution.blas_threads, user_api="blas")
        if spec.execution.blas_threads is not None
        else contextlib.nullcontext()
    )
    with PeakRSS() as mem, limits:
        model = Harnessed(create(job.spec))
        got["config"] = model.config()
        together = inputs.distributed is not None and job.capabilities.distributed
        context = RunContext(
            seed=job.seed,
            device=inputs.device,
            progress=RichProgress(console) if console is not None else NullProgress(),
            distributed=inputs.distributed if together else None,
        )
        # its own meta: the arrays are read-only, the dict is copied
        base = inputs.trains[job.embedding]
        train = dataclasses.replace(base, context=context, meta=dict(base.meta))
        handed["train"] = train
        t0 = time.perf_counter()
        report = model.fit(train)
        got["fit_s"] = time.perf_counter() - t0
        if inputs.fit_only:  # a rank > 0 of a data-parallel fit: rank 0 does the rest
            return FitResult(job, Status.OK, **got)
        got["fit_info"] = dict(report.settings)
        got["refit"] = report.refit
        # validation RMSE for the table's sanity flag; a model that refit on the validation
        # targets reports the figure it chose its settings on instead
        if not report.refit and len(val_check.batch):
            handed["queries"] = val_check.batch
            vp = model.predict(val_check.batch).values.astype(np.float64)
            got["val_rmse"] = float(np.sqrt(np.mean((vp - val_check.truth) ** 2)))
        else:
            got["val_rmse"] = report.val_rmse
        t0 = time.perf_counter()
        preds = []
        for b in inputs.tests:
            handed["queries"] = b
            preds.append(model.predict(b))
        out = Prediction.concat(preds)
        got["predict_s"] = time.perf_counter() - t0
    val_rmse: float | None = got["val_rmse"]
    flags: list[str] = []
    if val_rmse is not None and val_rmse > val_check.global_mean_rmse + 1e-6:
        flags.append(
            f"validation RMSE {val_rmse:.4f} is worse than global-mean's "
            f"{val_check.global_mean_rmse:.4f}"
        )
    notes: list[str] = []
    if out.n_clipped:
        notes.append(f"{out.n_clipped} prediction(s) outside the scale were clipped")
    curve = report.learning_curve
    result = FitResult(
        job,
        Status.OK,
        learning_curve=None if curve is None else tuple(dict(c) for c in curve),
        peak_rss_mb=mem.peak,
        rss_delta_mb=None if mem.start is None or mem.peak is None else mem.peak - mem.start,
        pred=out.values,
        fallback=out.fallback,
        n_clipped=out.n_clipped,
        flags=tuple(flags),
        notes=tuple(notes),
        **got,
    )
    if inputs.checkpoints is not None:
        note = save_checkpoint(result, model.model, inputs.checkpoints, embedding=train.embeddings)
        if note is not None:
            result = dataclasses.replace(result, notes=(*result.notes, note))
    return result


def _document(
    spec: RunSpec,
    prep: Prepared,
    results: dict[RunKey, FitResult],
    scores: Scores,
    status: str,
    started: str,
    provenance: dict[str, Any],
    device: str,
    executor: Executor,
    timings: dict[str, float],
) -> dict[str, Any]:
    """The results document of the run as it stands: every job of the plan, each with its
    result (pending when it has none yet) and scores."""
    jobs: dict[str, dict[str, Any]] = {}  # where this run's executor ran each job
    for r in results.values():
        if r.worker is not None:
            jobs[r.key] = {"worker": r.worker}
            if r.attempts is not None:
                jobs[r.key]["attempts"] = r.attempts
    models = []
    for j in prep.jobs:
        r = results.get(j.run_key) or j.pending()
        s = scores.runs.get(j.run_key)
        models.append(record_of(r, *((s.metrics, s.vs_reference) if s else (None, None))))
    return document(
        status=status,
        created=started,
        finished=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command=list(spec.output.command),
        run_spec=spec.to_dict(),
        protocol=spec.protocol,
        provenance=provenance,
        device=device,
        executor=executor.record(jobs),  # where the jobs ran (the results do not depend on it)
        seeds=spec.seeds,
        dataset={**prep.loaded.interactions.summary(), **prep.loaded.info},
        split=prep.split.summary(),
        embeddings=prep.embedding_info or None,
        statistics=statistics_section(
            method=scores.method,
            n_units=scores.n_units,
            metrics=list(stats.METRICS),
            table=list(scores.table) or None,
            reference=None if prep.ref_key is None else str(prep.ref_key),
            min_test_users=spec.stats.min_test_users,
            per_seed=spec.stats.per_seed,
            n_resamples=spec.stats.resamples,
            confidence=spec.stats.confidence,
            seed=spec.stats.stats_seed,
        ),
        timings=timings,
        models=models,
        seed_summary=scores.seed_summary,
    )


def job_inputs(spec: RunSpec, prep: Prepared, device: str, need_torch: bool) -> JobInputs:
    """What every job reads (shipped once per worker): one TrainSet per embedding, built once
    and sharing the event arrays, the validation check and the test batches (kept when small
    enough, else rebuilt by each job); every array read-only (``JobInputs.freeze``)."""
    inter = prep.loaded.interactions
    base = prep.split.train_set(inter, embeddings=None, seed=spec.seeds[0])
    trains: dict[str | None, TrainSet] = {None: base}
    # views, made read-only with the rest of the inputs (the prepared matrices stay as they are)
    embs = {
        n: dataclasses.replace(e, vectors=e.vectors.view(), present=e.present.view())
        for n, e in prep.embeddings.items()
    }
    for name, emb in embs.items():
        trains[name] = dataclasses.replace(base, embeddings=emb)
    if embs and not any(j.embedding for j in prep.jobs):
        trains[None] = dataclasses.replace(base, embeddings=next(iter(embs.values())))
    return JobInputs(
        spec=spec,
        device=device,
        torch_threads=_torch_threads(spec, need_torch),
        trains=trains,
        val_check=ValCheck.of(base),
        tests=TestBatches.of(inter, prep.split, spec.execution.chunk_size),
    )


def _torch_threads(spec: RunSpec, need_torch: bool) -> int | None:
    """The torch intra-op threads of every job: ``--torch-threads``, else (when a model uses
    torch, or a plugin imported it) torch's default in this process, the same number in every
    worker so that the predictions do not depend on the executor."""
    if spec.execution.torch_threads is not None:
        return spec.execution.torch_threads
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
    console = console or Console(stderr=True, emoji=False)
    # connect first (Ray: an unreachable address or a missing install fails before anything)
    with make_executor(spec.execution, console) as executor:
        return _execute(spec, console, resume, executor)


def _execute(
    spec: RunSpec, console: Console, resume: Path | None, executor: Executor
) -> RunOutcome:
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    out_dir = Path(spec.output.out) if resume is None else Path(resume).parent
    _check_out_dir(out_dir)
    prep = prepare(spec, console)
    needs = prep.memory_needs(spec.execution.chunk_size)
    memory.check_fits(needs, memory.available_bytes(), executor.copies)
    # the driver's results by run key: refused plugins, models taken back (--resume), then
    # every job as it finishes; a job without a result is pending
    results: dict[RunKey, FitResult] = dict(prep.refused)
    # torch is imported (and the device resolved) only when a torch model runs
    need_torch = any(j.capabilities.torch for j in prep.jobs if j.run_key not in results)
    if need_torch:
        import torch  # noqa: F401
    ranks = executor.ranks  # several processes plan this run (ddp): they coordinate
    device = resolve_device(spec.execution.device)
    if ranks is not None:
        device = ranks.place(device)
    inter = prep.loaded.interactions

    if resume is not None:
        path = Path(resume)
        old, notes = resume_results(
            path,
            dataset_hash=inter.hash,
            split_hash=prep.split.hash,
            queries=predictions_frame(prep, results),
        )
        started = old.raw.get("created", started)
        changed = changed_plugins((old.run_spec or {}).get("models") or [], list(spec.models))
        for label, why in changed.items():
            console.print(
                f"[yellow]note:[/] plugin {shown(label)}: {shown(why)} since the run began; its "
                "finished runs are run again"
            )
        done = {rec.key: rec for rec in old.finished() if rec.pred is not None}
        for j in prep.jobs:
            rec = done.get(j.run_key) if j.spec.label not in changed else None
            taken = None if rec is None or j.run_key in results else rec.result(j)
            if taken is not None:
                results[j.run_key] = taken
        n_done = sum(r.ok for r in results.values())
        for note in notes:
            console.print(f"[yellow]note:[/] {shown(note)}")
        console.print(
            f"resuming {shown(path.name)}: {n_done} of {len(prep.jobs)} model runs finished"
        )
        writer = ResultsWriter.resume(path)
    else:
        stem = f"{inter.name}-{started.replace(':', '').replace('-', '').replace('+0000', '')}"
        writer = ResultsWriter.new(out_dir, stem.replace("/", "_"))

    inputs = job_inputs(spec, prep, device, need_torch)
    todo = [j for j in prep.jobs if j.run_key not in results]
    if ranks is not None:
        # every process of the run takes part in the same jobs (rank 0's list, checked)
        todo = ranks.agree(todo, {"dataset": inter.hash, "split": prep.split.hash})
        if not ranks.writes:  # a rank > 0 of a data-parallel run: fit with the others, no file
            ranks.follow(run_job, inputs, todo)
            return RunOutcome(path=None, doc={}, results=(), interrupted=False)

    run_id = (old.raw.get("run_id") if resume is not None else None) or new_run_id()
    provenance = {**where_it_runs(), "run_id": run_id}  # run_id pairs the JSON and its sidecar
    timings = dict(prep.timings)

    def save(status: str) -> dict[str, Any]:
        """Score every finished model again on the run's one resampling (cheap: one column
        per model; the file on disk always carries complete intervals) and write."""
        t0 = time.perf_counter()
        scores = score(
            prep.truth, prep.split.test_user, _in_plan(prep, results), prep.ref_key, spec.stats
        )
        timings["statistics_s"] = time.perf_counter() - t0
        doc = _document(
            spec, prep, results, scores, status, started, provenance, device, executor, timings
        )
        keys = [r.key for r in predicted(prep.jobs, results)]
        writer.write(doc, keys, lambda: predictions_frame(prep, results))
        return doc

    if spec.output.save_models:
        save("incomplete")  # claims the results name: the checkpoints go beside it
        target = CheckpointTarget.of(writer.path, run_id, prep, device)
        inputs = dataclasses.replace(inputs, checkpoints=target)
    interrupted = False
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
            for job in todo:
                executor.submit(job)
            while executor.pending:
                running = executor.running()
                progress.update(
                    task,
                    description="fitting " + shown(", ".join(str(j.run_key) for j in running)),
                    state=_progress_state(executor, len(running), n_failed, len(todo)),
                )
                r = executor.next_done()
                assert isinstance(r, FitResult)
                results[r.run_key] = r
                if r.ok:
                    console.print(
                        f"  [green]ok[/] {shown(r.key)}: "
                        f"fit {r.fit_s:.2f}s, predict {r.predict_s:.2f}s"
                    )
                else:
                    n_failed += 1
                    console.print(f"  [red]failed[/] {shown(r.key)}: {shown(r.error)}")
                save("incomplete")
                progress.advance(task)
    except KeyboardInterrupt:
        interrupted = True
        executor.close(kill=True)
        for j in prep.jobs:
            results.setdefault(j.run_key, FitResult(j, Status.NOT_RUN))
        console.print("[yellow]interrupted: the finished models are kept[/]")
    timings["models_s"] = time.perf_counter() - t_models
    doc = save("incomplete" if interrupted else "complete")
    return RunOutcome(
        path=writer.path, doc=doc, results=_in_plan(prep, results), interrupted=interrupted
    )


def _in_plan(prep: Prepared, results: dict[RunKey, FitResult]) -> tuple[FitResult, ...]:
    """Every job's result in the plan's order (pending for a job without one)."""
    return tuple(results.get(j.run_key) or j.pending() for j in prep.jobs)
