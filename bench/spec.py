"""What a run is asked to do: ``RunSpec``, every choice of ``bench run`` in one validated,
JSON-round-tripping value (``to_dict``/``from_dict``: ``bench rerun`` and ``--resume`` rebuild
the identical spec from a results file)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import embeddings as E
from bench import stats
from bench.data.loading import DataSource
from bench.data.split import SplitParams
from bench.errors import ConfigError
from predictors.registry import (
    ModelSpec,
    spec_from_record,
)

__all__ = ["CHECK_LEVELS", "EXECUTORS", "RunSpec"]

# What ``bench run`` checks of a plugin before benchmarking it (``predictors.testing``):
# "quick" the checks that never fit it (config, capabilities, predict before fit; well under
# a second), "full" the whole conformance suite on its small synthetic data (fits the model
# several times: seconds for most models), "none" nothing. Built-ins pass the full suite in CI.
CHECK_LEVELS = ("quick", "full", "none")

# Where the jobs run (``bench.executors``): one after another in this process, in local worker
# processes (``--jobs N``), as Ray tasks, or on the ranks of a torchrun job (``ddp``: torch
# models trained data-parallel). The results do not depend on it (ddp: to float rounding).
EXECUTORS = ("serial", "processes", "ray", "ddp")


@dataclass
class RunSpec:
    source: DataSource
    split: SplitParams
    models: list[ModelSpec]
    protocol: str = "default"
    seeds: list[int] = field(default_factory=lambda: [0])
    reference: str = "user-mean"
    n_resamples: int = 2000
    confidence: float = 0.95
    stats_seed: int = 0
    ci_method: str = "auto"  # see bench.stats.METHODS
    min_test_users: int = 20  # fewer test users: no verdict ("too few queries")
    per_seed: bool = False  # verdicts per seed instead of one per model over its seeds
    out_dir: Path = Path("results")
    chunk_size: int = 50_000
    device: str = "auto"
    embeddings: list[str] = field(default_factory=list)  # names or parquet paths
    embedding_dir: Path | None = None
    missing_embedding: str = "drop"
    blas_threads: int | None = 1  # BLAS threads while a model fits/predicts; None: library default
    check: str = "quick"  # conformance checks on plugins before the run: quick | full | none
    save_models: bool = False  # every fitted model saved beside the results (bench predict)
    executor: str = "serial"  # where the jobs run: serial | processes | ray | ddp
    jobs: int = 1  # worker processes (processes); at most this many tasks at once (ray, > 1)
    ray_address: str | None = None  # an existing Ray cluster; None: a local instance
    torch_threads: int | None = None  # torch intra-op threads per job; None: torch's default
    command: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ConfigError("--seeds needs at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"--seeds has repeated values: {self.seeds}")
        if self.n_resamples < 100:
            raise ConfigError(f"--resamples must be >= 100, got {self.n_resamples}")
        if not 0.5 < self.confidence < 1:
            raise ConfigError(f"--confidence must be in (0.5, 1), got {self.confidence}")
        if isinstance(self.min_test_users, bool) or not (
            isinstance(self.min_test_users, int) and self.min_test_users >= 1
        ):
            raise ConfigError(
                f"--min-test-users must be an integer >= 1, got {self.min_test_users!r}"
            )
        if self.ci_method not in stats.METHODS:
            raise ConfigError(
                f"--ci-method must be one of {', '.join(stats.METHODS)}, got '{self.ci_method}'"
            )
        if self.chunk_size < 1:
            raise ConfigError(f"--chunk-size must be >= 1, got {self.chunk_size}")
        if self.blas_threads is not None and self.blas_threads < 1:
            raise ConfigError(f"--blas-threads must be >= 1, got {self.blas_threads}")
        if self.check not in CHECK_LEVELS:
            raise ConfigError(
                f"--check must be one of {', '.join(CHECK_LEVELS)}, got '{self.check}'"
            )
        if isinstance(self.jobs, bool) or not (isinstance(self.jobs, int) and self.jobs >= 1):
            raise ConfigError(f"--jobs must be an integer >= 1, got {self.jobs!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(
                f"--executor must be one of {', '.join(EXECUTORS)}, got '{self.executor}'"
            )
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
        if self.torch_threads is not None and self.torch_threads < 1:
            raise ConfigError(f"--torch-threads must be >= 1, got {self.torch_threads}")
        if self.missing_embedding not in E.MISSING_POLICIES:
            raise ConfigError(
                f"--missing-embedding must be one of {', '.join(E.MISSING_POLICIES)}, "
                f"got '{self.missing_embedding}'"
            )

    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``from_dict`` rebuilds the identical spec (``bench rerun``/``--resume``)."""
        return {
            "source": self.source.to_dict(),
            "split": self.split.to_dict(),
            "models": [
                {
                    "spec": m.label,
                    "implicit": m.implicit,
                    "source": None if m.source is None else m.source.to_dict(),
                    "error": m.error,
                }
                for m in self.models
            ],
            "protocol": self.protocol,
            "seeds": list(self.seeds),
            "reference": self.reference,
            "n_resamples": self.n_resamples,
            "confidence": self.confidence,
            "stats_seed": self.stats_seed,
            "ci_method": self.ci_method,
            "min_test_users": self.min_test_users,
            "per_seed": self.per_seed,
            "out_dir": str(self.out_dir),
            "chunk_size": self.chunk_size,
            "device": self.device,
            "embeddings": list(self.embeddings),
            "embedding_dir": None if self.embedding_dir is None else str(self.embedding_dir),
            "missing_embedding": self.missing_embedding,
            "blas_threads": self.blas_threads,
            "check": self.check,
            "save_models": self.save_models,
            "executor": self.executor,
            "jobs": self.jobs,
            "ray_address": self.ray_address,
            "torch_threads": self.torch_threads,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, command: list[str] | None = None) -> RunSpec:
        return cls(
            source=DataSource.from_dict(d["source"]),
            split=SplitParams(**d["split"]),
            models=[spec_from_record(m) for m in d["models"]],
            protocol=d.get("protocol", "default"),
            seeds=list(d["seeds"]),
            reference=d["reference"],
            n_resamples=d["n_resamples"],
            confidence=d["confidence"],
            stats_seed=d.get("stats_seed", 0),
            ci_method=d.get("ci_method", "auto"),
            min_test_users=d.get("min_test_users", 20),
            per_seed=bool(d.get("per_seed", False)),
            out_dir=Path(d.get("out_dir", "results")),
            chunk_size=d.get("chunk_size", 50_000),
            device=d.get("device", "auto"),
            embeddings=list(d.get("embeddings", [])),
            embedding_dir=None if d.get("embedding_dir") is None else Path(d["embedding_dir"]),
            missing_embedding=d.get("missing_embedding", "drop"),
            blas_threads=d.get("blas_threads", 1),
            check=d.get("check", "quick"),
            save_models=bool(d.get("save_models", False)),
            executor=d.get("executor", "serial"),
            jobs=d.get("jobs", 1),
            ray_address=d.get("ray_address"),
            torch_threads=d.get("torch_threads"),
            command=command or [],
        )
