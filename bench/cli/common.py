"""What the subcommands of ``bench`` share: the click context settings, the consoles and
the one-line error."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

from rich.console import Console
from rich.markup import escape

from bench.errors import BenchError

__all__ = ["CONTEXT", "_console", "_fail", "_out", "_writing"]

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
