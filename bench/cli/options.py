"""The click options of ``bench run``, generated from the run spec's declared fields
(``bench.declare``): one option per leaf that has a flag, typed from its annotation, with its
help and default as declared. Every option's click default is None, so that what the user gave
(``given``) is told apart from what they left to the spec's defaults."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from bench.declare import Leaf, base_type, leaves

__all__ = ["given", "run_options"]

F = TypeVar("F", bound=Callable[..., Any])


def _shown(leaf: Leaf) -> str | None:
    if leaf.option.shown_default is not None:
        return leaf.option.shown_default
    d = leaf.default
    if d is None or d == () or d == {} or isinstance(d, bool):
        return None
    if isinstance(d, tuple):
        return ",".join(str(x) for x in d)
    return f"{d:_}".replace("_", ",") if isinstance(d, int) and d >= 10_000 else str(d)


def _option(leaf: Leaf) -> click.Option:
    tp = base_type(leaf.type)
    decls = list(leaf.flags)
    kw: dict[str, Any] = {"default": None, "help": leaf.option.help, "envvar": leaf.option.envvar}
    if tp is bool:
        if leaf.default is False:
            kw["is_flag"] = True
        else:  # True or None (told from the data): --x/--no-x
            long = max(decls, key=len)
            decls = [f"{long}/--no-{long[2:]}"]
    elif leaf.option.parse is not None:
        kw["type"] = click.STRING
    elif leaf.choices is not None:  # checked by the spec: one message form for every source
        kw["type"] = click.STRING
        kw["metavar"] = "[" + "|".join(leaf.choices) + "]"
    elif tp is int:
        kw["type"] = click.INT
    elif tp is float:
        kw["type"] = click.FLOAT
    elif tp is Path:
        kw["type"] = click.Path(path_type=Path)
    shown = _shown(leaf)
    if shown is not None:
        kw["help"] = f"{kw['help']}  [default: {shown}]"
    if leaf.option.metavar:
        kw["metavar"] = leaf.option.metavar
    return click.Option([*decls, leaf.name], **kw)


def _ordered(spec_cls: type) -> list[Leaf]:
    """The flagged run options in the order ``--help`` lists them: the class's own first
    (``--models``), then the inherited ones and the sections'."""
    every = [x for x in leaves(spec_cls) if x.option.cli]
    own = set(vars(spec_cls).get("__annotations__", {}))
    first = [x for x in every if not x.path and x.name in own]
    return first + [x for x in every if x not in first]


def run_options(spec_cls: type) -> Callable[[F], F]:
    """A decorator adding every flagged run option of ``spec_cls``'s tree to a command."""

    def wrap(fn: F) -> F:
        for leaf in reversed(_ordered(spec_cls)):
            if leaf.option.cli:
                click.decorators._param_memo(fn, _option(leaf))
        return fn

    return wrap


def given(ctx: click.Context, spec_cls: type) -> dict[str, Any]:
    """The run options given on the command line or by their environment variable, by
    name (text as typed for the options with a parser; the spec parses it)."""
    sources = (click.core.ParameterSource.COMMANDLINE, click.core.ParameterSource.ENVIRONMENT)
    out: dict[str, Any] = {}
    for leaf in _ordered(spec_cls):
        if ctx.get_parameter_source(leaf.name) in sources:
            out[leaf.name] = ctx.params[leaf.name]
    return out
