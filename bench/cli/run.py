"""`bench run` and `bench rerun`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.cli import (
    CONTEXT,
    _console,
    _fail,
    _out,
    _parse_columns,
    _parse_scale,
    _parse_seeds,
    main,
)
from bench.errors import BenchError, ConfigError


@main.command("run", context_settings=CONTEXT)
@click.option(
    "--models",
    "-m",
    default="all",
    show_default=True,
    help="Comma-separated model specs with options on the name, e.g. "
    "'user-mean,recent-k:k=10,bias'; 'all' for every built-in model; your own as "
    "FILE.py:Class[:opt=v] or package.module:Class; a library's as surprise:SVD or "
    "cornac:MF (with the surprise / cornac extra).",
)
@click.option(
    "--dataset",
    "-d",
    default=None,
    help="A catalog dataset (see `bench list`) or 'synthetic'. "
    "Default: ml-latest-small (unless --ratings is given).",
)
@click.option(
    "--ratings",
    type=click.Path(path_type=Path),
    default=None,
    help="Any ratings table: .csv, .tsv, '::'-separated .dat, or .parquet.",
)
@click.option(
    "--catalog",
    type=click.Path(path_type=Path),
    default=None,
    help="Optional movie catalog for --ratings (movieId,title,genres).",
)
@click.option(
    "--columns",
    default=None,
    help="Column names of --ratings, e.g. 'user=uid,item=movie,rating=stars,"
    "timestamp=ts' (default userId,movieId,rating,timestamp), or positions for a file "
    "without a header: 'user=0,item=1,rating=2,timestamp=3'.",
)
@click.option("--sep", default=None, help="Field separator of --ratings (default: from suffix).")
@click.option(
    "--header/--no-header",
    default=None,
    help="Whether the first line of --ratings names its columns (default: told from that "
    "line, and announced). With --no-header, --columns gives positions: "
    "user=0,item=1,rating=2,timestamp=3.",
)
@click.option(
    "--time-unit",
    type=click.Choice(["s", "ms", "us", "ns"]),
    default=None,
    help="Unit of integer timestamps (default: told from their magnitude, and announced).",
)
@click.option(
    "--rating-scale",
    default=None,
    help="LOW,HIGH[,STEP] (default: from the dataset manifest or the data).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="RATINGBENCH_DATA_DIR",
    help="Folder holding extracted datasets (e.g. DIR/ml-latest-small/); env RATINGBENCH_DATA_DIR.",
)
@click.option("--offline", is_flag=True, help="Never download; use local copies only.")
@click.option(
    "--no-cache",
    is_flag=True,
    help="Parse the ratings again instead of reusing the verified binary cache.",
)
@click.option(
    "--users",
    type=click.IntRange(min=10),
    default=2000,
    show_default=True,
    help="Synthetic dataset: number of users (200000 = the notebook's full scale).",
)
@click.option(
    "--data-seed", type=int, default=0, show_default=True, help="Synthetic dataset: generator seed."
)
@click.option(
    "--protocol",
    type=click.Choice(["default", "notebook"]),
    default="default",
    show_default=True,
    help="Split preset; 'notebook' samples 2,000 users with seed 42 as the notebook did.",
)
@click.option("--min-history", type=int, default=None, help="Users need min_history+1 events (10).")
@click.option("--max-history", type=int, default=None, help="Model history window (30).")
@click.option(
    "--samples-per-user",
    default=None,
    help="Training targets per user, evenly spaced, or 'all' (5).",
)
@click.option(
    "--sample-users", type=int, default=None, help="Keep N users, drawn with --split-seed."
)
@click.option("--split-seed", type=int, default=None, help="Seed of the user sample (42).")
@click.option(
    "--test-targets",
    type=int,
    default=1,
    show_default=True,
    help="Each user's last N events are test targets, each predicted from its full past; "
    "users need min_history + N events. Intervals resample users.",
)
@click.option(
    "--seed",
    "--seeds",
    "seeds",
    default="0",
    show_default=True,
    help="Model seed(s), comma-separated: each model runs once per seed.",
)
@click.option(
    "--reference",
    default="user-mean",
    show_default=True,
    help="Model the paired differences are taken against.",
)
@click.option(
    "--resamples",
    type=int,
    default=2000,
    show_default=True,
    help="Bootstrap resamples for the confidence intervals.",
)
@click.option("--confidence", type=float, default=0.95, show_default=True)
@click.option(
    "--min-test-users",
    type=int,
    default=20,
    show_default=True,
    help="Below this many test users no difference gets a verdict ('too few queries').",
)
@click.option(
    "--per-seed",
    is_flag=True,
    help="With several seeds, one verdict per seed (the table per run) instead of one per "
    "model that accounts for the seeds.",
)
@click.option(
    "--ci-method",
    default="auto",
    show_default=True,
    help="Bootstrap interval: bca, percentile, basic, normal or auto (BCa up to 5,000 test "
    "queries, exact percentile up to 50,000, the Gaussian limit of the bootstrap above; "
    "docs/statistics.md).",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=Path("results"),
    show_default=True,
    help="Folder for the results JSON and predictions sidecar.",
)
@click.option(
    "--chunk-size",
    type=int,
    default=50_000,
    show_default=True,
    help="Test queries per predict call (bounds memory).",
)
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:N or mps.")
@click.option(
    "--embedding",
    "-e",
    default=None,
    help="Movie embeddings by name, parquet file (movieId, embedding) or your own function "
    "(FILE.py:build or package.module:build, given the catalog), several comma-separated for "
    "an ablation: models that use embeddings run once per embedding on the same split. "
    "Names: genre, bert, kg_gnn, kg_gnn_bert, random. Default: the dataset's own "
    "(synthetic), else kg_gnn when a model needs one.",
)
@click.option(
    "--embedding-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder where NAME resolves to emb_NAME.parquet before the builders.",
)
@click.option(
    "--missing-embedding",
    type=click.Choice(["drop", "zero", "mean"]),
    default="drop",
    show_default=True,
    help="Movies without an embedding: drop their ratings before splitting (as the "
    "notebook did), or give them a zero / mean vector.",
)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Finish an interrupted run from its results JSON (same data, split and predictions "
    "sidecar, verified); every setting comes from that file, so only --data-dir, --offline, "
    "--no-cache and --report may go with it.",
)
@click.option(
    "--report",
    "make_report",
    is_flag=True,
    help="Also write a report folder (figures + report.md) beside the results.",
)
@click.option(
    "--blas-threads",
    type=click.IntRange(min=0),
    default=1,
    show_default=True,
    help="BLAS threads while a model runs (0: the library default).",
)
@click.option(
    "--save-models",
    is_flag=True,
    help="Save every fitted model beside the results (RESULTS.models/KEY/, a safe format: "
    "JSON + .npz) for `bench predict`; a model that cannot be saved is noted and the run goes on.",
)
@click.option(
    "--check",
    type=click.Choice(["quick", "full", "none"]),
    default="quick",
    show_default=True,
    help="Conformance checks on each plugin model before benchmarking it: quick (the ones "
    "that do not fit it), full (the whole `bench check` suite on tiny synthetic data), none. "
    "A plugin that fails is recorded as failed; the other models go on.",
)
@click.option(
    "--jobs",
    "-j",
    type=int,
    default=1,
    show_default=True,
    help="Jobs (model, embedding, seed) run at once: N > 1 runs them in N local worker "
    "processes; with --executor ray, at most N tasks at a time. The results do not depend on it.",
)
@click.option(
    "--executor",
    default=None,
    help="Where the jobs run: serial (one after another here), processes (--jobs N worker "
    "processes), ray (a local Ray instance, or --ray-address; needs the ray extra) or ddp "
    "(the ranks of a torchrun job; see --ddp). "
    "Default: processes when --jobs > 1, else serial.",
)
@click.option(
    "--ray-address",
    default=None,
    help="With --executor ray: an existing cluster (HOST:PORT, ray://HOST:PORT or auto) "
    "instead of a local instance.",
)
@click.option(
    "--torch-threads",
    type=int,
    default=None,
    help="Torch intra-op threads in every job (default: torch's default on this machine, the "
    "same in every worker, so that the predictions do not depend on --jobs).",
)
@click.option(
    "--ddp",
    type=int,
    default=None,
    help="Train each torch model (attention, transformer, ...) data-parallel on N processes "
    "of this machine: launches torchrun (DistributedDataParallel; gloo on CPU, nccl and one "
    "GPU per process on CUDA); the other models are fitted by rank 0. Several machines: run "
    "`torchrun ... -m bench.cli run ...` yourself.",
)
def run_cmd(**opts: Any) -> None:
    """Fit every chosen model on one split and print RMSE/MAE with bootstrap CIs."""
    from bench import api
    from bench.cli import ddp

    rank = ddp.rank()
    console = _console() if not rank else Console(stderr=True, quiet=True)
    if opts["ddp"] is not None and opts["ddp"] < 1:
        _fail(f"--ddp must be an integer >= 1 (processes), got {opts['ddp']}")
    launch = opts["ddp"] is not None and rank is None  # else: already a rank, or no --ddp
    if launch or rank is not None:
        if opts["executor"] not in (None, "ddp"):
            _fail(
                f"--executor {opts['executor']} with --ddp or under torchrun: the ranks are "
                "the executor"
            )
        opts["executor"] = "ddp"
    try:
        if opts["resume"] is not None:
            spec = _resume_spec(opts)
            if launch:
                ddp.launch(opts["ddp"], console)
            outcome = api.execute_spec(spec, console, resume=opts["resume"])
            ddp.finish(lambda: _finish_run(outcome, spec, console, opts["make_report"]))
            return
        spu = {}
        if opts["samples_per_user"] is not None:
            spu = {"samples_per_user": _parse_samples_per_user(opts["samples_per_user"])}
        spec = api.make_spec(
            opts["models"],
            dataset=opts["dataset"],
            ratings=opts["ratings"],
            catalog=opts["catalog"],
            columns=_parse_columns(opts["columns"]),
            sep=opts["sep"],
            header=opts["header"],
            time_unit=opts["time_unit"],
            rating_scale=_parse_scale(opts["rating_scale"]),
            data_dir=opts["data_dir"],
            offline=opts["offline"],
            cache=not opts["no_cache"],
            users=opts["users"],
            data_seed=opts["data_seed"],
            protocol=opts["protocol"],
            min_history=opts["min_history"],
            max_history=opts["max_history"],
            sample_users=opts["sample_users"],
            split_seed=opts["split_seed"],
            test_targets=opts["test_targets"],
            seeds=_parse_seeds(opts["seeds"]),
            reference=opts["reference"],
            resamples=opts["resamples"],
            confidence=opts["confidence"],
            ci_method=opts["ci_method"],
            min_test_users=opts["min_test_users"],
            per_seed=opts["per_seed"],
            out=opts["out"],
            chunk_size=opts["chunk_size"],
            device=opts["device"],
            embeddings=opts["embedding"] or "",
            embedding_dir=opts["embedding_dir"],
            missing_embedding=opts["missing_embedding"],
            blas_threads=opts["blas_threads"] or None,
            check=opts["check"],
            save_models=opts["save_models"],
            executor=opts["executor"],
            jobs=opts["jobs"],
            ray_address=opts["ray_address"],
            torch_threads=opts["torch_threads"],
            command=["bench", *sys.argv[1:]] if sys.argv else [],
            **spu,
        )
        if launch:  # every option checked here first: a bad one fails once, before torchrun
            ddp.launch(opts["ddp"], console)
        outcome = api.execute_spec(spec, console)
    except BenchError as e:
        message = str(e)
        if rank:
            _fail(f"(rank {rank}) {message}")
        ddp.finish(lambda: _fail(message))  # rank 0 under the launcher: its status handed back
        return
    ddp.finish(lambda: _finish_run(outcome, spec, console, opts["make_report"]))


#: options that may go with --resume: where to find the data and how to read it (the data's
#: hash is verified), --report, and where the jobs run (the results do not depend on it);
#: every other option would be ignored, so it is refused
_RESUME_OPTIONS = {"resume", "make_report", "data_dir", "offline", "no_cache"}
_RESUME_EXECUTOR = {"jobs", "executor", "ray_address", "ddp"}


def _parse_samples_per_user(text: str) -> int | None:
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError as e:
        raise ConfigError(
            f"--samples-per-user must be an integer >= 1 or 'all', got '{text}'"
        ) from e


def _resume_spec(opts: dict[str, Any]) -> Any:
    """The spec of the run ``--resume`` finishes: every setting from its results file."""
    import dataclasses

    from bench import api

    spec = api.recorded_spec(opts["resume"], command=["bench", *sys.argv[1:]])
    spec = _not_ddp_here(spec)
    if _given(click.get_current_context()) & _RESUME_EXECUTOR or opts["executor"] == "ddp":
        executor = opts["executor"]  # the resumed part's executor
        if executor is None:
            executor = "processes" if opts["jobs"] != 1 else "serial"
        spec = dataclasses.replace(
            spec, executor=executor, jobs=opts["jobs"], ray_address=opts["ray_address"]
        )
    spec.source = _resume_source(spec.source, opts)
    return spec


def _not_ddp_here(spec: Any) -> Any:
    """A recorded spec of a data-parallel run, to run again outside torchrun: serial here
    (the results do not depend on the executor, up to float rounding)."""
    import dataclasses

    from bench.executors import under_torchrun

    if spec.executor == "ddp" and not under_torchrun():
        return dataclasses.replace(spec, executor="serial", jobs=1)
    return spec


def _given(ctx: click.Context) -> set[str]:
    """The parameters given on the command line."""
    return {
        p.name
        for p in ctx.command.params
        if p.name is not None
        and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE
    }


def _resume_source(source: Any, opts: dict[str, Any]) -> Any:
    """The resumed run's data source with --data-dir/--offline/--no-cache applied; raises
    ``ConfigError`` naming every other option given, which --resume would ignore."""
    import dataclasses

    ctx = click.get_current_context()
    given = [
        p
        for p in ctx.command.params
        if p.name is not None
        and ctx.get_parameter_source(p.name) == click.core.ParameterSource.COMMANDLINE
    ]
    allowed = _RESUME_OPTIONS | _RESUME_EXECUTOR
    ignored = [max(p.opts, key=len) for p in given if p.name not in allowed]
    if ignored:
        raise ConfigError(
            f"--resume takes every setting from {opts['resume']}; these options would be "
            f"ignored: {', '.join(ignored)} (leave them out, or use `bench rerun` / a new run)"
        )
    changes: dict[str, Any] = {"download": source.download and not opts["offline"]}
    if opts["no_cache"]:
        changes["cache"] = False
    if opts["data_dir"] is not None and source.dataset is not None:
        changes["data_dir"] = opts["data_dir"]
    return dataclasses.replace(source, **changes)


def _finish_run(outcome: Any, spec: Any, console: Console, make_report: bool) -> None:
    from bench.compare import build_comparison, render_rich
    from bench.results import ResultsDoc

    out = _out()
    comp = build_comparison(
        [ResultsDoc.of(outcome.path, outcome.doc)],
        n_resamples=spec.n_resamples,
        per_seed=spec.per_seed,
    )
    for table in render_rich(comp):
        out.print(table)
    for r in outcome.runs:
        for f in r.flags:
            console.print(f"[yellow]warning[/]: {r.key}: {f}")
        for n in r.notes:
            console.print(f"note: {r.key}: {n}")
    console.print(f"results: {outcome.path}")
    if make_report:
        from bench.report import write_report

        try:
            data_dir = getattr(spec.source, "data_dir", None)
            console.print(f"report: {write_report(outcome.path, data_dir=data_dir)}")
        except (BenchError, OSError) as e:
            console.print(f"[yellow]report not written:[/] {e}")
    if outcome.interrupted:
        console.print(
            "[yellow]run interrupted: results marked incomplete; finish it with "
            f"`bench run --resume {outcome.path}`[/]"
        )
        sys.exit(130)
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} model(s) failed:[/] "
            + ", ".join(r.key for r in outcome.failed)
        )
        sys.exit(1)


@main.command("rerun", context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Folder for the new results (default: the original run's).",
)
def rerun_cmd(results: Path, out: Path | None) -> None:
    """Run again exactly what RESULTS.json ran (same data, split, models, seeds): a new file."""
    from bench import api
    from bench.results import load_results
    from bench.runner import RunSpec

    console = _console()
    try:
        doc = load_results(results)
        if "run_spec" not in doc:
            raise ConfigError(f"{results}: has no run_spec to rerun")
        spec = _not_ddp_here(RunSpec.from_dict(doc["run_spec"], command=["bench", *sys.argv[1:]]))
        if out is not None:
            spec.out_dir = out
        from predictors.registry import changed_plugins

        for label, why in changed_plugins(doc["run_spec"]["models"], spec.models).items():
            console.print(f"[yellow]warning:[/] plugin {label}: {why} since the original run")
        outcome = api.execute_spec(spec, console)
        if outcome.doc["split"]["hash"] != doc["split"]["hash"]:
            console.print("[yellow]warning:[/] the split differs from the original run's")
        then_hash, now_hash = doc["dataset"].get("hash"), outcome.doc["dataset"].get("hash")
        if then_hash != now_hash:
            console.print(
                "[yellow]warning:[/] the data changed since the original run (dataset hash "
                f"{then_hash} then, {now_hash} now)"
            )
        then, now = ((d["dataset"].get("origin") or {}).get("folder") for d in (doc, outcome.doc))
        if then and now and then != now:
            console.print(f"note: the data moved: the original run read {then}, this one {now}")
    except BenchError as e:
        _fail(str(e))
        return
    _finish_run(outcome, spec, console, False)
