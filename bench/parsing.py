"""Run options given as text (the command line, an experiment file) read into values: the
parsers that ``bench.spec``'s declarations name. Each raises ``ValueError`` whose message
starts with the flag and says what was expected (``bench.declare`` makes it a ``ConfigError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "columns",
    "int_or_all",
    "models",
    "names",
    "rating_scale",
    "seeds",
    "threads_or_default",
]

ROLES = ("user", "item", "rating", "timestamp")


def columns(text: str) -> dict[str, str]:
    """'user=uid,item=movie' -> {"user": "uid", "item": "movie"} (positions for headerless
    files: 'user=0,item=1')."""
    out: dict[str, str] = {}
    if not text:
        return out
    for part in text.split(","):
        role, eq, col = part.partition("=")
        role = role.strip()
        if not eq or role not in ROLES or not col.strip():
            raise ValueError(
                f"--columns expects role=column pairs with roles {', '.join(ROLES)} "
                f"(e.g. user=uid,item=movie), got '{part}'"
            )
        out[role] = col.strip()
    return out


def rating_scale(text: str) -> tuple[float, float, float | None] | None:
    """'LOW,HIGH[,STEP]' -> (low, high, step or None)."""
    if not text:
        return None
    try:
        parts = [float(x) for x in text.split(",")]
    except ValueError:
        parts = []
    if len(parts) not in (2, 3) or parts[0] >= parts[1]:
        raise ValueError(f"--rating-scale expects LOW,HIGH[,STEP] with LOW < HIGH, got '{text}'")
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def scale_value(v: Any) -> tuple[float, float, float | None]:
    """A scale given as a sequence (the API, a record) -> (low, high, step or None)."""
    t = tuple(v)
    return (t[0], t[1], t[2] if len(t) > 2 else None)


def seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2)."""
    try:
        out = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        out = ()
    if not out:
        raise ValueError(f"--seeds expects comma-separated integers (e.g. 0,1,2), got '{text}'")
    return out


def int_or_all(text: str) -> int | None:
    """'all' -> None (every position), else an integer (``--samples-per-user``)."""
    if text == "all":
        return None
    try:
        return int(text)
    except ValueError as e:
        raise ValueError(
            f"--samples-per-user must be an integer >= 1 or 'all', got '{text}'"
        ) from e


def threads_or_default(text: str) -> int | None:
    """'0' -> None (the library's default), else a count (``--blas-threads``)."""
    try:
        n = int(text)
    except ValueError as e:
        raise ValueError(f"--blas-threads must be an integer >= 0, got '{text}'") from e
    return n or None


def names(text: str | Sequence[str]) -> tuple[str, ...]:
    """'a,b' or ['a', 'b'] -> ('a', 'b') (empty parts dropped)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    return tuple(str(e).strip() for e in items if str(e).strip())


def models(value: Any) -> tuple[Any, ...]:
    """Model specs as text ('user-mean,recent-k:k=10') or a sequence of texts or parsed
    ``ModelSpec`` values -> a tuple of ``ModelSpec``."""
    from predictors.registry import ModelSpec, parse_models

    if isinstance(value, str):
        text = value
    else:
        items = list(value)
        if all(isinstance(m, ModelSpec) for m in items):
            return tuple(items)
        bad = [m for m in items if not isinstance(m, str)]
        if bad:
            raise ValueError(
                f"--models: give model specs as text (a built-in name, FILE.py:Class or "
                f"package.module:Class), got {type(bad[0]).__name__}"
            )
        text = ",".join(items)
    try:
        return tuple(parse_models(text))
    except ValueError as e:
        raise ValueError(f"--models: {e}") from e
