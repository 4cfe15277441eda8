"""Ray tasks (``--executor ray``), on a local instance or an existing cluster: the inputs are
put in the object store once, every task maps the arrays zero-copy, read-only. Ray is
imported only here, and only when the executor opens."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

from bench.errors import ConfigError
from bench.executors.base import (
    RETRIES,
    DeferredInterrupt,
    Executor,
    JobFn,
    died,
    exit_guard,
    torch_threads,
    worker_name,
)
from bench.executors.reaper import Reaper, watch
from bench.memory import Copies

if TYPE_CHECKING:  # pragma: no cover
    from bench.executors.inputs import JobInputs
    from bench.jobs import Job, JobResult

__all__ = ["RAY_INSTALL", "RayExecutor", "probe_address"]

RAY_INSTALL = "pip install 'ratingbench[ray]'"


def _ray_work(fn: JobFn, inputs: JobInputs, job: Job) -> JobResult:
    """A Ray task: ``inputs`` arrives from the object store (arrays read-only, zero-copy). A
    model's ``os._exit`` fails its job instead of ending the worker (``exit_guard``)."""
    import ray

    with torch_threads(inputs.torch_threads), exit_guard():
        result: JobResult = fn(job, inputs, None)
    node = ray.get_runtime_context().get_node_id()[:8]
    return result.ran(f"{worker_name()} node {node}", None)


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


def _reaper_for(ray: Any, context: Any) -> Reaper | None:
    """The reaper of the local instance ``ray.init`` just started (``bench.executors.reaper``:
    its processes end within seconds of the driver's death, SIGKILL included; Linux only).
    None where Ray joined an instance already running (found through ``RAY_ADDRESS`` or
    ``ray start``'s address file): that one is never touched."""
    worker = getattr(getattr(ray, "_private", None), "worker", None)  # Ray's private API
    node = getattr(worker, "_global_node", None)
    session_dir = getattr(context, "address_info", {}).get("session_dir")
    if node is None or not node.is_head() or not session_dir:
        return None
    return watch(session_dir, os.path.dirname(ray.__file__))


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
    for a GPU. Ray started here is shut down at the end, and its processes end within seconds
    of the driver's death, SIGKILL included (``reaper``, Linux); one already running is reused
    and never touched."""

    name = "ray"

    def __init__(self, address: str | None, workers: int | None) -> None:
        super().__init__(workers or 0)
        self.address = address
        self._owned = False
        self._ray: Any = None
        self._inflight: dict[Any, Job] = {}
        self._resources: dict[str, float] = {}
        self._interrupt = DeferredInterrupt()
        self._reaper: Reaper | None = None

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
                    context = ray.init(address=self.address, **kw)
            except Exception as e:
                where = self.address or "a local instance"
                raise ConfigError(
                    f"--executor ray: cannot start or join Ray at {where} "
                    f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
                ) from e
            self._owned = True
            if self.address is None:
                self._reaper = _reaper_for(ray, context)
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

    def running(self) -> list[Job]:
        return list(self._inflight.values())

    @property
    def copies(self) -> Copies:
        # the driver's and the object store's (a local instance's store is on this machine)
        if self.address is None:
            return Copies(2, "--executor ray: the driver and the object store")
        return Copies()

    def _fill(self) -> None:
        while self._queue and len(self._inflight) < self.workers:
            job = self._queue.popleft()
            torch_job = self._gpu and job.capabilities.torch
            task = self._task.options(num_gpus=1) if torch_job else self._task
            self._inflight[task.remote(self._fn, self._ref, job)] = job

    def next_done(self) -> JobResult:
        ray = self._ray
        self._fill()
        if not self._inflight:
            raise RuntimeError("next_done() with no job submitted")
        ready = self._interrupt.wait(partial(ray.wait, list(self._inflight), num_returns=1))
        ref = ready[0]
        job = self._inflight.pop(ref)
        try:
            result: JobResult = ray.get(ref)
            return result
        except ray.exceptions.RayTaskError as e:  # fn records a model's failure itself
            return job.failed(str(e).strip().splitlines()[-1]).ran("(ray)", None)
        except ray.exceptions.RayError as e:  # the worker died on every attempt
            return died(job, type(e).__name__, RETRIES + 1)

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
        if self._reaper is not None:  # it sweeps what shutdown left (nothing, normally)
            self._reaper.close()
            self._reaper = None
        self._owned = False

    def record(self, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        version = getattr(self._ray, "__version__", None)
        return {
            **super().record(jobs),
            "address": self.address or "local",
            "ray": version,
            "resources": {k: v for k, v in self._resources.items() if k in ("CPU", "GPU")},
        }
