"""The `bench` command: thin click wrappers over ``bench.api`` and the runner.

One module per family of subcommands: ``run`` (run, rerun), ``results`` (compare, report),
``info`` (check, list), ``predict``; ``common`` holds what they share, ``options`` the run
options generated from ``bench.spec``. This module holds the group and registers them.
"""

from __future__ import annotations

import click

from bench.cli import info, predict, results, run
from bench.cli.common import CONTEXT

__all__ = ["main"]


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="ratingbench")
def main() -> None:
    """Rating-prediction benchmarks on identical chronological leave-last-out splits."""


for _command in (
    run.run_cmd,
    run.rerun_cmd,
    results.compare_cmd,
    results.report_cmd,
    info.check_cmd,
    info.list_cmd,
    predict.predict_cmd,
):
    main.add_command(_command)

if __name__ == "__main__":  # pragma: no cover
    main()
