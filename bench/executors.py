"""Where a run's jobs execute: in this process (``serial``), in local worker processes
(``processes``, ``--jobs N``), as Ray tasks (``ray``, a local instance or a cluster), or on
the ranks of a ``torchrun`` job (``ddp``, ``--ddp N``: each torch model trained data-parallel
by every rank, the other models fitted by rank 0).

The runner builds the plan and the data once (``JobInputs``: the TrainSets, the validation
check, the test batches), hands the jobs to an executor and collects one ``JobOutcome`` per
job, in whatever order they finish. The interface is ``concurrent.futures``' submit/result
shape: ``start(fn, inputs)`` ships the inputs once per worker, ``submit(index, run)`` queues a
job, ``next_done()`` blocks until some job finishes and returns its outcome. An executor
never writes files and never reads test truth; the runner does both.

What travels: the inputs once per worker (``processes``: through the pool's initializer, one
pickle per worker process; ``ray``: one ``ray.put``, every task takes the ObjectRef and maps
the arrays zero-copy, read-only), then per job the pending ``ModelRun`` out and the finished
``ModelRun`` (predictions, fallback flags, report, timings, memory) back.

Results do not depend on the executor: every job runs ``fn`` on the same arrays with the same
seed, BLAS threads (``--blas-threads``) and torch intra-op threads (``--torch-threads``, by
default the driver's torch default, set in every worker), and the torch models copy every
input into torch's own (64-byte aligned) memory (``predictors.torch.device.owned``). The NumPy
models give the same bytes under every executor; the torch models the same fit, with
predictions equal to within a few float32 ulps (a float32 kernel is not bound to round
alike in another process). A worker that dies mid-job (killed,
out of memory) has the job retried once on a fresh worker, then recorded failed; a job that
raises is recorded failed by ``fn`` itself. Ray is imported only by the Ray executor.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import os
import signal
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bench.errors import ConfigError
from bench.memory import Copies
from bench.plan import ModelRun, ValCheck, capabilities
from bench.spec import EXECUTORS, RunSpec

if TYPE_CHECKING:  # pragma: no cover
    from bench.checkpoints import CheckpointTarget
    from bench.data.split import Split
    from bench.data.types import Interactions
    from predictors.contract import Distributed
    from predictors.types import HistoryBatch, TrainSet

__all__ = [
    "DDP_TIMEOUT_S",
    "EXECUTORS",
    "OUTCOME_FIELDS",
    "RAY_INSTALL",
    "DDPExecutor",
    "Executor",
    "JobInputs",
    "JobOutcome",
    "ProcessExecutor",
    "RayExecutor",
    "SerialExecutor",
    "make_executor",
    "torch_threads",
    "under_torchrun",
]

RAY_INSTALL = "pip install 'ratingbench[ray]'"

#: a job whose worker died is run again this many times on a fresh worker, then failed
RETRIES = 1

#: the ModelRun fields a job sets (everything but its identity and the statistics, which the
#: driver computes): copied from the worker's finished run onto the driver's
_IDENTITY = {"run_key", "spec", "seed", "embedding", "metrics", "vs_reference"}
OUTCOME_FIELDS = tuple(f.name for f in dataclasses.fields(ModelRun) if f.name not in _IDENTITY)


@dataclass(frozen=True)
class JobInputs:
    """What every job reads, built once by the driver and shipped once per worker."""

    spec: RunSpec
    device: str  # the resolved --device
    torch_threads: int | None  # torch intra-op threads in every job; None: leave torch's
    trains: dict[str | None, TrainSet]  # one TrainSet per embedding (None: the base one)
    val_check: ValCheck
    test_cache: tuple[HistoryBatch, ...] | None  # the test batches, when small enough to keep
    test_source: tuple[Interactions, Split] | None  # else built again by every job
    checkpoints: CheckpointTarget | None = None  # where fitted models are saved (--save-models)
    # a data-parallel run (--ddp): this process's rank, given to the models that declare
    # Capabilities(distributed=True); None otherwise
    distributed: Distributed | None = None
    fit_only: bool = False  # a rank > 0 of a data-parallel run: fit, then nothing else

    def test_batches(self) -> Iterable[HistoryBatch]:
        """The test queries in chunks of ``spec.chunk_size``, in the split's order."""
        if self.test_cache is not None:
            return self.test_cache
        assert self.test_source is not None
        inter, split = self.test_source
        return (b for _, b in split.test_batches(inter, self.spec.chunk_size))

    def freeze(self) -> None:
        """Make the kept test batches read-only, as the driver keeps them (a model that
        writes into its input fails the same way wherever it runs)."""
        for b in self.test_cache or ():
            for f in dataclasses.fields(b):
                getattr(b, f.name).flags.writeable = False


