"""Where a run's jobs execute: in this process (``serial``), in local worker processes
(``processes``, ``--jobs N``), as Ray tasks (``ray``, a local instance or a cluster), or on
the ranks of a ``torchrun`` job (``ddp``, ``--ddp N``: each torch model trained data-parallel
by every rank, the other models fitted by rank 0).

The runner builds the plan and the data once (``JobInputs``: the TrainSets, the validation
check, the test batches), hands the jobs to an executor and collects one frozen result per
job (``bench.jobs``), in whatever order they finish. The interface (``base.Executor``) is
``concurrent.futures``' submit/result shape: ``start(fn, inputs)`` ships the inputs once per
worker, ``submit(job)`` queues a job, ``next_done()`` blocks until some job finishes and
returns its result, with where it ran and on which attempt. An executor never writes files
and never reads test truth; the runner does both. Only ``ddp`` coordinates several planning
processes: its ``ranks`` (``base.Ranks``), None on the others.

What travels: the inputs once per worker (``processes``: through the pool's initializer, one
pickle per worker process; ``ray``: one ``ray.put``, every task takes the ObjectRef and maps
the arrays zero-copy, read-only), then per job its identity out and its result
(predictions, fallback flags, report, timings, memory) back.

Results do not depend on the executor: every job runs ``fn`` on the same arrays with the same
seed, BLAS threads (``--blas-threads``) and torch intra-op threads (``--torch-threads``, by
default the driver's torch default, set in every worker), and the torch models copy every
input into torch's own (64-byte aligned) memory (``predictors.torch.device.owned``). The NumPy
models give the same bytes under every executor; the torch models the same fit, with
predictions equal to within a few float32 ulps (a float32 kernel is not bound to round
alike in another process). A worker that dies mid-job (killed,
out of memory) has the job retried once on a fresh worker, then recorded failed; a job that
raises is recorded failed by ``fn`` itself. Ray is imported only by the Ray executor.

Modules: ``base`` (the interface, ``Ranks``, Ctrl-C, torch threads), ``inputs``
(``JobInputs``), ``serial``, ``processes``, ``ray``, ``reaper`` (a local Ray instance's
processes end with the driver, SIGKILL included; Linux), ``ddp``.
"""

from __future__ import annotations

from typing import Any

from bench.executors.base import (
    RETRIES,
    WAIT_SLICE_S,
    DeferredInterrupt,
    Executor,
    JobFn,
    Ranks,
    torch_threads,
)
from bench.executors.ddp import DDP_TIMEOUT_S, DDPExecutor, TorchrunRanks
from bench.executors.inputs import JobInputs
from bench.executors.processes import ProcessExecutor
from bench.executors.ray import RAY_INSTALL, RayExecutor, probe_address
from bench.executors.serial import SerialExecutor
from bench.spec import EXECUTORS, Execution

__all__ = [
    "DDP_TIMEOUT_S",
    "EXECUTORS",
    "RAY_INSTALL",
    "RETRIES",
    "WAIT_SLICE_S",
    "DDPExecutor",
    "DeferredInterrupt",
    "Executor",
    "JobFn",
    "JobInputs",
    "ProcessExecutor",
    "Ranks",
    "RayExecutor",
    "SerialExecutor",
    "TorchrunRanks",
    "make_executor",
    "probe_address",
    "torch_threads",
]


def make_executor(run: Execution, console: Any = None) -> Executor:
    """The executor the run's execution choices ask for (not yet opened)."""
    if run.executor == "ddp":
        return DDPExecutor(run.device, console)
    if run.executor == "ray":
        return RayExecutor(run.ray_address, run.jobs if run.jobs > 1 else None)
    if run.executor == "processes":
        return ProcessExecutor(run.jobs)
    return SerialExecutor(console)
