"""User and file text reaches the console verbatim: rich markup (``exp[old]``, ``[/]``) and
emoji codes (``:x:``) in model names, plugin paths and errors are printed as they are."""

from __future__ import annotations

import textwrap
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from bench.cli import main
from bench.cli.common import _console, _out
from bench.text import shown

ODD = "exp[old] :x: [/]"  # vanishes as markup, turns into an emoji, ends a style

SYNTH = ["--dataset", "synthetic", "--users", "120", "--resamples", "200", "--offline"]

MODEL = """
import numpy as np

class Mean:
    name = {name!r}

    def __init__(self, broken="no"):
        if broken == "init":
            raise ValueError({error!r})
        self.broken = broken

    def get_config(self):
        return {{"broken": self.broken}}

    def fit(self, train):
        if self.broken == "fit":
            raise RuntimeError({error!r})
        self.mean_ = float(np.mean(train.events.rating))
        return self

    def predict(self, queries):
        return np.full(len(queries.target_item), self.mean_, dtype=np.float32)
"""


def _flat(text: str) -> str:
    """The output with rich's line wrapping undone (it wraps at spaces)."""
    return " ".join(text.split())


def _plugin(tmp_path: Path, name: str = "odd-model", error: str = "boom") -> Path:
    # the folder's name holds the markup; "[/]" in a path is a folder "…[" and a file "]…"
    folder = tmp_path / "exp[old]" / "v["
    folder.mkdir(parents=True)
    path = folder / "]model.py"
    path.write_text(textwrap.dedent(MODEL.format(name=name, error=error)))
    return path


def test_shown_prints_markup_and_emoji_codes_as_they_are() -> None:
    console = Console(emoji=False, record=True, width=200)
    console.print(f"[bold]{shown(ODD)}[/]")
    assert console.export_text().strip() == ODD


def test_the_project_consoles_leave_emoji_codes_alone() -> None:
    for make in (_console, _out):
        console = make()
        with console.capture() as cap:
            console.print(":x: :smile:")
        assert cap.get().strip() == ":x: :smile:"


def test_the_one_line_error_keeps_a_closing_tag_and_brackets() -> None:
    r = CliRunner().invoke(main, ["compare", f"{ODD}.json"])
    assert r.exit_code == 2
    assert f"{ODD}.json" in _flat(r.stderr)


def test_check_shows_the_plugin_path_and_its_error_verbatim(tmp_path: Path) -> None:
    path = _plugin(tmp_path, error=f"bad {ODD}")
    spec = f"{path}:Mean:broken=init"
    r = CliRunner().invoke(main, ["check", "--quick", spec], env={"COLUMNS": "400"})
    assert r.exit_code == 1
    out = _flat(r.output)
    assert str(path) in out
    assert f"bad {ODD}" in out


def test_run_shows_model_names_and_plugin_errors_verbatim(tmp_path: Path) -> None:
    # a model's name may not hold spaces, "/" or ":": its markup is "exp[old]"
    path = _plugin(tmp_path, name="exp[old]", error=f"fit failed: {ODD}")
    models = f"bias,{path}:Mean,{path}:Mean:broken=init,{path}:Mean:broken=fit"
    args = ["run", "--models", models, *SYNTH, "--out", str(tmp_path / "results")]
    r = CliRunner().invoke(main, args, env={"COLUMNS": "400"})
    assert r.exit_code == 1, r.output
    out = _flat(r.output)
    # the plugin that cannot be built, and the one whose fit raises, with what they raised
    assert f"plugin failed exp[old]:broken=init: plugin {path}:Mean: " in out
    assert "failed exp[old]:broken=fit: " in out
    assert out.count(f"fit failed: {ODD}") >= 2
    # the one that runs: its line when it finished, its row of the results table
    assert "ok exp[old]: fit" in out
    rows = [line.split() for line in r.stdout.splitlines()]
    assert ["exp[old]:broken=fit", "failed"] in [row[:2] for row in rows]
    assert any(row[:1] == ["exp[old]"] and row[1][0].isdigit() for row in rows), r.stdout


def test_a_closing_tag_in_an_option_value_does_not_raise(tmp_path: Path) -> None:
    # "[/]" with nothing open before it: rich raised MarkupError (a traceback) at the first
    # console line naming the model (the status line of its plugin checks)
    path = _plugin(tmp_path, name="plain")
    args = ["run", "--models", f"{path}:Mean:broken=[/]", *SYNTH]
    r = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "results")])
    assert r.exit_code == 0, r.output
    assert "ok plain:broken=[/]: fit" in _flat(r.output)
    assert any(line.split()[:1] == ["plain:broken=[/]"] for line in r.stdout.splitlines())


def test_a_ratings_file_name_with_markup_is_shown_by_run_and_predict(tmp_path: Path) -> None:
    import test_report as tr

    ratings, _ = tr._write_tiny_csv(tmp_path, n_users=40, seed=1)
    odd = ratings.rename(tmp_path / "exp[old] :x:.csv")
    out = tmp_path / "results"
    args = ["run", "--ratings", str(odd), "--models", "bias", "--resamples", "200"]
    r = CliRunner().invoke(main, [*args, "--save-models", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert _flat(r.output).startswith("exp[old] :x:.csv: ")  # the data's line
    (results,) = out.glob("*.json")
    first = odd.read_text().splitlines()[1].split(",")  # a user and a movie of the log
    r = CliRunner().invoke(
        main,
        ["predict", str(results), "--model", "bias", "--user", first[0], "--movie", first[1]],
        env={"COLUMNS": "400"},
    )
    assert r.exit_code == 0, r.output
    assert f"bias ({results.name}, dataset exp[old] :x:.csv)" in r.stdout


def test_a_models_progress_description_is_shown_as_it_is() -> None:
    """A model's progress bar (``RichProgress``) prints its description as text: markup and
    emoji codes in it are neither styles nor emoji, and ``[/]`` does not raise."""
    from rich.console import Console

    from predictors.context import RichProgress

    console = Console(force_terminal=True, width=100, record=True, emoji=False)
    with RichProgress(console).bar("fit exp[old] :x: [/]", 3) as step:
        step(2)
    assert "fit exp[old] :x: [/]" in console.export_text()
