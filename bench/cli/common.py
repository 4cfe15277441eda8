"""What the subcommands of ``bench`` share: the click context settings, the consoles and
the one-line error."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from rich.console import Console

from bench.errors import BenchError
from bench.text import shown

__all__ = ["CONTEXT", "PIPED_WIDTH", "_console", "_fail", "_out", "_writing", "out_width"]

T = TypeVar("T")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _console() -> Console:
    return Console(stderr=True, highlight=False, emoji=False)


PIPED_WIDTH = 120  # stdout's width when it is no terminal and COLUMNS does not say


def out_width() -> int | None:
    """The width of stdout's console: the terminal's (None: rich asks it, and honours
    ``COLUMNS``), else ``COLUMNS`` when it is a positive number, else ``PIPED_WIDTH``."""
    if sys.stdout.isatty():
        return None
    columns = os.environ.get("COLUMNS", "").strip()
    return int(columns) if columns.isdigit() and int(columns) > 0 else PIPED_WIDTH


def _out() -> Console:
    """stdout console (its width: ``out_width``)."""
    return Console(highlight=False, emoji=False, width=out_width())


def _fail(message: str, code: int = 2) -> NoReturn:
    """Print the one-line error (its text as text: "[ray]" is not rich markup) and exit."""
    _console().print(f"[bold red]error:[/] {shown(message)}")
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
