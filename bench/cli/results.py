"""`bench compare` and `bench report`: tables, figures and reports from results files."""

from __future__ import annotations

from pathlib import Path

import click

from bench.cli.common import CONTEXT, _console, _fail, _out, _writing
from bench.errors import BenchError, ConfigError
from bench.spec import Statistics
from bench.text import shown


@click.command("compare", context_settings=CONTEXT)
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
@click.option("--resamples", type=int, default=Statistics.resamples, show_default=True)
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
    from bench.compare import build_comparison, render_markdown
    from bench.fileio import atomic_write, check_output_file

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
                    _console().print(f"wrote {shown(png)}")
                try:
                    atomic_write(out, lambda tmp: tmp.write_text(text, encoding="utf-8"))
                except OSError as e:
                    raise ConfigError(f"--out {out}: cannot write ({e.strerror})") from e
                _console().print(f"wrote {shown(out)}")
            else:
                click.echo(text, nl=False)
        else:
            from bench.tables import print_comparison

            console = _out()
            print_comparison(console, comp)
            for n in comp.notes:
                console.print(f"[yellow]note:[/] {shown(n)}")
    except BenchError as e:
        _fail(str(e))
    except OSError as e:  # the figure beside --out (disk full, no permission)
        _fail(f"--out {out}: cannot write the table or its figure ({e.strerror or e})")


@click.command("report", context_settings=CONTEXT)
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

    md = _writing(
        "the report",
        lambda: write_report(results, out, data_dir=data_dir, examples=examples, seed=seed),
    )
    _console().print(f"report: {shown(md)}")
