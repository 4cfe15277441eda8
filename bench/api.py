"""The Python API: the choices of ``bench run`` / ``compare`` / ``report`` as functions, for
notebooks and scripts. The CLI is a thin layer over these functions.

>>> from bench import api
>>> res = api.run(["user-mean", "bias", "my_models.py:GRURec:hidden=64"], dataset="ml-latest-small")
>>> res.metrics            # one row per model run and metric, with CIs and verdicts
>>> res.predictions        # one row per test query: truth, pred:<key>, fallback:<key>
>>> res.path               # the results JSON (the predictions sidecar sits beside it)

Every keyword has the meaning, default and validation of the CLI option of the same name
(``bench run --help``); a bad choice raises ``bench.errors.BenchError`` (``ConfigError`` or
``DataError``) with the message the CLI prints. Models that fail are recorded and the others
go on: ``Results.failed`` lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar

import pandas as pd

from bench.errors import BenchError, ConfigError
from bench.spec import Choices, RunSpec

if TYPE_CHECKING:
    from bench.plan import RunOutcome
    from bench.results import ResultsDoc
from bench.stats import METRIC_TABLE

__all__ = [
    "Results",
    "compare",
    "execute_spec",
    "load",
    "make_spec",
    "recorded_spec",
    "report",
    "resume",
    "run",
]

P = ParamSpec("P")
R = TypeVar("R")
Models = str | Sequence[str]


def _keywords_of(
    choices: Callable[P, object],
) -> Callable[[Callable[..., R]], Callable[Concatenate[Models, P], R]]:
    """Give the decorated function the keywords of ``choices`` (``bench.spec.Choices``: every
    run option, flat) in its type, after its ``models`` argument: mypy checks each call."""

    def wrap(fn: Callable[..., R]) -> Callable[Concatenate[Models, P], R]:
        return fn

    return wrap


@_keywords_of(Choices)
def make_spec(models: Models = "all", **choices: Any) -> RunSpec:
    """The ``RunSpec`` these choices describe (validated); ``run`` executes it. Every
    keyword is a run option of ``bench.spec`` (``bench run --help`` gives each one's meaning
    and default): a typed value, or the text its flag takes (``seeds="0,1"``). Left out,
    ``samples_per_user`` and the other split options take the protocol's value, and
    ``executor`` is ddp under torchrun, else processes when ``jobs`` > 1, else serial (the
    results do not depend on it). Raises ``ConfigError`` naming the option at fault."""
    return RunSpec.of(models, **choices)


@dataclass(frozen=True)
class Results:
    """A finished (or interrupted) run: its results file read back through the results
    schema (``bench.results.ResultsDoc``: the typed records every command reads)."""

    results: ResultsDoc

    @property
    def path(self) -> Path:
        return self.results.path

    @property
    def doc(self) -> dict[str, Any]:
        """The results JSON as written."""
        return self.results.raw

    @property
    def predictions(self) -> pd.DataFrame:
        """One row per test query (the sidecar; empty when missing)."""
        frame = self.results.predictions
        return frame if frame is not None else pd.DataFrame()

    @property
    def failed(self) -> list[str]:
        return [str(m.key) for m in self.results if not m.finished]

    @property
    def complete(self) -> bool:
        return self.results.status == "complete"

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per model run and metric: model, embedding, seed, key, status, metric,
        estimate, low, high, and the paired difference against the reference (diff,
        diff_low, diff_high, p_value, p_adjusted, verdict; empty for the reference)."""
        rows: list[dict[str, Any]] = []
        for m in self.results:
            base = {
                "key": str(m.key),
                "model": m.key.model,
                "embedding": m.embedding,
                "seed": m.seed,
                "status": m.status,
            }
            for metric in METRIC_TABLE:
                iv = m.metrics.get(metric.name) or {}
                d = m.vs_reference.get(metric.name) or {}
                rows.append(
                    {
                        **base,
                        "metric": metric.name,
                        "estimate": iv.get("estimate"),
                        "low": iv.get("low"),
                        "high": iv.get("high"),
                        "diff": d.get("estimate"),
                        "diff_low": d.get("low"),
                        "diff_high": d.get("high"),
                        "p_value": d.get("p_value"),
                        "p_adjusted": d.get("p_adjusted"),
                        "verdict": d.get("verdict"),
                    }
                )
        return pd.DataFrame(rows)

    def table(self) -> pd.DataFrame:
        """The metrics wide: one row per model run, ``<metric>``, ``<metric>_low``,
        ``<metric>_high`` columns."""
        long = self.metrics
        if long.empty:
            return long
        wide = long.pivot_table(
            index="key", columns="metric", values=["estimate", "low", "high"], sort=False
        )
        out = pd.DataFrame(index=wide.index)
        for metric in METRIC_TABLE:
            for col, suffix in (("estimate", ""), ("low", "_low"), ("high", "_high")):
                if (col, metric.name) in wide.columns:
                    out[metric.name + suffix] = wide[(col, metric.name)]
        return out.reset_index()


