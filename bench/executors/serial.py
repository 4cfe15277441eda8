"""The default executor: every job in this process, one after another, in the plan's order.
A model's ``os._exit`` raises instead of ending the driver (``exit_guard``), and a
``KeyboardInterrupt`` only interrupts the run when it is the user's Ctrl-C (``CtrlC``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.executors.base import CtrlC, Executor, JobFn, exit_guard

if TYPE_CHECKING:  # pragma: no cover
    from bench.executors.inputs import JobInputs
    from bench.jobs import Job, JobResult

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    """Every job in this process, one after another, in the plan's order (the default)."""

    name = "serial"

    def __init__(self, console: Any = None) -> None:
        super().__init__(1)
        self._console = console
        self._fn: JobFn | None = None
        self._inputs: JobInputs | None = None
        self._ctrl_c = CtrlC()

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        self._fn, self._inputs = fn, inputs
        self._torch_threads = inputs.torch_threads
        self._ctrl_c.install()

    def running(self) -> list[Job]:
        return [self._queue[0]] if self._queue else []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> JobResult:
        assert self._fn is not None and self._inputs is not None
        job = self._queue[0]
        with exit_guard():
            result: JobResult = self._fn(job, self._inputs, self._console)  # Ctrl-C goes up
        self._queue.popleft()
        return result.ran("driver", 1)

    def close(self, kill: bool = False) -> None:
        self._ctrl_c.restore()
