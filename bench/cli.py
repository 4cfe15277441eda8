"""The `bench` command: thin click wrappers that build a run spec and call the runner."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from bench.errors import BenchError, ConfigError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console() -> Console:
    return Console(stderr=True, highlight=False)


def _out() -> Console:
    """stdout console; when piped (no terminal) use a width that fits the tables."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _fail(message: str, code: int = 2) -> None:
    _console().print(f"[bold red]error:[/] {message}")
    sys.exit(code)


def _parse_columns(text: str | None) -> dict[str, str]:
    if not text:
        return {}
    out: dict[str, str] = {}
    roles = ("user", "item", "rating", "timestamp")
    for part in text.split(","):
        role, eq, col = part.partition("=")
        role = role.strip()
        if not eq or role not in roles or not col.strip():
            raise ConfigError(
                f"--columns expects role=column pairs with roles {', '.join(roles)} "
                f"(e.g. user=uid,item=movie), got '{part}'"
            )
        out[role] = col.strip()
    return out


def _parse_scale(text: str | None) -> tuple[float, float, float | None] | None:
    if not text:
        return None
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or parts[0] >= parts[1]:
        raise ConfigError(f"--rating-scale expects LOW,HIGH[,STEP] with LOW < HIGH, got '{text}'")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def _parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        seeds = []
    if not seeds:
        raise ConfigError(f"--seeds expects comma-separated integers (e.g. 0,1,2), got '{text}'")
    return seeds


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="ratingbench")
def main() -> None:
    """Rating-prediction benchmarks on identical chronological leave-last-out splits."""


@main.command("run", context_settings=CONTEXT)
@click.option(
    "--models",
    "-m",
    default="all",
    show_default=True,
    help="Comma-separated model specs with options on the name, e.g. "
    "'user-mean,recent-k:k=10,bias'; 'all' for every registered model.",
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
    "timestamp=ts' (default userId,movieId,rating,timestamp).",
)
@click.option("--sep", default=None, help="Field separator of --ratings (default: from suffix).")
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
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or mps.")
@click.option(
    "--embedding",
    "-e",
    default=None,
    help="Movie embeddings by name or parquet file (movieId, embedding), several "
    "comma-separated for an ablation: models that use embeddings run once per "
    "embedding on the same split. Names: genre, bert, kg_gnn, kg_gnn_bert, random. "
    "Default: the dataset's own (synthetic), else kg_gnn when a model needs one.",
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
    "--check",
    type=click.Choice(["quick", "full", "none"]),
    default="quick",
    show_default=True,
    help="Conformance checks on each plugin model before benchmarking it: quick (the ones "
    "that do not fit it), full (the whole `bench check` suite on tiny synthetic data), none. "
    "A plugin that fails is recorded as failed; the other models go on.",
)
def run_cmd(**opts: Any) -> None:
    """Fit every chosen model on one split and print RMSE/MAE with bootstrap CIs."""
    from bench import api
    from bench.runner import execute

    console = _console()
    try:
        if opts["resume"] is not None:
            spec = _resume_spec(opts)
            outcome = execute(spec, console, resume=opts["resume"])
            _finish_run(outcome, spec, console, opts["make_report"])
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
            command=["bench", *sys.argv[1:]] if sys.argv else [],
            **spu,
        )
        try:
            outcome = execute(spec, console)
        except ValueError as e:
            if isinstance(e, BenchError):
                raise
            raise ConfigError(str(e)) from e
    except BenchError as e:
        _fail(str(e))
        return
    _finish_run(outcome, spec, console, opts["make_report"])


#: options that may go with --resume: where to find the data and how to read it (the data's
#: hash is verified), and --report; every other option would be ignored, so it is refused
_RESUME_OPTIONS = {"resume", "make_report", "data_dir", "offline", "no_cache"}


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
    from bench.results import load_results
    from bench.runner import RunSpec

    old = load_results(opts["resume"])
    if "run_spec" not in old:
        raise ConfigError(f"{opts['resume']}: has no run_spec to resume from")
    spec = RunSpec.from_dict(old["run_spec"], command=["bench", *sys.argv[1:]])
    spec.source = _resume_source(spec.source, opts)
    return spec


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
    ignored = [max(p.opts, key=len) for p in given if p.name not in _RESUME_OPTIONS]
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
    from bench.results import load_results
    from bench.runner import RunSpec, execute

    console = _console()
    try:
        doc = load_results(results)
        if "run_spec" not in doc:
            raise ConfigError(f"{results}: has no run_spec to rerun")
        spec = RunSpec.from_dict(doc["run_spec"], command=["bench", *sys.argv[1:]])
        if out is not None:
            spec.out_dir = out
        from predictors.registry import changed_plugins

        for label, why in changed_plugins(doc["run_spec"]["models"], spec.models).items():
            console.print(f"[yellow]warning:[/] plugin {label}: {why} since the original run")
        outcome = execute(spec, console)
        if outcome.doc["split"]["hash"] != doc["split"]["hash"]:
            console.print("[yellow]warning:[/] the split differs from the original run's")
    except BenchError as e:
        _fail(str(e))
        return
    _finish_run(outcome, spec, console, False)