def load(path: str | Path) -> Results:
    """A results file (and its predictions sidecar) read back as ``Results``."""
    from bench.results import read_results

    return Results(read_results(Path(path)))


def recorded_spec(path: str | Path, *, command: list[str] | None = None) -> RunSpec:
    """The ``RunSpec`` a results file recorded (``run_spec``): what ``--resume`` finishes and
    ``bench rerun`` runs again. Raises ``ConfigError`` for a file without one."""
    from bench.results import load_results

    doc = load_results(Path(path))
    if "run_spec" not in doc:
        raise ConfigError(f"{path}: has no run_spec to resume or rerun from")
    return RunSpec.from_dict(doc["run_spec"], command=command or ["(api)"])


def execute_spec(
    spec: RunSpec, console: Any = None, *, resume: str | Path | None = None
) -> RunOutcome:
    """Run a ``RunSpec`` (``bench.runner.execute``); a ``ValueError`` a model raises about
    its options comes back as the ``ConfigError`` the CLI prints."""
    from bench.runner import execute

    try:
        return execute(spec, console, resume=None if resume is None else Path(resume))
    except ValueError as e:
        if isinstance(e, BenchError):
            raise
        raise ConfigError(str(e)) from e


@_keywords_of(Choices)
def run(models: Models = "all", **choices: Any) -> Results | None:
    """Fit and score ``models`` on one split (the keywords are ``make_spec``'s); the results
    file is written as by ``bench run`` (``report=True``: the report folder too). Returns
    None on a rank > 0 of a data-parallel run (``executor="ddp"`` under torchrun): rank 0
    writes. Progress goes to stderr; ``execute_spec`` takes a console of your own."""
    return _finish(make_spec(models, **choices), None)


def resume(path: str | Path, *, console: Any = None) -> Results | None:
    """Finish an interrupted run from its results file: every setting from that file, only
    the models not yet finished are fitted (``bench run --resume``)."""
    return _finish(recorded_spec(path, command=["(api)", "resume"]), path, console)


def _finish(spec: RunSpec, resume_from: str | Path | None, console: Any = None) -> Results | None:
    outcome = execute_spec(spec, console, resume=resume_from)
    if outcome.path is None:
        return None
    if spec.output.report:
        _write_report(outcome.path, data_dir=spec.source.data_dir)
    return load(outcome.path)


def compare(
    files: Sequence[str | Path],
    *,
    reference: str | None = None,
    per_seed: bool = False,
    n_resamples: int | None = None,
) -> Any:
    """The comparison ``bench compare`` prints, as an object (``bench.compare``)."""
    from bench.compare import build_comparison

    kw: dict[str, Any] = {"reference": reference, "per_seed": per_seed}
    if n_resamples is not None:
        kw["n_resamples"] = n_resamples
    return build_comparison([Path(f) for f in files], **kw)


def report(path: str | Path, *, data_dir: str | Path | None = None) -> Path:
    """Write the report folder (figures + report.md) of a results file; returns its path."""
    return _write_report(path, data_dir=data_dir)


def _write_report(path: str | Path, *, data_dir: str | Path | None = None) -> Path:
    from bench.report import write_report

    return Path(write_report(Path(path), data_dir=None if data_dir is None else Path(data_dir)))