#: fn(run, inputs, console) -> the finished run: fits one job and predicts the test batches,
#: recording a failure of the model's own on the run (``bench.runner.run_job``)
JobFn = Callable[[ModelRun, JobInputs, Any], ModelRun]


@dataclass(frozen=True)
class JobOutcome:
    """One finished job: its position in what was submitted, the finished run (status ok or
    failed), where it ran and on which attempt."""

    index: int
    run: ModelRun
    worker: str
    attempts: int | None = 1  # None: not known (Ray retries on its own)

    def apply(self, run: ModelRun) -> None:
        """Copy what the job set onto the driver's ``run``."""
        if self.run is not run:
            for name in OUTCOME_FIELDS:
                setattr(run, name, getattr(self.run, name))


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


def _worker_name() -> str:
    return f"{socket.gethostname()} pid {os.getpid()}"


def _died(index: int, run: ModelRun, why: str, attempts: int) -> JobOutcome:
    run.status = "failed"
    run.error = (
        f"WorkerDied: the worker running this job died ({why}) on each of {attempts} "
        "attempt(s); the other jobs went on"
    )
    run.traceback = None
    return JobOutcome(index, run, worker="(died)", attempts=attempts)


class DeferredInterrupt:
    """Ctrl-C while the driver waits on its workers, taken at a safe point.

    Python raises ``KeyboardInterrupt`` wherever the main thread happens to be; inside
    ``concurrent.futures.wait`` or a progress display's lock that can leave a lock held and
    hang the run on its way out. While installed (from the main thread), the first Ctrl-C
    only sets a flag, which ``check()`` (called between waits) turns into
    ``KeyboardInterrupt``; a second Ctrl-C interrupts at once. A process that ignores SIGINT
    keeps ignoring it."""

    def __init__(self) -> None:
        self.requested = threading.Event()
        self._old: Any = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._old is not None:
            return
        old = signal.getsignal(signal.SIGINT)
        if old is signal.SIG_IGN:
            return
        self._old = old
        signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt
        self.requested.set()

    def check(self) -> None:
        if self.requested.is_set():
            raise KeyboardInterrupt

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None


#: how often a driver waiting on workers looks for a deferred Ctrl-C (seconds)
WAIT_SLICE_S = 0.2


class Executor:
    """Runs submitted jobs somewhere and returns their outcomes as they finish.

    Use as a context manager: entering connects (Ray) and raises ``ConfigError`` before
    anything is written; leaving stops the workers (killing running jobs when leaving on an
    exception, e.g. Ctrl-C)."""

    name = "executor"

    def __init__(self, workers: int = 1) -> None:
        self.workers = workers
        self._queue: collections.deque[tuple[int, ModelRun]] = collections.deque()
        self._where: dict[str, dict[str, Any]] = {}  # run key -> worker, attempts
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

    def submit(self, index: int, run: ModelRun) -> None:
        """Queue a pending job; ``index`` names it in its outcome."""
        self._queue.append((index, run))

    @property
    def pending(self) -> int:
        """Jobs submitted and not yet returned by ``next_done``."""
        return len(self._queue) + len(self.running())

    def running(self) -> list[ModelRun]:
        """The jobs running now (for a progress display)."""
        raise NotImplementedError

    def next_done(self) -> JobOutcome:
        """Block until a job finishes; its outcome (a failed run when it failed)."""
        raise NotImplementedError

    def close(self, kill: bool = False) -> None:
        """Stop the workers; ``kill``: do not wait for running jobs."""

    #: whether this process writes the results (every executor's driver; a rank > 0 does not)
    writes = True

    @property
    def copies(self) -> Copies:
        """How many copies of the shared arrays this machine holds (for the memory check
        before anything is built)."""
        return Copies()

    def place(self, device: str) -> str:
        """The device this process's jobs run on, given the run's resolved ``--device``."""
        return device

    def agree(self, runs: list[ModelRun], hashes: dict[str, str]) -> list[ModelRun]:
        """The jobs to run, the same in every process of the run (only ``ddp`` has several
        processes that plan: rank 0's plan is sent to the others, which check that their
        data and split hashes match). ``runs``: this process's pending jobs."""
        return runs

    def follow(self, fn: JobFn, inputs: JobInputs, runs: list[ModelRun]) -> None:
        """A process that does not write (rank > 0): take part in the agreed jobs."""
        raise NotImplementedError

    def _finished(self, out: JobOutcome) -> JobOutcome:
        where: dict[str, Any] = {"worker": out.worker}
        if out.attempts is not None:
            where["attempts"] = out.attempts
        self._where[out.run.key] = where
        return out

    def record(self) -> dict[str, Any]:
        """The executor record of the results file: where the jobs ran."""
        return {
            "name": self.name,
            "workers": self.workers,
            "torch_threads": self._torch_threads,
            "retries": RETRIES if self.name != "serial" else 0,
            "jobs": dict(self._where),
        }


