"""The default executor: every job in this process, one after another, in the plan's order."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bench.executors.base import Executor, JobFn

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

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        self._fn, self._inputs = fn, inputs
        self._torch_threads = inputs.torch_threads

    def running(self) -> list[Job]:
        return [self._queue[0]] if self._queue else []

    @property
    def pending(self) -> int:
        return len(self._queue)

    def next_done(self) -> JobResult:
        assert self._fn is not None and self._inputs is not None
        job = self._queue[0]
        result: JobResult = self._fn(job, self._inputs, self._console)  # Ctrl-C goes up
        self._queue.popleft()
        return result.ran("driver", 1)
