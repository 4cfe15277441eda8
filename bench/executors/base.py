"""The executor interface, and what every executor shares: where a job's result says it ran,
the Ctrl-C taken at a safe point, torch's threads per job.

An executor runs jobs somewhere and hands their results back as they finish, in
``concurrent.futures``' submit/result shape: ``start(fn, inputs)`` ships the inputs once per
worker, ``submit(job)`` queues a job, ``next_done()`` blocks until some job finishes and
returns its result (a ``JobResult``, frozen, with the worker and attempts set). An executor
never writes files and never reads test truth; the runner does both.

Only the ranks of a torchrun job have more to agree on: ``Executor.ranks`` is their
``Ranks`` coordination (which process writes, the device of each rank, the jobs every rank
takes part in), None on every other executor.
"""

from __future__ import annotations

import collections
import contextlib
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from bench.memory import Copies

if TYPE_CHECKING:  # pragma: no cover
    from bench.executors.inputs import JobInputs
    from bench.jobs import Job, JobResult

__all__ = [
    "RETRIES",
    "WAIT_SLICE_S",
    "CtrlC",
    "DeferredInterrupt",
    "Executor",
    "JobFn",
    "ModelExit",
    "Ranks",
    "ctrl_c_pressed",
    "die_with_parent",
    "died",
    "exit_guard",
    "torch_threads",
    "worker_name",
]

#: a job whose worker died is run again this many times on a fresh worker, then failed
RETRIES = 1

#: how often a driver waiting on workers looks for a deferred Ctrl-C (seconds)
WAIT_SLICE_S = 0.2

#: the finished ones of a wait on workers (empty when the wait timed out)
_Done = TypeVar("_Done")

#: fn(job, inputs, console) -> its result: runs one job, recording a failure of the job's
#: own in the result (``bench.runner.run_job``)
JobFn = Callable[[Any, "JobInputs", Any], Any]


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads (restored after); None: as it is."""
    if n is None:
        yield
        return
    import torch

    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class ModelExit(BaseException):
    """Raised in place of ``os._exit(code)`` called by a model while it runs
    (``exit_guard``): the job is recorded failed instead of the process ending."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:
        return f"the model called os._exit({self.code}), which would have ended its process"


@contextlib.contextmanager
def exit_guard() -> Iterator[None]:
    """While the block runs, ``os._exit`` called in this process raises ``ModelExit`` (a
    ``BaseException``, recorded on the job by ``bench.runner.run_job``) instead of ending the
    process without a word: the driver under ``serial``, a worker that would be lost. A
    process forked inside the block (a model's own pool) still exits through the real one."""
    real, pid = os._exit, os.getpid()

    def guarded(code: int) -> None:  # the signature of os._exit
        if os.getpid() != pid:
            real(code)
        raise ModelExit(code)

    os._exit = guarded  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real


#: set by the driver's SIGINT handler (``CtrlC``, ``DeferredInterrupt``): a KeyboardInterrupt
#: seen while it is set is the user's Ctrl-C; one raised by a model without it is the model's
_CTRL_C = threading.Event()


def ctrl_c_pressed() -> bool:
    """Whether the user pressed Ctrl-C since the executor started (in this process)."""
    return _CTRL_C.is_set()


class _SigintHandler:
    """A driver's SIGINT handler (``_handle``), installed from the main thread (``install``,
    which also forgets an earlier Ctrl-C) unless the process ignores SIGINT, and the previous
    handler put back by ``restore``."""

    def __init__(self) -> None:
        self._old: Any = None

    def install(self) -> None:
        _CTRL_C.clear()
        if threading.current_thread() is not threading.main_thread() or self._old is not None:
            return
        old = signal.getsignal(signal.SIGINT)
        if old is signal.SIG_IGN:
            return
        self._old = old
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


class CtrlC(_SigintHandler):
    """The SIGINT handler of a driver that runs jobs itself (``serial``): Ctrl-C raises
    ``KeyboardInterrupt`` at once, as Python's own handler does, and is remembered, so that a
    ``KeyboardInterrupt`` a model raises itself is told apart from it (``ctrl_c_pressed``)."""

    def _handle(self, signum: int, frame: Any) -> None:
        _CTRL_C.set()
        raise KeyboardInterrupt


#: prctl(2)'s option: the signal this process gets when the thread that created it ends
_PR_SET_PDEATHSIG = 1


