"""User text on the console: every string that comes from a user or a file (a model spec, a
path, an error a plugin raised, a column name) goes through ``shown`` before it is put into a
rich markup string, so that it prints verbatim: ``exp[old]`` stays ``exp[old]`` and ``[/]``
cannot end a style. The consoles are made with ``emoji=False`` (``:x:`` stays ``:x:``)."""

from __future__ import annotations

from rich.markup import escape

__all__ = ["shown"]


def shown(value: object) -> str:
    """``str(value)`` escaped for rich markup: printed as it is."""
    return escape(str(value))
