"""Terminal tables never cut a value: at 80 and 120 columns, narrower, and piped, every
number and model name is shown whole; columns left out are named in a note."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import test_report as tr
from click.testing import CliRunner
from rich.console import Console

from bench.cli import main
from bench.cli.common import PIPED_WIDTH, out_width
from bench.compare import Comparison, CrossRow, Row
from bench.runkey import RunKey
from bench.tables import comparison_renderables


def _interval(est: float, low: float, high: float, **more: object) -> dict[str, object]:
    return {"estimate": est, "low": low, "high": high, **more}


def _comparison(runs: tuple[str, ...] = ("run",)) -> Comparison:
    """A table with a long model name, a large value and an adjusted p-value."""
    rows = []
    for run in runs:
        rows += [
            Row(
                run=run,
                key=RunKey("user-mean"),
                label="user-mean",
                status="ok",
                metrics={"rmse": _interval(1.0, 0.9, 1.1), "mae": _interval(0.8, 0.7, 0.9)},
                n_fallback=0,
                fit_s=0.01,
            ),
            Row(
                run=run,
                key=RunKey("mf-temporal"),
                label="mf-temporal",
                status="ok",
                metrics={
                    "rmse": _interval(337.1234, 300.0, 400.5),
                    "mae": _interval(0.7001, 0.6, 0.8),
                },
                diffs={
                    "rmse": _interval(336.1234, 299.0, 399.5, verdict="worse", p_adjusted=0.0123),
                    "mae": _interval(-0.0999, -0.2, 0.01, verdict="no clear difference"),
                },
                n_fallback=12_345,
                fit_s=1234.56,
            ),
            Row(
                run=run,
                key=RunKey("broken"),
                label="broken",
                status="failed",
                error="ValueError: " + "a long reason " * 8 + "[/] :x: exp[old] (the end)",
            ),
        ]
    cross = [
        CrossRow(RunKey("mf-temporal"), runs[0], r, 1.0123, _interval(0.5, 0.1, 0.9))
        for r in runs[1:]
    ]
    return Comparison(
        reference="user-mean",
        rows=rows,
        cross=cross,
        notes=[],
        dataset="synthetic",
        split_hash="0123456789abcdef",
        n_test=100,
        legend={r: f"results/{r}-file.json" for r in runs} if len(runs) > 1 else {},
    )


def _render(c: Comparison, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, emoji=False, color_system=None)
    for item in comparison_renderables(c, console):
        console.print(item)
    return console.file.getvalue()  # type: ignore[attr-defined]


WHOLE = [
    "mf-temporal",
    "337.1234",
    "[300.000, 400.500]",
    "+336.1234",
    "p=0.012",
    "[+299.000, +399.500]",
]


@pytest.mark.parametrize("width", [60, 80, 100, 120, 200])
def test_every_number_and_name_is_whole_at_each_width(width: int) -> None:
    text = _render(_comparison(), width)
    lines = text.splitlines()
    assert max(map(len, lines)) <= width
    assert "…" not in text
    for value in WHOLE:
        assert any(value in line for line in lines), (value, text)
    # the error of a failed model: whole, below the table (wrapped at spaces only)
    assert "[/] :x: exp[old] (the end)" in " ".join(text.split())


def test_columns_are_left_out_whole_and_named_in_a_note() -> None:
    wide, narrow = _render(_comparison(), 200), _render(_comparison(), 80)
    assert "left out" not in wide
    for value in ("12,345", "1234.56", "-0.0999"):
        assert value in wide
    note = " ".join(narrow[narrow.index("note: left out at 80 columns") :].split())
    assert "fit s" in note and "--format markdown" in note
    # what is left out is gone as a whole: no column of fit times cut to a stump
    assert ("1234.56" in narrow) == ("fit s" not in note)
    assert ("12,345" in narrow) == ("fallbacks" not in note)


def test_p_values_go_under_the_intervals_before_a_column_is_left_out() -> None:
    def p_below(text: str) -> bool:
        return any(line.strip() == "p=0.012" for line in text.splitlines())

    texts = {w: _render(_comparison(), w) for w in range(100, 141, 2)}
    assert not p_below(texts[140]) and "left out" not in texts[140]
    # the narrowest width that shows every column has the p-values under the intervals
    full = min(w for w, t in texts.items() if "left out" not in t)
    assert p_below(texts[full]) and "left out" in texts[100]
    # and columns are left out only below it
    assert all(("left out" in t) == (w < full) for w, t in texts.items())


def test_a_table_of_several_runs_says_which_run_each_row_is_from() -> None:
    text = _render(_comparison(("#1", "#2")), 80)
    rows = [line.split() for line in text.splitlines()]
    for run in ("#1", "#2"):
        assert [run, "mf-temporal", "337.1234"] in [r[:3] for r in rows]
        assert f"{run} = results/{run}-file.json" in text
    assert "(run #2) failed: ValueError" in text


def test_stdout_width_follows_columns_when_piped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdout.isatty", lambda: False)
    monkeypatch.setenv("COLUMNS", "77")
    assert out_width() == 77
    for bad in ("", "wide", "0", "-5"):
        monkeypatch.setenv("COLUMNS", bad)
        assert out_width() == PIPED_WIDTH
    monkeypatch.delenv("COLUMNS")
    assert out_width() == PIPED_WIDTH


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("real")
    ratings, catalog = tr._write_tiny_csv(folder, n_users=80, seed=2)
    return tr._run(folder, ratings, catalog)


@pytest.mark.parametrize("columns", ["80", "120", None])
def test_compare_piped_fits_columns_and_cuts_nothing(real_run: Path, columns: str | None) -> None:
    env = {"COLUMNS": columns}  # None: unset (then the piped width)
    r = CliRunner().invoke(main, ["compare", str(real_run), str(real_run)], env=env)
    assert r.exit_code == 0, r.output
    width = int(columns or PIPED_WIDTH)
    lines = r.stdout.splitlines()
    assert max(map(len, lines)) <= width
    assert "…" not in r.stdout
    rows = [line.split() for line in lines]
    for run in ("#1", "#2"):
        assert [run, "user-mean"] in [row[:2] for row in rows]
        # the legend: a path longer than the line folds, every character kept
        assert f"{run}={real_run}" in "".join(r.stdout.split())


def test_a_long_model_label_goes_on_lines_of_its_options_before_anything_folds() -> None:
    c = _comparison()
    long = "mf-temporal:factors=64:reg=0.0125:epochs=30"
    c.rows[1].label = long
    text = _render(c, 64)
    assert "…" not in text and max(map(len, text.splitlines())) <= 64
    for part in ("mf-temporal", ":factors=64", ":reg=0.0125", ":epochs=30", *WHOLE[1:]):
        assert any(part in line for line in text.splitlines()), (part, text)
    # wide enough: the label on one line
    assert long in _render(c, 140)
