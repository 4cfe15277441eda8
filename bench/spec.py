"""What a run is asked to do: ``RunSpec``, a frozen tree of small sections (the data source,
the split, the embeddings, the statistics, the execution, the output), every choice of
``bench run`` declared once as a field (``bench.declare``): its flag, help, constraint and
whether ``--resume`` may change it. The CLI's options, the API's keywords, an experiment
file's keys and the results' ``run_spec`` record (``to_dict``/``from_dict``: ``bench rerun``
and ``--resume`` rebuild the identical spec) are all derived from these fields: adding a run
option means adding one field to a section.

``Choices`` is the flat view (every leaf of every section, by name): the signature of
``bench.api.make_spec``, checked by mypy."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from bench import parsing
from bench.data.source import DataSource
from bench.data.split import SplitParams
from bench.declare import build, check_section, from_record, run_option, to_record
from bench.embeddings.policy import MISSING_POLICIES
from bench.errors import ConfigError
from bench.stats.resample import METHODS
from bench.torchrun import under_torchrun
from predictors.options import Integer, Interval, OneOf
from predictors.registry import ModelSpec, spec_from_record

__all__ = [
    "CHECK_LEVELS",
    "EXECUTORS",
    "Choices",
    "Embeddings",
    "Execution",
    "Output",
    "RunSpec",
    "Statistics",
    "not_ddp_here",
]

# What ``bench run`` checks of a plugin before benchmarking it (``predictors.testing``):
# "quick" the checks that never fit it (config, capabilities, predict before fit; well under
# a second), "full" the whole conformance suite on its small synthetic data (fits the model
# several times: seconds for most models), "none" nothing. Built-ins pass the full suite in CI.
CHECK_LEVELS = ("quick", "full", "none")

# Where the jobs run (``bench.executors``): one after another in this process, in local worker
# processes (``--jobs N``), as Ray tasks, or on the ranks of a torchrun job (``ddp``: torch
# models trained data-parallel). The results do not depend on it (ddp: to float rounding).
EXECUTORS = ("serial", "processes", "ray", "ddp")

PROTOCOL_NAMES = ("default", "notebook")


@dataclass(frozen=True, kw_only=True)
class Embeddings:
    """Which movie embeddings the models that read them get."""

    embeddings: tuple[str, ...] = run_option(
        (),
        flags=("--embedding", "-e"),
        parse=parsing.names,
        convert=parsing.names,
        help="Movie embeddings by name, parquet file (movieId, embedding) or your own function "
        "(FILE.py:build or package.module:build, given the catalog), several comma-separated "
        "for an ablation: models that use embeddings run once per embedding on the same split. "
        "Names: genre, bert, kg_gnn, kg_gnn_bert, random. Default: the dataset's own "
        "(synthetic), else kg_gnn when a model needs one.",
    )
    embedding_dir: Path | None = run_option(
        None,
        convert=Path,
        help="Folder where NAME resolves to emb_NAME.parquet before the builders.",
    )
    missing_embedding: str = run_option(
        "drop",
        OneOf(*MISSING_POLICIES),
        help="Movies without an embedding: drop their ratings before splitting (as the "
        "notebook did), or give them a zero / mean vector.",
    )

    def __post_init__(self) -> None:
        check_section(self)


@dataclass(frozen=True, kw_only=True)
class Statistics:
    """How the test predictions are scored (``bench.scoring``, docs/statistics.md)."""

    reference: str = run_option(
        "user-mean", help="Model the paired differences are taken against."
    )
    resamples: int = run_option(
        2000,
        Integer(100),
        was=("n_resamples",),
        help="Bootstrap resamples for the confidence intervals.",
    )
    confidence: float = run_option(
        0.95, Interval(0.5, 1, closed="neither"), help="Confidence level of the intervals."
    )
    stats_seed: int = run_option(0, Integer(), cli=False, help="Seed of the resampling.")
    ci_method: str = run_option(
        "auto",
        OneOf(*METHODS),
        help="Bootstrap interval: bca, percentile, basic, normal or auto (BCa up to 5,000 test "
        "queries, exact percentile up to 50,000, the Gaussian limit of the bootstrap above; "
        "docs/statistics.md).",
    )
    min_test_users: int = run_option(
        20,
        Integer(1),
        help="Below this many test users no difference gets a verdict ('too few queries').",
    )
    per_seed: bool = run_option(
        False,
        help="With several seeds, one verdict per seed (the table per run) instead of one per "
        "model that accounts for the seeds.",
    )

    def __post_init__(self) -> None:
        check_section(self)


@dataclass(frozen=True, kw_only=True)
class Execution:
    """Where and how the jobs run; the results do not depend on it (``bench.executors``)."""

    #: options of this section given to ``--resume`` replace all of its resumable ones
    #: (``--jobs 2`` alone: local processes, whatever the interrupted run used)
    resume_together: ClassVar[bool] = True

    device: str = run_option("auto", help="auto, cpu, cuda, cuda:N or mps.")
    chunk_size: int = run_option(
        50_000, Integer(1), help="Test queries per predict call (bounds memory)."
    )
    blas_threads: int | None = run_option(
        1,
        None,
        Integer(1),
        parse=parsing.threads_or_default,
        help="BLAS threads while a model runs (0: the library default).",
    )
    executor: str | None = run_option(
        None,
        None,
        OneOf(*EXECUTORS),
        resume=True,
        help="Where the jobs run: serial (one after another here), processes (--jobs N worker "
        "processes), ray (a local Ray instance, or --ray-address; needs the ray extra) or ddp "
        "(the ranks of a torchrun job; see --ddp). "
        "Default: processes when --jobs > 1, else serial.",
    )
    jobs: int = run_option(
        1,
        Integer(1),
        flags=("--jobs", "-j"),
        resume=True,
        help="Jobs (model, embedding, seed) run at once: N > 1 runs them in N local worker "
        "processes; with --executor ray, at most N tasks at a time. The results do not depend "
        "on it.",
    )
    ray_address: str | None = run_option(
        None,
        resume=True,
        help="With --executor ray: an existing cluster (HOST:PORT, ray://HOST:PORT or auto) "
        "instead of a local instance.",
    )
    torch_threads: int | None = run_option(
        None,
        None,
        Integer(1),
        help="Torch intra-op threads in every job (default: torch's default on this machine, "
        "the same in every worker, so that the predictions do not depend on --jobs).",
    )

    def __post_init__(self) -> None:
        check_section(self)
        if self.executor is None:  # the default: ddp under torchrun, else by --jobs
            auto = "ddp" if under_torchrun() else "processes" if self.jobs > 1 else "serial"
            object.__setattr__(self, "executor", auto)
        if self.executor == "serial" and self.jobs > 1:
            raise ConfigError(
                f"--jobs {self.jobs} needs worker processes: leave --executor serial out, or "
                "give --executor processes or ray"
            )
        if self.executor == "ddp" and self.jobs > 1:
            raise ConfigError(
                f"--jobs {self.jobs} with --ddp: the ranks fit one model at a time together; "
                "leave --jobs out"
            )
        if self.ray_address is not None and self.executor != "ray":
            raise ConfigError(
                f"--ray-address {self.ray_address} needs --executor ray "
                f"(this run's executor is {self.executor})"
            )


def _command() -> tuple[str, ...]:
    return ("python", *sys.argv[:1], "(api)")


@dataclass(frozen=True, kw_only=True)
class Output:
    """What the run writes, and where."""

    out: Path = run_option(
        Path("results"),
        convert=Path,
        was=("out_dir",),
        help="Folder for the results JSON and predictions sidecar.",
    )
    save_models: bool = run_option(
        False,
        help="Save every fitted model beside the results (RESULTS.models/KEY/, a safe format: "
        "JSON + .npz) for `bench predict`; a model that cannot be saved is noted and the run "
        "goes on.",
    )
    report: bool = run_option(
        False,
        resume=True,
        help="Also write a report folder (figures + report.md) beside the results.",
    )
    command: tuple[str, ...] = run_option(
        factory=_command,
        cli=False,
        convert=tuple,
        help="The command line that started the run (recorded).",
    )

    def __post_init__(self) -> None:
        check_section(self)


@dataclass(frozen=True, kw_only=True)
class Plan:
    """The leaves of the run itself: which protocol, seeds and plugin checks."""

    protocol: str = run_option(
        "default",
        OneOf(*PROTOCOL_NAMES),
        help="Split preset; 'notebook' samples 2,000 users with seed 42 as the notebook did.",
    )
    seeds: tuple[int, ...] = run_option(
        (0,),
        flags=("--seed", "--seeds"),
        parse=parsing.seeds,
        convert=tuple,
        help="Model seed(s), comma-separated: each model runs once per seed.",
    )
    check: str = run_option(
        "quick",
        OneOf(*CHECK_LEVELS),
        help="Conformance checks on each plugin model before benchmarking it: quick (the ones "
        "that do not fit it), full (the whole `bench check` suite on tiny synthetic data), "
        "none. A plugin that fails is recorded as failed; the other models go on.",
    )

    def __post_init__(self) -> None:
        check_section(self)
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds has repeated values: {list(self.seeds)}")


def _models_record(models: tuple[ModelSpec, ...]) -> list[dict[str, Any]]:
    return [
        {
            "spec": m.label,
            "implicit": m.implicit,
            "source": None if m.source is None else m.source.to_dict(),
            "error": m.error,
        }
        for m in models
    ]


def _models_from_record(records: list[dict[str, Any]]) -> tuple[ModelSpec, ...]:
    return tuple(spec_from_record(m) for m in records)


@dataclass(frozen=True, kw_only=True)
class RunSpec(Plan):
    """Every choice of one run: the models, the plan's leaves and one value per section."""

    models: tuple[ModelSpec, ...] = run_option(
        factory=lambda: parsing.models("all"),
        flags=("--models", "-m"),
        parse=parsing.models,
        convert=parsing.models,
        encode=_models_record,
        decode=_models_from_record,
        shown_default="all",
        help="Comma-separated model specs with options on the name, e.g. "
        "'user-mean,recent-k:k=10,bias'; 'all' for every built-in model; your own as "
        "FILE.py:Class[:opt=v] or package.module:Class; a library's as surprise:SVD or "
        "cornac:MF (with the surprise / cornac extra).",
    )
    source: DataSource = field(default_factory=DataSource)
    split: SplitParams = field(default_factory=SplitParams)
    embedding: Embeddings = field(default_factory=Embeddings)
    stats: Statistics = field(default_factory=Statistics)
    execution: Execution = field(default_factory=Execution)
    output: Output = field(default_factory=Output)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``from_dict`` rebuilds the identical spec (``bench rerun``/``--resume``)."""
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, command: list[str] | None = None) -> RunSpec:
        """The spec a results file recorded, of this version or an earlier one (whose
        record was flat beside ``source`` and ``split``); ``command``: the command line of
        the process that rebuilds it."""
        over = {} if command is None else {"command": tuple(command)}
        return from_record(cls, d, **over)

    @classmethod
    def of(cls, models: Any = "all", **choices: Any) -> RunSpec:
        """The spec of these flat choices (public names; typed values or option text),
        validated: ``bench.declare.build``."""
        return build(cls, {"models": models, **choices})


@dataclass(frozen=True, kw_only=True)
class Choices(  # type: ignore[misc]  # the bases' from_dict differ; nothing calls it
    Plan, DataSource, SplitParams, Embeddings, Statistics, Execution, Output
):
    """Every leaf of the run spec, flat: the keywords of ``bench.api.make_spec`` (a type for
    the signature only; nothing builds one)."""


def not_ddp_here(spec: RunSpec) -> RunSpec:
    """A recorded spec of a data-parallel run, to run again outside torchrun: serial here
    (the results do not depend on the executor, up to float rounding)."""
    if spec.execution.executor == "ddp" and not under_torchrun():
        return replace(spec, execution=replace(spec.execution, executor="serial", jobs=1))
    return spec
