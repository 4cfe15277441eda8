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

import dataclasses
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from bench.errors import BenchError, ConfigError
from bench.runkey import RunKey
from bench.stats import METRIC_TABLE

__all__ = [
    "Results",
    "compare",
    "execute_spec",
    "load",
    "make_spec",
    "recorded_spec",
    "report",
    "run",
]

_UNSET: Any = object()


def _models_text(models: str | Sequence[str]) -> str:
    if isinstance(models, str):
        return models
    items = list(models)
    bad = [m for m in items if not isinstance(m, str)]
    if bad:
        raise ConfigError(
            f"models: give model specs as text (a built-in name, FILE.py:Class or "
            f"package.module:Class), got {type(bad[0]).__name__}"
        )
    return ",".join(items)


def make_spec(
    models: str | Sequence[str] = "all",
    *,
    dataset: str | None = None,
    ratings: str | Path | None = None,
    catalog: str | Path | None = None,
    columns: dict[str, str] | None = None,
    sep: str | None = None,
    header: bool | None = None,
    time_unit: str | None = None,
    rating_scale: tuple[float, float] | tuple[float, float, float | None] | None = None,
    data_dir: str | Path | None = None,
    offline: bool = False,
    cache: bool = True,
    users: int = 2000,
    data_seed: int = 0,
    protocol: str = "default",
    min_history: int | None = None,
    max_history: int | None = None,
    samples_per_user: int | None = _UNSET,
    sample_users: int | None = None,
    split_seed: int | None = None,
    test_targets: int = 1,
    seeds: Iterable[int] = (0,),
    reference: str = "user-mean",
    resamples: int = 2000,
    confidence: float = 0.95,
    min_test_users: int = 20,
    per_seed: bool = False,
    ci_method: str = "auto",
    out: str | Path = "results",
    chunk_size: int = 50_000,
    device: str = "auto",
    embeddings: str | Sequence[str] = (),
    embedding_dir: str | Path | None = None,
    missing_embedding: str = "drop",
    blas_threads: int | None = 1,
    check: str = "quick",
    save_models: bool = False,
    executor: str | None = None,
    jobs: int = 1,
    ray_address: str | None = None,
    torch_threads: int | None = None,
    command: list[str] | None = None,
) -> Any:
    """The ``RunSpec`` these choices describe (validated); ``run`` executes it.
    ``samples_per_user``: an integer, or None for every position; left out, the protocol's.
    ``executor``: serial, processes, ray or ddp (on the ranks of a torchrun job); left out,
    ddp under torchrun, else processes when ``jobs`` > 1, else serial (the results do not
    depend on it)."""
    from bench.data.loading import DataSource
    from bench.data.split import split_params
    from bench.runner import RunSpec
    from predictors.registry import parse_models

    source = DataSource(
        dataset=dataset,
        ratings=None if ratings is None else Path(ratings),
        catalog=None if catalog is None else Path(catalog),
        columns=dict(columns or {}),
        sep=sep,
        header=header,
        time_unit=time_unit,
        rating_scale=None if rating_scale is None else tuple(rating_scale),  # type: ignore[arg-type]
        data_dir=None if data_dir is None else Path(data_dir),
        download=not offline,
        cache=cache,
        synthetic={"n_users": users, "seed": data_seed},
    )
    split = split_params(
        protocol,
        min_history=min_history,
        max_history=max_history,
        sample_users=sample_users,
        seed=split_seed,
        test_targets=test_targets,
        **({} if samples_per_user is _UNSET else {"samples_per_user": samples_per_user}),
    )
    try:
        specs = parse_models(_models_text(models))
    except ValueError as e:
        raise ConfigError(f"--models: {e}") from e
    if isinstance(embeddings, str):
        embeddings = [e.strip() for e in embeddings.split(",") if e.strip()]
    return RunSpec(
        source=source,
        split=split,
        models=specs,
        protocol=protocol,
        seeds=list(seeds),
        reference=reference,
        n_resamples=resamples,
        confidence=confidence,
        ci_method=ci_method,
        min_test_users=min_test_users,
        per_seed=per_seed,
        out_dir=Path(out),
        chunk_size=chunk_size,
        device=device,
        embeddings=list(embeddings),
        embedding_dir=None if embedding_dir is None else Path(embedding_dir),
        missing_embedding=missing_embedding,
        blas_threads=blas_threads,
        check=check,
        save_models=save_models,
        executor=executor if executor is not None else _default_executor(jobs),
        jobs=jobs,
        ray_address=ray_address,
        torch_threads=torch_threads,
        command=list(command) if command is not None else ["python", *sys.argv[:1], "(api)"],
    )


