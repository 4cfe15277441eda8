"""How a model's failure reads in its result: what it raised, whatever it was (``SystemExit``
and every other ``BaseException`` included), and for a write into an array every model of
the run is handed, which array it was and the model's own line."""

from __future__ import annotations

import dataclasses
import linecache
import re
import traceback
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import Any

import numpy as np

__all__ = ["failure_text"]

#: the libraries a model's write goes through: the model's own line is the innermost other
LIBRARIES = frozenset({"numpy", "pandas", "scipy", "torch", "sklearn", "numba"})


def failure_text(e: BaseException, handed: Mapping[str, Any]) -> str:
    """One line on what the model raised. ``handed``: what the model was given, by the name
    the message uses (``train``: the TrainSet, ``queries``: the batch being predicted); a
    write into one of their arrays is named as such, with the model's line that did it."""
    if isinstance(e, SystemExit):
        return f"SystemExit: the model called sys.exit({e.code!r}), which would have ended the run"
    wrote = _read_only_write(e, handed)
    if wrote is not None:
        return wrote
    return f"{type(e).__name__}: {e}" if str(e) else f"{type(e).__name__} raised by the model"


def _arrays(name: str, value: Any, depth: int = 4) -> Iterator[tuple[str, np.ndarray]]:
    """(expression, array) of every array reachable from ``value`` through dataclass fields."""
    if isinstance(value, np.ndarray):
        yield name, value
    elif depth and dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _arrays(f"{name}.{f.name}", getattr(value, f.name), depth - 1)


def _locals(frame: FrameType) -> Iterator[tuple[str, np.ndarray]]:
    """The arrays a frame can name: its locals, their fields, and ``self``'s attributes."""
    for name, value in frame.f_locals.items():
        yield from _arrays(name, value)
        if name == "self" and hasattr(value, "__dict__"):
            for attr, v in vars(value).items():
                yield from _arrays(f"self.{attr}", v, 2)


def _user_frame(e: BaseException) -> tuple[FrameType, int] | None:
    """The innermost frame of the traceback that is not in a library (the model's line)."""
    found = None
    for frame, lineno in traceback.walk_tb(e.__traceback__):
        module = str(frame.f_globals.get("__name__", ""))
        if module.partition(".")[0] not in LIBRARIES:
            found = frame, lineno
    return found


def _read_only_write(e: BaseException, handed: Mapping[str, Any]) -> str | None:
    if not isinstance(e, ValueError) or "read-only" not in str(e):
        return None
    where = _user_frame(e)
    if where is None:
        return None
    frame, lineno = where
    line = linecache.getline(frame.f_code.co_filename, lineno).strip()
    named = [pair for root, obj in handed.items() for pair in _arrays(root, obj)]

    def input_of(expr: str, a: np.ndarray) -> str | None:
        # the model's own name for it when that is one (the arrays may be shared), else the
        # first that is this array, else the first it is a view of
        for match in (lambda n, b: n == expr and b is a, lambda n, b: b is a, np.may_share_memory):
            name = next((n for n, b in named if match(n, b)), None)
            if name is not None:
                return name
        return None

    found: list[tuple[str, str]] = []  # (expression in the model's code, input's name)
    for expr, a in _locals(frame):
        name = None if a.flags.writeable else input_of(expr, a)
        if name is not None:
            found.append((expr, name))
    on_line = [
        (expr, name)
        for expr, name in found
        if re.search(rf"(?<![\w.]){re.escape(expr)}(?!\w)", line)
    ]
    at = f"at {frame.f_code.co_filename}:{lineno}: {line}"
    if on_line:
        expr, name = max(on_line, key=lambda p: len(p[0]))
    elif len({name for _, name in found}) == 1:
        expr, name = found[0]
    else:
        return f"{type(e).__name__}: {e} (the model wrote into an array it was handed, {at})"
    return (
        f"ReadOnlyInput: the model wrote into {name}, which every model of the run is handed "
        f"read-only (copy it first, e.g. np.array({expr}), and change the copy), {at}"
    )
