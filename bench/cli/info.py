"""`bench check` (the conformance suite on a model) and `bench list` (what there is)."""

from __future__ import annotations

import functools
import sys

import click

from bench.cli.common import (
    CONTEXT,
    _console,
    _out,
)
from bench.text import shown


@click.command("check", context_settings=CONTEXT)
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--quick",
    is_flag=True,
    help="Only the cheap checks (the ones `bench run` runs before benchmarking a plugin).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the checks.")
@click.option(
    "--check",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this check (repeatable); the names are the table's first column.",
)
def check_cmd(models: tuple[str, ...], quick: bool, seed: int, only: tuple[str, ...]) -> None:
    """Run the conformance checks the built-in models pass on MODELS (FILE.py:Class,
    package.module:Class, an entry point or a built-in name, options on the name): fit
    returns self, shape/dtype/range, no mutation of inputs, no global RNG, generators seeded
    from the run's seed, determinism, a seeded model declared, batch-order and chunking
    invariance, blindness to the future, config round trip. A failure that follows from
    another is marked "knock-on of <check>". Exits 1 on any failure."""
    from predictors.registry import create, parse_spec
    from predictors.testing import CHECKS, check_predictor

    out, console = _out(), _console()
    unknown = [c for c in only if c not in CHECKS]
    if unknown:
        raise click.BadParameter(
            f"unknown check(s) {', '.join(unknown)}; checks: {', '.join(CHECKS)}",
            param_hint="--check",
        )
    failed = 0
    for text in models:
        try:
            spec = parse_spec(text)
            create(spec)  # unknown options and the constructor's own errors, now
        except ValueError as e:
            console.print(f"[bold red]error:[/] {shown(text)}: {shown(e)}")
            failed += 1
            continue
        report = check_predictor(
            functools.partial(create, spec), seed=seed, quick=quick, checks=only or None
        )
        where = spec.source.describe() if spec.source is not None else "built-in"
        out.print(f"[bold]{shown(spec.label)}[/] ({shown(where)})")
        out.print(report.table(), markup=False, highlight=False, soft_wrap=True)
        if not report.passed:
            failed += 1
            out.print(report.summary(), markup=False, highlight=False, soft_wrap=True)
    if failed:
        console.print(f"[red]{failed} of {len(models)} model(s) failed the checks[/]")
        sys.exit(1)


@click.command("list", context_settings=CONTEXT)
def list_cmd() -> None:
    """Models, datasets, protocols and embeddings, one line each."""
    from bench.data.manifest import list_datasets
    from bench.data.split import PROTOCOLS
    from predictors.registry import origins

    console = _out()
    # one row per line, never wrapped; rows are plain text ("[surprise]" is not markup)
    row = functools.partial(console.print, soft_wrap=True, markup=False)
    console.print("[bold]models[/]")
    for name, origin, summary in origins():
        row(f"  {name:<21} {origin:<10} {summary}")
    console.print("[bold]datasets[/]")
    for m in list_datasets():
        row(f"  {m.name:<16} {m.description}")
    row(
        f"  {'synthetic':<16} generated: users with tastes, drift and sessions "
        "(--users N, --data-seed S)"
    )
    console.print("[bold]protocols[/]")
    for name, p in PROTOCOLS.items():
        row(
            f"  {name:<10} min_history={p.min_history} max_history={p.max_history} "
            f"samples_per_user={p.samples_per_user} sample_users={p.sample_users} "
            f"seed={p.split_seed}"
        )
    from bench.embeddings import list_embeddings

    console.print("[bold]embeddings[/]")
    for name, summary in list_embeddings():
        row(f"  {name:<14} {summary}")
    row(f"  {'synthetic':<14} noisy views of the latent movie factors (with --dataset synthetic)")
