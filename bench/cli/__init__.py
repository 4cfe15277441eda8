"""The `bench` command: thin click wrappers over ``bench.api`` and the runner.

One module per family of subcommands: ``run`` (run, rerun), ``results`` (compare, report),
``info`` (check, list). This module holds the group and the shared parsers of option text.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import click
from rich.console import Console
from rich.markup import escape

from bench.errors import BenchError, ConfigError

T = TypeVar("T")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console() -> Console:
    return Console(stderr=True, highlight=False)


def _out() -> Console:
    """stdout console; when piped (no terminal) use a width that fits the tables."""
    return Console(highlight=False, width=None if sys.stdout.isatty() else 120)


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print the one-line error (its text as text: "[ray]" is not rich markup) and exit."""
    _console().print(f"[bold red]error:[/] {escape(message)}")
    sys.exit(code)


def _writing(what: str, write: Callable[[], T]) -> T:
    """``write()``, with a ``BenchError`` or an ``OSError`` turned into the one-line error
    (``what``: the option or thing being written, e.g. "--out FILE")."""
    try:
        return write()
    except BenchError as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{what}: cannot write ({e.strerror or e})")


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


# the subcommands register themselves on ``main``
from bench.cli import info, predict, results, run  # noqa: E402, F401

if __name__ == "__main__":  # pragma: no cover
    main()