class SerialExecutor(Executor):
    """Every job in this process, one after another, in the plan's order (the default)."""

    name = "serial"

    def __init__(self, console: Any = None) -> None:
        super().__init__(1)
        self._console = console
        self._fn: JobFn | None = None
        self._inputs: JobInputs | None = None

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        self._fn, self._inputs = fn, inputs
        self._torch_threads = inputs.torch_threads

    def running(self) -> list[ModelRun]:
        return [self._queue[0][1]] if self._queue else []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> JobOutcome:
        assert self._fn is not None and self._inputs is not None
        index, run = self._queue[0]
        out = self._fn(run, self._inputs, self._console)  # KeyboardInterrupt goes up
        self._queue.popleft()
        return self._finished(JobOutcome(index, out, worker="driver"))


# -- worker processes ---------------------------------------------------------------------
_WORKER: dict[str, Any] = {}  # in a worker process: fn and inputs, set once by _init_worker


def _init_worker(fn: JobFn, inputs: JobInputs) -> None:
    # Ctrl-C reaches the whole process group: the driver alone handles it (it keeps the
    # finished jobs and stops the workers)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    inputs.freeze()
    if inputs.torch_threads is not None:
        import torch

        torch.set_num_threads(inputs.torch_threads)
    _WORKER.update(fn=fn, inputs=inputs)


def _work(index: int, run: ModelRun) -> JobOutcome:
    out = _WORKER["fn"](run, _WORKER["inputs"], None)
    return JobOutcome(index, out, worker=_worker_name())


class _Slot:
    """One worker process (a one-process pool), so that a death is the death of its job."""

    def __init__(self, make: Callable[[], ProcessPoolExecutor]) -> None:
        self._make = make
        self.pool = make()
        self.procs: list[Any] = []
        self.job: tuple[int, ModelRun] | None = None
        self.future: Future[JobOutcome] | None = None

    def submit(self, index: int, run: ModelRun) -> None:
        self.job = (index, run)
        self.future = self.pool.submit(_work, index, run)
        # the pool's process, to tell how it died and to kill it on Ctrl-C
        self.procs = list(getattr(self.pool, "_processes", {}).values()) or self.procs

    def exit_reason(self) -> str:
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
                    return f"killed by {signal.Signals(-code).name}"
            if code is not None:
                return f"exit code {code}"
        return "exit code unknown"

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
        self._attempts: collections.Counter[int] = collections.Counter()
        self.start_method = "forkserver"
        self._interrupt = DeferredInterrupt()

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        import multiprocessing as mp

        self._torch_threads = inputs.torch_threads
        ctx = mp.get_context(self.start_method)
        preload = ["bench.runner"] + (["torch"] if inputs.torch_threads is not None else [])
        ctx.set_forkserver_preload(preload)

        def make() -> ProcessPoolExecutor:
            return ProcessPoolExecutor(
                1, mp_context=ctx, initializer=_init_worker, initargs=(fn, inputs)
            )

        self._slots = [_Slot(make) for _ in range(self.workers)]
        self._interrupt.install()

    def running(self) -> list[ModelRun]:
        return [s.job[1] for s in self._slots if s.job is not None]

    @property
    def copies(self) -> Copies:
        return Copies(
            self.workers + 1, f"--jobs {self.workers}: the driver and each worker", "--jobs"
        )

    def _fill(self) -> None:
        for s in self._slots:
            if s.job is None and self._queue:
                s.submit(*self._queue.popleft())

    def next_done(self) -> JobOutcome:
        while True:
            self._fill()
            futures = {s.future: s for s in self._slots if s.future is not None}
            if not futures:
                raise RuntimeError("next_done() with no job submitted")
            done: set[Future[JobOutcome]] = set()
            while not done:  # short waits: a deferred Ctrl-C is taken between them
                self._interrupt.check()
                done, _ = wait(futures, timeout=WAIT_SLICE_S, return_when=FIRST_COMPLETED)
            slot = futures[next(f for f in futures if f in done)]
            assert slot.future is not None and slot.job is not None
            (index, run), future = slot.job, slot.future
            slot.job = slot.future = None
            self._attempts[index] += 1
            attempts = self._attempts[index]
            try:
                out = future.result()
            except BrokenProcessPool:
                why = slot.exit_reason()
                slot.restart()
                if attempts <= RETRIES:
                    self._queue.appendleft((index, run))  # again, on a fresh worker
                    continue
                return self._finished(_died(index, run, why, attempts))
            except Exception as e:  # e.g. an outcome that cannot travel back
                run.status, run.error = "failed", f"{type(e).__name__}: {e}"
                return self._finished(JobOutcome(index, run, "(lost)", attempts))
            return self._finished(dataclasses.replace(out, attempts=attempts))

    def close(self, kill: bool = False) -> None:
        for s in self._slots:
            s.close(kill)
        self._slots = []
        self._interrupt.restore()

    def record(self) -> dict[str, Any]:
        return {**super().record(), "start_method": self.start_method}