@dataclass(frozen=True)
class Results:
    """A finished (or interrupted) run: its results file, read back."""

    path: Path
    doc: dict[str, Any]
    predictions: pd.DataFrame  # one row per test query (the sidecar; empty when missing)

    @property
    def failed(self) -> list[str]:
        return [m["key"] for m in self.doc["models"] if m.get("status") != "ok"]

    @property
    def complete(self) -> bool:
        return self.doc.get("status") == "complete"

    @property
    def metrics(self) -> pd.DataFrame:
        """One row per model run and metric: model, embedding, seed, key, status, metric,
        estimate, low, high, and the paired difference against the reference (diff,
        diff_low, diff_high, p_value, p_adjusted, verdict; empty for the reference)."""
        rows: list[dict[str, Any]] = []
        for m in self.doc["models"]:
            key = RunKey.from_record(m)
            base = {
                "key": str(key),
                "model": key.model,
                "embedding": m.get("embedding"),
                "seed": m.get("seed"),
                "status": m.get("status"),
            }
            for metric in METRIC_TABLE:
                iv = (m.get("metrics") or {}).get(metric.name) or {}
                d = (m.get("vs_reference") or {}).get(metric.name) or {}
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
    from bench.results import load_results, read_predictions

    p = Path(path)
    doc = load_results(p)
    frame = read_predictions(p, doc)
    return Results(path=p, doc=doc, predictions=frame if frame is not None else pd.DataFrame())


def recorded_spec(path: str | Path, *, command: list[str] | None = None) -> Any:
    """The ``RunSpec`` a results file recorded (``run_spec``): what ``--resume`` finishes and
    ``bench rerun`` runs again. Raises ``ConfigError`` for a file without one."""
    from bench.results import load_results
    from bench.runner import RunSpec

    doc = load_results(Path(path))
    if "run_spec" not in doc:
        raise ConfigError(f"{path}: has no run_spec to resume or rerun from")
    return RunSpec.from_dict(doc["run_spec"], command=command or ["(api)"])


def _default_executor(jobs: int) -> str:
    from bench.executors import under_torchrun

    if under_torchrun():
        return "ddp"
    return "processes" if jobs != 1 else "serial"


def execute_spec(spec: Any, console: Any = None, *, resume: str | Path | None = None) -> Any:
    """Run a ``RunSpec`` (``bench.runner.execute``); a ``ValueError`` a model raises about
    its options comes back as the ``ConfigError`` the CLI prints."""
    from bench.runner import execute

    try:
        return execute(spec, console, resume=None if resume is None else Path(resume))
    except ValueError as e:
        if isinstance(e, BenchError):
            raise
        raise ConfigError(str(e)) from e


def run(
    models: str | Sequence[str] = "all",
    *,
    report: bool = False,
    console: Any = None,
    resume: str | Path | None = None,
    **choices: Any,
) -> Results | None:
    """Fit and score ``models`` on one split (see ``make_spec`` for the choices); the results
    file is written as by ``bench run``. ``resume``: finish an interrupted run from its
    results file (no other choice may go with it). ``report``: also write the report folder.
    ``console``: a ``rich.console.Console`` for progress (default: stderr). Returns None on
    a rank > 0 of a data-parallel run (``executor="ddp"`` under torchrun): rank 0 writes."""
    if resume is not None:
        if choices or models != "all":
            raise ConfigError("resume takes every setting from its results file; give no other")
        spec = recorded_spec(resume, command=["(api)", "resume"])
    else:
        spec = make_spec(models, **choices)
    outcome = execute_spec(spec, console, resume=resume)
    if outcome.path is None:
        return None
    if report:
        _write_report(outcome.path, data_dir=getattr(spec.source, "data_dir", None))
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


def replace_choices(spec: Any, **changes: Any) -> Any:
    """A copy of a ``RunSpec`` with some fields changed (e.g. ``out_dir``)."""
    return dataclasses.replace(spec, **changes)
