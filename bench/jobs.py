"""Jobs and what they return: a job is a frozen identity, its result a frozen value.

A run is a plan of jobs; an executor runs each one somewhere and hands its result back to
the driver, which keeps the results by run key (``bench.runner``). Nothing is copied onto a
mutable record: a job that finishes, fails, or dies with its worker yields one result value,
and ``dataclasses.replace`` gives a new value where the driver learns more (where it ran).

``Job`` and ``JobResult`` are the shapes every kind of job keeps (the executors know only
them); ``FitJob`` / ``FitResult`` are the first kind: fit one model on one embedding with
one seed, predict the test queries. Tuning trials and the datasets of a study are kinds to
come, each a pair of the same shape.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from bench.runkey import RunKey
from predictors.contract import Capabilities, SelfChecking, capabilities_of
from predictors.registry import ModelSpec, class_of

__all__ = ["FitJob", "FitResult", "Job", "JobResult", "Status"]


class Status(enum.StrEnum):
    """Where a job stands: its text is what the results file records."""

    OK = "ok"
    FAILED = "failed"
    NOT_RUN = "not run"  # the run was interrupted before it ran
    PENDING = "pending"  # not yet run (a results file written while the run goes on)


class Job(Protocol):
    """A job's identity, the same wherever it runs (picklable, frozen)."""

    @property
    def run_key(self) -> RunKey: ...

    @property
    def capabilities(self) -> Capabilities:
        """What the job's model declares (the executors place torch and data-parallel jobs)."""
        ...

    def failed(self, error: str, traceback: str | None = None) -> JobResult:
        """The result of this job when it did not finish (its worker died, ...)."""
        ...


class JobResult(Protocol):
    """What a job returns (frozen): its status, its error, and where it ran."""

    @property
    def run_key(self) -> RunKey: ...

    @property
    def status(self) -> Status: ...

    @property
    def error(self) -> str | None: ...

    @property
    def worker(self) -> str | None: ...

    @property
    def attempts(self) -> int | None: ...

    def ran(self, worker: str | None, attempts: int | None) -> JobResult:
        """This result, run on ``worker`` in ``attempts`` attempts."""
        ...


@dataclass(frozen=True)
class FitJob:
    """Fit one model spec on one embedding with one seed, and predict the test queries."""

    run_key: RunKey
    spec: ModelSpec
    seed: int
    embedding: str | None = None  # the embedding the model gets (also when the key hides it)

    @property
    def key(self) -> str:
        """The text form of ``run_key``: the name of the run in tables and sidecar columns."""
        return str(self.run_key)

    @property
    def group(self) -> str:
        """The key without the seed: the runs of one model on several seeds."""
        return str(self.run_key.group)

    @property
    def capabilities(self) -> Capabilities:
        return capabilities_of(class_of(self.spec))

    @property
    def reports_fallback(self) -> bool:
        """Whether the model flags its fallbacks (a ``SelfChecking`` one, e.g. a
        ``BasePredictor``); a plain class reports none, which is not a count of 0."""
        return issubclass(class_of(self.spec), SelfChecking)

    def pending(self) -> FitResult:
        """The result of this job before it runs."""
        return FitResult(self, Status.PENDING)

    def failed(self, error: str, traceback: str | None = None) -> FitResult:
        return FitResult(self, Status.FAILED, error=error, traceback=traceback)


@dataclass(frozen=True, eq=False)
class FitResult:
    """What a fit job returns: its status, the model's report and predictions, its costs, and
    where it ran. ``pred`` and ``fallback`` are set when it finished (``ok``). Compared by
    identity (its arrays have no single truth value); compare ``record_of`` dicts instead."""

    job: FitJob
    status: Status
    error: str | None = None  # "Type: message" of a failure
    traceback: str | None = None
    config: dict[str, Any] = field(default_factory=dict)  # the model's get_config()
    fit_info: dict[str, Any] = field(default_factory=dict)  # the FitReport's settings
    refit: bool = False  # refit on the validation targets before predicting test
    learning_curve: tuple[dict[str, Any], ...] | None = None  # one row per epoch
    val_rmse: float | None = None
    fit_s: float = 0.0
    predict_s: float = 0.0
    peak_rss_mb: float | None = None
    rss_delta_mb: float | None = None
    pred: NDArray[np.float32] | None = None  # (K,) test predictions, in the split's order
    fallback: NDArray[np.bool_] | None = None  # (K,) True where the model fell back
    n_clipped: int | None = None  # predictions outside the scale, clipped
    flags: tuple[str, ...] = ()  # warnings a reader must see
    notes: tuple[str, ...] = ()  # facts worth a line (clipping, a model not saved)
    worker: str | None = None  # where it ran ("driver", "HOST pid N", ...); None: not here
    attempts: int | None = None  # how many times it ran (None: not known, e.g. Ray's retries)

    # the identity, read through the job
    @property
    def run_key(self) -> RunKey:
        return self.job.run_key

    @property
    def key(self) -> str:
        return self.job.key

    @property
    def group(self) -> str:
        return self.job.group

    @property
    def spec(self) -> ModelSpec:
        return self.job.spec

    @property
    def seed(self) -> int:
        return self.job.seed

    @property
    def embedding(self) -> str | None:
        return self.job.embedding

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def predicted(self) -> bool:
        """Finished, with its predictions (what the sidecar holds)."""
        return self.ok and self.pred is not None and self.fallback is not None

    @property
    def n_fallback(self) -> int | None:
        return None if self.fallback is None else int(self.fallback.sum())

    def ran(self, worker: str | None, attempts: int | None) -> FitResult:
        """This result, run on ``worker`` in ``attempts`` attempts."""
        return dataclasses.replace(self, worker=worker, attempts=attempts)