def die_with_parent(driver: int | None = None) -> None:
    """Have this process killed (SIGKILL) when its parent dies: a worker when the forkserver
    that forked it dies, the forkserver when the driver does, so that nothing outlives a
    driver killed with SIGKILL. Linux only (``prctl(PR_SET_PDEATHSIG)``), nothing elsewhere.
    ``driver``: the driver's pid; when it is already gone (it died before the signal was
    asked for), this process exits at once."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if driver is not None:
        try:
            os.kill(driver, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


def worker_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def died(job: Job, why: str, attempts: int) -> JobResult:
    """The result of ``job`` whose worker died on every attempt."""
    result = job.failed(
        f"WorkerDied: the worker running this job died ({why}) on each of {attempts} "
        "attempt(s); the other jobs went on"
    )
    return result.ran("(died)", attempts)


class DeferredInterrupt(_SigintHandler):
    """Ctrl-C while the driver waits on its workers, taken at a safe point.

    Python raises ``KeyboardInterrupt`` wherever the main thread happens to be; inside
    ``concurrent.futures.wait`` or a progress display's lock that can leave a lock held and
    hang the run on its way out. While installed (from the main thread), the first Ctrl-C
    only sets a flag, which ``check()`` (called between waits) turns into
    ``KeyboardInterrupt``; a second Ctrl-C interrupts at once. A process that ignores SIGINT
    keeps ignoring it."""

    def __init__(self) -> None:
        super().__init__()
        self.requested = threading.Event()

    def _handle(self, signum: int, frame: Any) -> None:
        _CTRL_C.set()
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def check(self) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt

    def wait(self, poll: Callable[..., tuple[_Done, Any]]) -> _Done:
        """The finished ones of ``poll(timeout=WAIT_SLICE_S)``, called (a short wait) until
        some have finished; a deferred Ctrl-C is taken before each call. ``poll`` returns
        ``(finished, unfinished)``, as ``concurrent.futures.wait`` and ``ray.wait`` do."""
        while True:
            self.check()
            done, _ = poll(timeout=WAIT_SLICE_S)
            if done:
                return done


class Ranks(Protocol):
    """The coordination of the processes of one run that all plan it (the ranks of a
    torchrun job): only ``DDPExecutor`` has one."""

    @property
    def writes(self) -> bool:
        """Whether this process writes the results (rank 0; a rank > 0 does not)."""
        ...

    def place(self, device: str) -> str:
        """The device this process's jobs run on, given the run's resolved ``--device``."""
        ...

    def agree(self, jobs: list[Any], hashes: dict[str, str]) -> list[Any]:
        """The jobs to run, the same in every process (rank 0's, sent to the others, which
        check that their data and split ``hashes`` match). ``jobs``: this one's pending."""
        ...

    def follow(self, fn: JobFn, inputs: JobInputs, jobs: list[Any]) -> None:
        """A process that does not write: take part in the agreed jobs."""
        ...


class Executor:
    """Runs submitted jobs somewhere and returns their results as they finish.

    Use as a context manager: entering connects (Ray) and raises ``ConfigError`` before
    anything is written; leaving stops the workers (killing running jobs when leaving on an
    exception, e.g. Ctrl-C)."""

    name = "executor"

    #: the coordination of several planning processes (``ddp``); None: this one alone plans
    ranks: Ranks | None = None

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._queue: collections.deque[Job] = collections.deque()
        self._torch_threads: int | None = None

    def __enter__(self) -> Executor:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(kill=exc[0] is not None)

    def open(self) -> None:
        """Connect to where the jobs run (nothing by default)."""

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        """Ship ``inputs`` to the workers (once each) and run ``fn`` on them for every job."""
        raise NotImplementedError

    def submit(self, job: Job) -> None:
        """Queue a pending job."""
        self._queue.append(job)

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet returned by ``next_done``."""
        return len(self._queue) + len(self.running())

    def running(self) -> list[Job]:
        """The jobs running now (for a progress display)."""
        raise NotImplementedError

    def next_done(self) -> JobResult:
        """Block until a job finishes; its result (failed when it failed), with where it
        ran and on which attempt."""
        raise NotImplementedError

    def close(self, kill: bool = False) -> None:
        """Stop the workers; ``kill``: do not wait for running jobs."""

    @property
    def copies(self) -> Copies:
        """How many copies of the shared arrays this machine holds (for the memory check
        before anything is built)."""
        return Copies()

    def record(self, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The executor record of the results file: where the jobs ran (``jobs``: run key
        -> worker and attempts, of the jobs this executor ran)."""
        return {
            "name": self.name,
            "workers": self.workers,
            "torch_threads": self._torch_threads,
            "retries": RETRIES if self.name != "serial" else 0,
            "jobs": jobs,
        }