# -- Ray ----------------------------------------------------------------------------------
def _ray_work(fn: JobFn, inputs: JobInputs, index: int, run: ModelRun) -> JobOutcome:
    """A Ray task: ``inputs`` arrives from the object store (arrays read-only, zero-copy)."""
    import ray

    with torch_threads(inputs.torch_threads):
        out = fn(run, inputs, None)
    node = ray.get_runtime_context().get_node_id()[:8]
    return JobOutcome(index, out, worker=f"{_worker_name()} node {node}", attempts=None)


def probe_address(address: str, timeout: float = 5.0) -> None:
    """Raise ``ConfigError`` naming ``address`` when nothing listens there (``HOST:PORT``,
    ``ray://HOST:PORT``; ``auto`` is left to Ray), so a bad address fails in seconds."""
    if address == "auto":
        return
    hostport = address.split("://", 1)[-1]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--ray-address {address}: expected HOST:PORT, ray://HOST:PORT or auto")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(
            f"--ray-address {address}: no Ray cluster reachable there "
            f"({e.strerror or type(e).__name__}); start one with `ray start --head`, or leave "
            "--ray-address out for a local instance"
        ) from e


@contextlib.contextmanager
def _quiet_stderr(on: bool) -> Iterator[None]:
    """Hold back what Ray's C++ core writes to fd 2 while it tries an address (one warning a
    second until it gives up); written out after a success, dropped after a failure (the
    one-line error names the address)."""
    if not on:
        yield
        return
    import sys
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        held.seek(0)
        sys.stderr.write(held.read().decode(errors="replace"))


