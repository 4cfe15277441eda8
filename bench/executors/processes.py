"""Local worker processes (``--jobs N``): one job at a time per worker. A worker killed by a
signal (out of memory, ``kill -9``) has its job retried once on a fresh one; one that ends
with an exit code of its own fails its job at once (it would end the same way again). The
forkserver and every worker die with the driver (``die_with_parent``), SIGKILL included."""

from __future__ import annotations

import collections
import contextlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import TYPE_CHECKING, Any

from bench.executors.base import (
    RETRIES,
    DeferredInterrupt,
    Executor,
    JobFn,
    ctrl_c_pressed,
    die_with_parent,
    died,
    exit_guard,
    worker_name,
)
from bench.memory import Copies

if TYPE_CHECKING:  # pragma: no cover
    from bench.executors.inputs import JobInputs
    from bench.jobs import Job, JobResult
    from bench.runkey import RunKey

__all__ = ["ProcessExecutor"]

_WORKER: dict[str, Any] = {}  # in a worker process: fn and inputs, set once by _init_worker


#: imported by the forkserver (its preload): it dies with the driver
FORKSERVER_PRELOAD = "bench.executors.forkserver"


def _init_worker(fn: JobFn, inputs: JobInputs, driver: int) -> None:
    # killed with its forkserver, which is killed with the driver: nothing outlives a run
    die_with_parent(driver)
    # Ctrl-C reaches the whole process group: the driver alone handles it (it keeps the
    # finished jobs and stops the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inputs.freeze()
    if inputs.torch_threads is not None:
        import torch

        torch.set_num_threads(inputs.torch_threads)
    _WORKER.update(fn=fn, inputs=inputs)


def _work(job: Job) -> JobResult:
    with exit_guard():  # a model's os._exit fails its job, the worker stays
        result: JobResult = _WORKER["fn"](job, _WORKER["inputs"], None)
    return result.ran(worker_name(), None)


class _Slot:
    """One worker process (a one-process pool), so that a death is the death of its job."""

    def __init__(self, make: Callable[[], ProcessPoolExecutor]) -> None:
        self._make = make
        self.pool = make()
        self.procs: list[Any] = []
        self.job: Job | None = None
        self.future: Future[JobResult] | None = None

    def submit(self, job: Job) -> None:
        self.job = job
        self.future = self.pool.submit(_work, job)
        # the pool's process, to tell how it died and to kill it on Ctrl-C
        self.procs = list(getattr(self.pool, "_processes", {}).values()) or self.procs

    def exit_reason(self) -> tuple[str, bool]:
        """How the worker ended, and whether that was a signal (then its job is retried)."""
        # The pool's manager thread joins the dead worker itself. Two threads polling one
        # forkserver child race for its status (the loser reads EOF: "exit code 255"), so let
        # the manager finish first; then the status is cached in the process object.
        manager = getattr(self.pool, "_executor_manager_thread", None)
        if manager is not None:
            manager.join(timeout=30)
        for p in self.procs:
            p.join(timeout=5)
            code = p.exitcode
            if code is not None and code < 0:
                with contextlib.suppress(ValueError):
                    return f"killed by {signal.Signals(-code).name}", True
                return f"killed by signal {-code}", True
            if code is not None:
                return f"exit code {code}", False
        return "exit code unknown", True

    def restart(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.pool, self.procs = self._make(), []

    def close(self, kill: bool) -> None:
        if kill:
            for p in self.procs:
                with contextlib.suppress(Exception):
                    p.kill()
        self.pool.shutdown(wait=not kill, cancel_futures=True)


class ProcessExecutor(Executor):
    """``workers`` local worker processes, each running one job at a time. Started by a
    forkserver (safe beside the driver's threads and CUDA; the modules preloaded once), each
    worker receives the inputs once through its initializer."""

    name = "processes"

    def __init__(self, workers: int) -> None:
        super().__init__(workers)
        self._slots: list[_Slot] = []
        self._attempts: collections.Counter[RunKey] = collections.Counter()
        self.start_method = "forkserver"
        self._interrupt = DeferredInterrupt()

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        import multiprocessing as mp

        self._torch_threads = inputs.torch_threads
        ctx = mp.get_context(self.start_method)
        preload = [FORKSERVER_PRELOAD, "bench.runner"]
        ctx.set_forkserver_preload(
            preload + (["torch"] if inputs.torch_threads is not None else [])
        )
        driver = os.getpid()

        def make() -> ProcessPoolExecutor:
            return ProcessPoolExecutor(
                1, mp_context=ctx, initializer=_init_worker, initargs=(fn, inputs, driver)
            )

        self._slots = [_Slot(make) for _ in range(self.workers)]
        self._interrupt.install()

    def running(self) -> list[Job]:
        return [s.job for s in self._slots if s.job is not None]

    @property
    def copies(self) -> Copies:
        return Copies(
            self.workers + 1, f"--jobs {self.workers}: the driver and each worker", "--jobs"
        )

    def _fill(self) -> None:
        for s in self._slots:
            if s.job is None and self._queue:
                s.submit(self._queue.popleft())

    def next_done(self) -> JobResult:
        while True:
            self._fill()
            futures = {s.future: s for s in self._slots if s.future is not None}
            if not futures:
                raise RuntimeError("next_done() with no job submitted")
            done = self._interrupt.wait(partial(wait, futures, return_when=FIRST_COMPLETED))
            slot = futures[next(f for f in futures if f in done)]
            assert slot.future is not None and slot.job is not None
            job, future = slot.job, slot.future
            slot.job = slot.future = None
            self._attempts[job.run_key] += 1
            attempts = self._attempts[job.run_key]
            try:
                result = future.result()
            except BrokenProcessPool:
                why, signalled = slot.exit_reason()
                slot.restart()
                if not signalled:  # it ended itself: it would end the same way again
                    return job.failed(
                        f"WorkerExited: the worker running this job ended itself ({why}: "
                        "os._exit, or exit() in native code); not retried, the other jobs "
                        "went on"
                    ).ran("(exited)", attempts)
                if attempts <= RETRIES:
                    self._queue.appendleft(job)  # again, on a fresh worker
                    continue
                return died(job, why, attempts)
            except BaseException as e:  # a result that cannot travel back, a worker's raise
                if isinstance(e, KeyboardInterrupt) and ctrl_c_pressed():
                    raise
                return job.failed(f"{type(e).__name__}: {e}").ran("(lost)", attempts)
            return result.ran(result.worker, attempts)

    def close(self, kill: bool = False) -> None:
        for s in self._slots:
            s.close(kill)
        self._slots = []
        self._interrupt.restore()

    def record(self, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {**super().record(jobs), "start_method": self.start_method}