@main.command("compare", context_settings=CONTEXT)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--reference", default=None, help="Reference model (default: the first run's).")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the table to this file instead of the terminal.",
)
@click.option("--resamples", type=int, default=2000, show_default=True)
@click.option(
    "--ci-method",
    default="auto",
    show_default=True,
    help="Bootstrap interval for the differences computed here (see bench run --help).",
)
@click.option(
    "--per-seed", is_flag=True, help="One row per seed, not one per model over its seeds."
)
def compare_cmd(
    files: tuple[Path, ...],
    reference: str | None,
    fmt: str,
    out: Path | None,
    resamples: int,
    ci_method: str,
    per_seed: bool,
) -> None:
    """Align models across results files scored on the same split; paired CIs."""
    from bench.compare import build_comparison, render_markdown, render_rich
    from bench.results import atomic_write, check_output_file

    try:
        if out is not None:
            check_output_file(out)  # before any work, and before the figure is written
        comp = build_comparison(
            list(files),
            reference=reference,
            n_resamples=resamples,
            method=ci_method,
            per_seed=per_seed,
        )
        if fmt == "markdown" or out is not None:
            text = render_markdown(comp)
            if out is not None:
                if len(files) > 1:
                    from bench.report import compare_figure

                    png = compare_figure(
                        list(files), out.with_name(f"{out.stem}-rmse.png"), comparison=comp
                    )
                    text += f"\n![RMSE per model across runs]({png.name})\n"
                    _console().print(f"wrote {png}")
                try:
                    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
                except OSError as e:
                    raise ConfigError(f"--out {out}: cannot write ({e.strerror})") from e
                _console().print(f"wrote {out}")
            else:
                click.echo(text, nl=False)
        else:
            console = _out()
            for t in render_rich(comp):
                console.print(t)
            for n in comp.notes:
                console.print(f"[yellow]note:[/] {n}")
    except BenchError as e:
        _fail(str(e))
    except OSError as e:  # the figure beside --out (disk full, no permission)
        _fail(f"--out {out}: cannot write the table or its figure ({e.strerror or e})")


@main.command("report", context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Report folder (default: RESULTS-stem-report/ beside the file; an existing "
    "folder is never overwritten: -2, -3... instead).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    envvar="RATINGBENCH_DATA_DIR",
    help="Folder holding extracted datasets, to reload the data for the bucket figures "
    "and examples (never downloads); env RATINGBENCH_DATA_DIR.",
)
@click.option(
    "--examples",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="Prediction examples with movie titles.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed choosing the example users and the scatter subsample.",
)
def report_cmd(
    results: Path, out: Path | None, data_dir: Path | None, examples: int, seed: int
) -> None:
    """Figures and a Markdown report (report.md) for one results file."""
    from bench.report import write_report

    try:
        md = write_report(results, out, data_dir=data_dir, examples=examples, seed=seed)
    except BenchError as e:
        _fail(str(e))
        return
    except OSError as e:
        _fail(f"cannot write the report: {e}")
        return
    _console().print(f"report: {md}")


@main.command("check", context_settings=CONTEXT)
@click.argument("models", nargs=-1, required=True)
@click.option(
    "--quick",
    is_flag=True,
    help="Only the cheap checks (the ones `bench run` runs before benchmarking a plugin).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the checks.")
def check_cmd(models: tuple[str, ...], quick: bool, seed: int) -> None:
    """Run the conformance checks the built-in models pass on MODELS (FILE.py:Class,
    package.module:Class, an entry point or a built-in name, options on the name): fit
    returns self, shape/dtype/range, determinism, batch-order and chunking invariance, no
    mutation of inputs, blindness to the future, config round trip. Exits 1 on any failure."""
    from predictors.registry import create, parse_spec
    from predictors.testing import check_predictor

    out, console = _out(), _console()
    failed = 0
    for text in models:
        try:
            spec = parse_spec(text)
            create(spec)  # unknown options and the constructor's own errors, now
        except ValueError as e:
            console.print(f"[bold red]error:[/] {text}: {e}")
            failed += 1
            continue
        report = check_predictor(functools.partial(create, spec), seed=seed, quick=quick)
        where = spec.source.describe() if spec.source is not None else "built-in"
        out.print(f"[bold]{spec.label}[/] ({where})")
        out.print(report.table(), markup=False, highlight=False, soft_wrap=True)
        if not report.passed:
            failed += 1
    if failed:
        console.print(f"[red]{failed} of {len(models)} model(s) failed the checks[/]")
        sys.exit(1)


@main.command("list", context_settings=CONTEXT)
def list_cmd() -> None:
    """Models, datasets, protocols and embeddings, one line each."""
    from bench.data.datasets import list_datasets
    from bench.data.split import PROTOCOLS
    from predictors.registry import origins

    console = _out()
    row = functools.partial(console.print, soft_wrap=True)  # one row per line, never wrapped
    console.print("[bold]models[/]")
    for name, origin, summary in origins():
        row(f"  {name:<14} {origin:<10} {summary}")
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
            f"samples_per_user={p.samples_per_user} sample_users={p.sample_users} seed={p.seed}"
        )
    from bench.embeddings import list_embeddings

    console.print("[bold]embeddings[/]")
    for name, summary in list_embeddings():
        row(f"  {name:<14} {summary}")
    row(f"  {'synthetic':<14} noisy views of the latent movie factors (with --dataset synthetic)")


if __name__ == "__main__":  # pragma: no cover
    main()
