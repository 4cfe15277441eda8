"""Terminal tables of a comparison (``bench.compare``) that never cut a value.

At the console's width (a terminal's; ``COLUMNS``, else 120, when piped:
``bench.cli.common.out_width``) a table is tried in this order: each difference's p-value
beside its interval; the p-values under the intervals; then whole columns left out, the
least needed first (``Col.drop``: fit time, the other metrics' differences, fallbacks, the
other metrics), with a note naming them and how to see them; then the same with each
model's options on lines of their own. Only when what is never left out (run, model, the
primary metric and its difference) is still too wide are cells folded, every character
kept across lines. Cells are ``rich.text.Text``: model names, errors and
file names are never read as markup. A table of several runs has a run column, never
squeezed, and a legend of the runs' files.
"""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from bench import stats
from bench.compare import PRIMARY, Comparison, Row, interval_text, p_text, verdict_style

__all__ = ["Col", "comparison_renderables", "fit_table", "print_comparison"]

# what may be left out, first to last (0: never): the rank of each kind of column
FIT_S, OTHER_DIFFS, FALLBACKS, OTHER_METRICS = 1, 2, 3, 4
_HINT = (
    "widen the terminal (COLUMNS=N when output is piped) or use `bench compare --format markdown`"
)


@dataclass(frozen=True)
class Col:
    """One column of a terminal table: its header, its cells (one per row, lines split by
    "\\n"), and when it may be left out (``drop``: 0 never, else earlier the lower)."""

    head: str
    cells: tuple[Text, ...]
    justify: Literal["left", "right"] = "right"
    drop: int = 0
    whole: bool = False  # never folded (a run or model name)


def _width(console: Console, table: Table) -> int:
    """The table's natural width: every cell on its own lines, nothing reduced."""
    return Measurement.get(console, console.options.update_width(1_000_000), table).maximum


def _head(col: Col) -> Text:
    """The header wrapped at spaces to the width of the column's cells (never narrower
    than its longest word)."""
    lines = [line for c in col.cells for line in c.plain.split("\n")]
    words = col.head.split()
    width = max([0, *map(cell_len, lines), *map(cell_len, words)])
    lines = textwrap.wrap(col.head, width, break_on_hyphens=False)
    return Text("\n".join(lines) if words else col.head)


def _table(cols: Sequence[Col], fold: bool, ends: Sequence[bool] = (), **kw: Any) -> Table:
    t = Table(box=box.SIMPLE_HEAD, **kw)
    for col in cols:
        t.add_column(
            _head(col),
            justify=col.justify,
            no_wrap=not fold or col.whole,
            overflow="fold",
        )
    for i in range(len(cols[0].cells) if cols else 0):
        t.add_row(*(col.cells[i] for col in cols), end_section=i < len(ends) and ends[i])
    return t


Layout = Callable[[], list[Col]]


def fit_table(
    console: Console,
    stages: Sequence[Sequence[Layout]],
    ends: Sequence[bool] = (),
    **kw: Any,
) -> tuple[Table, list[str]]:
    """The table that fits ``console.width``, with the heads of the columns it leaves out.
    ``stages`` are tried in turn; within a stage, the table leaving out the fewest columns
    (of the lowest ``drop``), of the first of its layouts (each gives the same columns, laid
    out narrower than the one before) that fits so. When nothing fits even with every
    droppable column left out, the last layout's cells fold (the run and model columns
    stay whole): nothing is cut. ``ends``: a rule under each row marked True (the last of
    a run); ``kw`` goes to ``rich.table.Table`` (title, caption)."""
    last: list[Col] = []
    for layouts in stages:
        options = [layout() for layout in layouts]
        levels = max((c.drop for cols in options for c in cols), default=0)
        for level in range(levels + 1):
            for cols in options:
                kept = [c for c in cols if not 0 < c.drop <= level]
                table = _table(kept, fold=False, ends=ends, **kw)
                if _width(console, table) <= console.width:
                    return table, [c.head for c in cols if 0 < c.drop <= level]
        last = options[-1] if options else last
    return _table([c for c in last if not c.drop], fold=True, ends=ends, **kw), [
        c.head for c in last if c.drop
    ]


def _estimate(d: dict[str, Any] | None, sign: str = "") -> Text:
    """``estimate\\n[low, high]`` of an interval (``–`` when there is none)."""
    return Text(interval_text(d, "\n", sign))


def _difference(d: dict[str, Any] | None, p_below: bool) -> Text:
    """A difference: the estimate and its (styled) mark, the interval under them, and the
    adjusted p-value beside the interval or (``p_below``) under it."""
    if not d:
        return Text("–")
    style = verdict_style(d)
    first, interval = interval_text(d, "\n", "+").split("\n")
    text = Text(first)
    if style is not None and style.mark:
        text.append(" ").append(style.mark, style=style.rich or None)
    p = p_text(d).strip()
    text.append("\n" + interval)
    if p:
        text.append(("\n" if p_below else " ") + p)
    return text