class RayExecutor(Executor):
    """Ray tasks on a cluster (``address``) or on a local instance over this machine's
    cores; the inputs are put in the object store once. Torch jobs on a CUDA device ask Ray
    for a GPU. Ray started here is shut down at the end; one already running is reused."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None) -> None:
        super().__init__(workers or 0)
        self.address = address
        self._owned = False
        self._ray: Any = None
        self._inflight: dict[Any, tuple[int, ModelRun]] = {}
        self._resources: dict[str, float] = {}
        self._interrupt = DeferredInterrupt()

    def open(self) -> None:
        try:
            import ray
        except ImportError as e:
            raise ConfigError(f"--executor ray: ray is not installed ({RAY_INSTALL})") from e
        self._ray = ray
        if self.address is not None:
            probe_address(self.address)
        if not ray.is_initialized():
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            kw: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
            if self.address is None:
                kw.update(num_cpus=self.workers or os.cpu_count(), _node_ip_address="127.0.0.1")
            try:
                with _quiet_stderr(self.address is not None):
                    ray.init(address=self.address, **kw)
            except Exception as e:
                where = self.address or "a local instance"
                raise ConfigError(
                    f"--executor ray: cannot start or join Ray at {where} "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                ) from e
            self._owned = True
        self._resources = dict(ray.cluster_resources())
        if not self.workers:
            self.workers = max(1, int(self._resources.get("CPU", 1)))

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        ray = self._ray
        self._torch_threads = inputs.torch_threads
        gpu = inputs.device.startswith("cuda")
        if gpu and not self._resources.get("GPU"):
            raise ConfigError(
                f"--device {inputs.device} with --executor ray: the Ray cluster has no GPU"
            )
        self._fn, self._gpu = fn, gpu
        self._ref = ray.put(inputs)  # once; every task maps the arrays from the store
        self._task = ray.remote(max_retries=RETRIES)(_ray_work)
        self._interrupt.install()

    def running(self) -> list[ModelRun]:
        return [run for _, run in self._inflight.values()]

    @property
    def copies(self) -> Copies:
        # the driver's and the object store's (a local instance's store is on this machine)
        if self.address is None:
            return Copies(2, "--executor ray: the driver and the object store")
        return Copies()

    def _fill(self) -> None:
        while self._queue and len(self._inflight) < self.workers:
            index, run = self._queue.popleft()
            torch_job = self._gpu and capabilities(run.spec).torch
            task = self._task.options(num_gpus=1) if torch_job else self._task
            self._inflight[task.remote(self._fn, self._ref, index, run)] = (index, run)

    def next_done(self) -> JobOutcome:
        ray = self._ray
        self._fill()
        if not self._inflight:
            raise RuntimeError("next_done() with no job submitted")
        ready: list[Any] = []
        while not ready:  # short waits: a deferred Ctrl-C is taken between them
            self._interrupt.check()
            ready, _ = ray.wait(list(self._inflight), num_returns=1, timeout=WAIT_SLICE_S)
        ref = ready[0]
        index, run = self._inflight.pop(ref)
        try:
            return self._finished(ray.get(ref))
        except ray.exceptions.RayTaskError as e:  # fn records a model's failure itself
            run.status, run.error = "failed", str(e).strip().splitlines()[-1]
        except ray.exceptions.RayError as e:  # the worker died on every attempt
            return self._finished(_died(index, run, type(e).__name__, RETRIES + 1))
        return self._finished(JobOutcome(index, run, "(ray)", None))

    def close(self, kill: bool = False) -> None:
        self._interrupt.restore()
        ray = self._ray
        if ray is None:
            return
        if kill:
            for ref in list(self._inflight):
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
        self._inflight.clear()
        if self._owned and ray.is_initialized():
            ray.shutdown()
        self._owned = False

    def record(self) -> dict[str, Any]:
        version = getattr(self._ray, "__version__", None)
        return {
            **super().record(),
            "address": self.address or "local",
            "ray": version,
            "resources": {k: v for k, v in self._resources.items() if k in ("CPU", "GPU")},
        }


# -- torchrun ranks -----------------------------------------------------------------------
#: how long a rank waits for the others at a collective: rank 0 fits the models that do not
#: train data-parallel alone while the other ranks wait at the next one's first collective
DDP_TIMEOUT_S = 6 * 3600

TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def under_torchrun() -> bool:
    """Whether this process is a rank started by ``torchrun`` (its environment variables)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


