"""`bench run` and `bench rerun`."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.cli.common import CONTEXT, _console, _fail, _out
from bench.cli.options import given, run_options
from bench.declare import IgnoredOptions, resume_changes
from bench.errors import BenchError, ConfigError
from bench.spec import RunSpec, not_ddp_here
from bench.text import shown


@click.command("run", context_settings=CONTEXT)
@run_options(RunSpec)
@click.option(
    "--resume",
    type=click.Path(path_type=Path),
    default=None,
    help="Finish an interrupted run from its results JSON (same data, split and predictions "
    "sidecar, verified); every setting comes from that file, so only the options that say "
    "where to find the data and where the jobs run, --report and --ddp may go with it.",
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
@click.pass_context
def run_cmd(ctx: click.Context, resume: Path | None, ddp: int | None, **_: Any) -> None:
    """Fit every chosen model on one split and print RMSE/MAE with bootstrap CIs."""
    import bench.cli.ddp as ranks
    from bench import api

    rank = ranks.rank()
    console = _console() if not rank else Console(stderr=True, quiet=True, emoji=False)
    if ddp is not None and ddp < 1:
        _fail(f"--ddp must be an integer >= 1 (processes), got {ddp}")
    choices = given(ctx, RunSpec)
    launch = ddp is not None and rank is None  # else: already a rank, or no --ddp
    if launch or rank is not None:
        if choices.get("executor", "ddp") != "ddp":
            _fail(
                f"--executor {choices['executor']} with --ddp or under torchrun: the ranks "
                "are the executor"
            )
        choices["executor"] = "ddp"
    command = ("bench", *sys.argv[1:]) if sys.argv else ()
    try:
        if resume is not None:
            spec = _resume_spec(resume, choices, command)
        else:
            spec = api.make_spec(choices.pop("models", "all"), **choices, command=command)
        if launch:  # every option checked here first: a bad one fails once, before torchrun
            ranks.launch(ddp, console)  # type: ignore[arg-type]
        outcome = api.execute_spec(spec, console, resume=resume)
    except BenchError as e:
        message = str(e)
        if rank:
            _fail(f"(rank {rank}) {message}")
        ranks.finish(lambda: _fail(message))  # rank 0 under the launcher: its status handed back
        return
    ranks.finish(lambda: _finish_run(outcome, spec, console))


def _resume_spec(path: Path, choices: dict[str, Any], command: tuple[str, ...]) -> RunSpec:
    """The spec of the run ``--resume`` finishes: every setting from its results file, with
    the resumable options given now (``bench.declare.resume_changes``); ``ConfigError``
    names any other option given, which --resume would ignore, or a bad value."""
    from bench import api

    spec = not_ddp_here(api.recorded_spec(path, command=list(command)))
    try:
        return resume_changes(RunSpec, spec, choices)
    except IgnoredOptions as e:
        raise ConfigError(
            f"--resume takes every setting from {path}; {e} (leave them out, or use "
            "`bench rerun` / a new run)"
        ) from e


def _finish_run(outcome: Any, spec: RunSpec, console: Console) -> None:
    from bench.compare import build_comparison
    from bench.results import ResultsDoc
    from bench.tables import print_comparison

    out = _out()
    comp = build_comparison(
        [ResultsDoc.of(outcome.path, outcome.doc)],
        n_resamples=spec.stats.resamples,
        per_seed=spec.stats.per_seed,
    )
    print_comparison(out, comp)
    for r in outcome.results:
        for f in r.flags:
            console.print(f"[yellow]warning[/]: {shown(r.key)}: {shown(f)}")
        for n in r.notes:
            console.print(f"note: {shown(r.key)}: {shown(n)}")
    console.print(f"results: {shown(outcome.path)}")
    if spec.output.report:
        from bench.report import write_report

        try:
            report = write_report(outcome.path, data_dir=spec.source.data_dir)
            console.print(f"report: {shown(report)}")
        except (BenchError, OSError) as e:
            console.print(f"[yellow]report not written:[/] {shown(e)}")
    if outcome.interrupted:
        console.print(
            "[yellow]run interrupted: results marked incomplete; finish it with "
            f"`bench run --resume {shown(outcome.path)}`[/]"
        )
        sys.exit(130)
    if outcome.failed:
        console.print(
            f"[red]{len(outcome.failed)} model(s) failed:[/] "
            + shown(", ".join(r.key for r in outcome.failed))
        )
        sys.exit(1)


@click.command("rerun", context_settings=CONTEXT)
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

    console = _console()
    try:
        doc = load_results(results)
        if "run_spec" not in doc:
            raise ConfigError(f"{results}: has no run_spec to rerun")
        spec = not_ddp_here(RunSpec.from_dict(doc["run_spec"], command=["bench", *sys.argv[1:]]))
        if out is not None:
            spec = dataclasses.replace(spec, output=dataclasses.replace(spec.output, out=out))
        from predictors.registry import changed_plugins

        for label, why in changed_plugins(doc["run_spec"]["models"], spec.models).items():
            console.print(
                f"[yellow]warning:[/] plugin {shown(label)}: {shown(why)} since the original run"
            )
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
            console.print(
                f"note: the data moved: the original run read {shown(then)}, this one {shown(now)}"
            )
    except BenchError as e:
        _fail(str(e))
        return
    _finish_run(outcome, spec, console)  # the same run again: its report too, when it had one