def _name(label: str, split: bool) -> Text:
    """A model's label; ``split``: a line for each of its options (``mf\n:factors=8``) and
    its seed count."""
    if split:
        label = label.replace(":", "\n:").replace(" (", "\n(")
    return Text(label)


def _main_columns(c: Comparison, p_below: bool, split: bool = False) -> list[Col]:
    multi = len({r.run for r in c.rows}) > 1
    ref = c.reference or "reference"
    dash = Text("–")
    cols: list[Col] = []
    if multi:
        cols.append(Col("run", tuple(Text(r.run) for r in c.rows), "left", whole=True))
    cols.append(Col("model", tuple(_name(r.label, split) for r in c.rows), "left", whole=True))
    for j, m in enumerate(stats.METRIC_TABLE):
        cells = [
            _estimate(r.metrics.get(m.name))
            if r.status == "ok"
            else Text(r.status, style="red")
            if j == 0
            else dash
            for r in c.rows
        ]
        cols.append(Col(m.label, tuple(cells), drop=0 if m is PRIMARY else OTHER_METRICS))
    for m in stats.METRIC_TABLE:
        cells = [
            dash
            if r.status != "ok"
            else Text("(reference)")
            if r.label == c.reference
            else _difference(r.diffs.get(m.name), p_below)
            for r in c.rows
        ]
        drop = 0 if m is PRIMARY else OTHER_DIFFS
        cols.append(Col(f"Δ{m.label} vs {ref}", tuple(cells), drop=drop))
    fallbacks = [_fallbacks(r) for r in c.rows]
    fit_s = [Text("–" if r.status != "ok" or r.fit_s is None else f"{r.fit_s:.2f}") for r in c.rows]
    cols.append(Col("fallbacks", tuple(fallbacks), drop=FALLBACKS))
    cols.append(Col("fit s", tuple(fit_s), drop=FIT_S))
    return cols


NOT_REPORTED = "not reported"


def _fallbacks(r: Row) -> Text:
    """A row's fallback count; a model that does not report them (a plain class) says so."""
    if r.status != "ok":
        return Text("–")
    return Text(NOT_REPORTED if r.n_fallback is None else f"{r.n_fallback:,}")


def _cross_columns(c: Comparison, p_below: bool, split: bool = False) -> list[Col]:
    return [
        Col("model", tuple(_name(str(cr.key), split) for cr in c.cross), "left", whole=True),
        Col("run", tuple(Text(cr.other_run) for cr in c.cross), "left", whole=True),
        Col(f"{PRIMARY.label} ratio", tuple(Text(f"{cr.ratio:.4f}") for cr in c.cross)),
        Col(
            f"Δ{PRIMARY.label} [95% CI]",
            tuple(_difference(cr.diff, p_below) for cr in c.cross),
        ),
    ]


def comparison_renderables(c: Comparison, console: Console) -> list[RenderableType]:
    """What ``bench compare`` and ``bench run`` print for ``c`` at ``console.width``: the
    main table, a note on any columns left out, the failed models with their errors, the
    legend of the runs, and the same-model-across-runs table."""
    ref = c.reference or "reference"
    out: list[RenderableType] = []
    runs = [r.run for r in c.rows]
    table, left_out = fit_table(
        console,
        [
            [lambda: _main_columns(c, False), lambda: _main_columns(c, True)],
            [lambda: _main_columns(c, True, split=True)],
        ],
        ends=[run != after for run, after in itertools.pairwise(runs)],
        title=Text(f"{c.dataset} · split {c.split_hash} · {c.n_test:,} test queries"),
        caption=Text(
            f"95% bootstrap CIs; Δ = model − {ref} on the same queries (paired); "
            "better/worse when the Holm-adjusted paired p (shown) is below 0.05, ~ otherwise"
        ),
    )
    out.append(table)
    if left_out:
        out.append(
            Text(f"note: left out at {console.width} columns: {', '.join(left_out)}; {_HINT}")
        )
    for r in c.rows:
        if r.status != "ok" and r.error:
            where = f" (run {r.run})" if c.legend else ""
            out.append(Text(f"{r.label}{where} {r.status}: {r.error}"))
    if c.legend:
        out.append(Text("runs:\n" + "\n".join(f"  {k} = {v}" for k, v in c.legend.items())))
    if c.cross:
        cross, _ = fit_table(
            console,
            [
                [lambda: _cross_columns(c, False), lambda: _cross_columns(c, True)],
                [lambda: _cross_columns(c, True, split=True)],
            ],
            title=Text(f"same model across runs (vs {c.cross[0].base_run})"),
        )
        out.append(cross)
    return out


def print_comparison(console: Console, c: Comparison) -> None:
    """Print ``comparison_renderables(c, console)``; lines of text wrap at spaces, never
    cut."""
    for item in comparison_renderables(c, console):
        console.print(item, overflow="fold")