class DDPExecutor(Executor):
    """The ranks of a ``torchrun`` job (``bench run --ddp N`` launches one on this machine).
    Every rank runs the same command: it loads the data and builds the same plan; rank 0's
    list of jobs is broadcast and checked against the others' data and split hashes. A model
    that declares ``Capabilities(distributed=True)`` is fitted by all ranks together
    (``train.context.distributed``; the shared trainer wraps it in DistributedDataParallel);
    any other model is fitted by rank 0 alone. Rank 0 alone predicts, scores and writes: its
    results are those of a serial run, with the torch models trained on ``world_size``
    shards of every batch."""

    name = "ddp"

    def __init__(self, device: str, console: Any = None) -> None:
        if not under_torchrun():
            raise ConfigError(
                "--executor ddp runs on the ranks of a torchrun job: give --ddp N to start N "
                "processes on this machine, or launch `torchrun --nproc_per_node N -m bench.cli "
                "run ...` yourself (several machines: torchrun's --nnodes and --rdzv-endpoint)"
            )
        self.rank = int(os.environ["RANK"])
        self.world_size = int(os.environ["WORLD_SIZE"])
        self.local_rank = int(os.environ["LOCAL_RANK"])
        super().__init__(self.world_size)
        self._device = device
        self._console = console
        self._serial = SerialExecutor(console)
        self.backend = "gloo"
        self.writes = self.rank == 0

    @property
    def distributed(self) -> Distributed:
        from predictors.contract import Distributed

        return Distributed(self.rank, self.world_size, self.backend, self.local_rank)

    def open(self) -> None:
        import datetime as dt

        import torch
        import torch.distributed as tdist

        cuda = self._device.startswith("cuda") or (
            self._device == "auto" and torch.cuda.is_available()
        )
        self.backend = "nccl" if cuda else "gloo"
        if cuda:
            found = torch.cuda.device_count()
            if self.local_rank >= found:
                raise ConfigError(
                    f"--ddp on CUDA: rank {self.rank} needs GPU {self.local_rank} of this "
                    f"machine, which has {found}; give --ddp at most {found}, or --device cpu"
                )
            torch.cuda.set_device(self.local_rank)
        if not tdist.is_initialized():
            tdist.init_process_group(self.backend, timeout=dt.timedelta(seconds=DDP_TIMEOUT_S))

    def place(self, device: str) -> str:
        return f"cuda:{self.local_rank}" if device.startswith("cuda") else device

    @property
    def copies(self) -> Copies:
        n = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        return Copies(n, f"--ddp {n}: each rank on this machine loads its own", "--ddp")

    def agree(self, runs: list[ModelRun], hashes: dict[str, str]) -> list[ModelRun]:
        import torch.distributed as tdist

        box: list[Any] = [([r.key for r in runs], hashes)]
        tdist.broadcast_object_list(box, src=0)
        keys0, hashes0 = box[0]
        by_key = {r.key: r for r in runs}
        if hashes0 != hashes or set(keys0) != set(by_key):
            raise ConfigError(
                f"--ddp: rank {self.rank} planned other jobs or read other data than rank 0 "
                f"({hashes} here, {hashes0} on rank 0); every rank must see the same files"
            )
        agreed = [by_key[k] for k in keys0]
        together = any(capabilities(r.spec).distributed for r in agreed)
        if self.writes and not together and self._console is not None:
            self._console.print(
                "[yellow]note:[/] no model of this run trains data-parallel (the torch sequence "
                "models do): rank 0 fits them all, the other ranks only wait"
            )
        return agreed

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        self._torch_threads = inputs.torch_threads
        self._serial.start(fn, dataclasses.replace(inputs, distributed=self.distributed))

    def submit(self, index: int, run: ModelRun) -> None:
        self._serial.submit(index, run)

    @property
    def pending(self) -> int:
        return self._serial.pending

    def running(self) -> list[ModelRun]:
        return self._serial.running()

    def next_done(self) -> JobOutcome:
        out = self._serial.next_done()
        together = capabilities(out.run.spec).distributed
        worker = f"{self.world_size} ranks" if together else "rank 0"
        return self._finished(dataclasses.replace(out, worker=f"{worker} ({socket.gethostname()})"))

    def follow(self, fn: JobFn, inputs: JobInputs, runs: list[ModelRun]) -> None:
        inputs = dataclasses.replace(inputs, distributed=self.distributed, fit_only=True)
        for run in runs:
            if capabilities(run.spec).distributed:
                fn(run, inputs, None)

    def close(self, kill: bool = False) -> None:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()

    def record(self) -> dict[str, Any]:
        return {
            **super().record(),
            "retries": 0,
            "backend": self.backend,
            "world_size": self.world_size,
            "batch_sharding": "each rank a contiguous shard of every global batch",
        }


def make_executor(spec: RunSpec, console: Any = None) -> Executor:
    """The executor ``spec`` asks for (not yet opened)."""
    if spec.executor == "ddp":
        return DDPExecutor(spec.device, console)
    if spec.executor == "ray":
        return RayExecutor(spec.ray_address, spec.jobs if spec.jobs > 1 else None)
    if spec.executor == "processes":
        return ProcessExecutor(spec.jobs)
    return SerialExecutor(console)
