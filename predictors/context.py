"""The run context: the run's choices a model may read while fitting (``train.context``).

``RunContext`` (frozen) holds the run's seed, the resolved device, a progress reporter and,
in a data-parallel run, this process's place in it (``Distributed``). The harness puts it in
``TrainSet.context``; a model reads it there, nothing is set on the model from outside.
``ProgressReporter`` is where a model shows a long fit's progress (``NullProgress`` shows
nothing, ``RichProgress`` a rich bar). This module imports nothing of ``predictors``: the
containers (``predictors.types``), the contract (``predictors.contract``) and the base class
(``predictors.base``) build on it.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

__all__ = [
    "Distributed",
    "NullProgress",
    "ProgressReporter",
    "RichProgress",
    "RunContext",
    "Step",
]


# -- progress -----------------------------------------------------------------------------
Step = Callable[..., None]  # step(completed: int, **fields): the bar's position and fields


@runtime_checkable
class ProgressReporter(Protocol):
    """Where a model shows the progress of a long fit. ``bar`` opens a bar of ``total`` steps;
    the value it yields is called as ``step(completed, **fields)`` (e.g. ``loss="0.81"``)."""

    def bar(
        self, description: str, total: int, **fields: Any
    ) -> contextlib.AbstractContextManager[Step]: ...


class NullProgress:
    """Shows nothing (tests, pipes, the Python API without a terminal)."""

    @contextlib.contextmanager
    def bar(self, description: str, total: int, **fields: Any) -> Iterator[Step]:
        yield lambda completed, **kw: None


class RichProgress:
    """A transient rich bar on ``console`` (a ``rich.console.Console``; default stderr). Pass
    the console that already shows a live display: rich nests live displays of one console.
    Shows nothing when the console is not a terminal."""

    def __init__(self, console: Any = None) -> None:
        self.console = console

    @contextlib.contextmanager
    def bar(self, description: str, total: int, **fields: Any) -> Iterator[Step]:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = self.console if self.console is not None else Console(stderr=True, emoji=False)
        if not console.is_terminal:
            yield lambda completed, **kw: None
            return
        # the description is the model's text: shown as it is, never read as markup
        bold = TextColumn("{task.description}", style="bold", markup=False)
        columns = [bold, BarColumn(), MofNCompleteColumn()]
        columns += [TextColumn(f"{k} {{task.fields[{k}]}}") for k in fields]
        columns.append(TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(description, total=total, **fields)

            def step(completed: int, **kw: Any) -> None:
                progress.update(task, completed=completed, **kw)

            yield step


# -- what a model receives --------------------------------------------------------------
@dataclass(frozen=True)
class Distributed:
    """This process's place in a data-parallel fit (``bench run --ddp N`` or ``torchrun``):
    ``world_size`` processes train one model together, each on its shard of every batch; the
    default ``torch.distributed`` process group is initialised (``backend`` gloo on CPU, nccl
    on CUDA). Rank 0 alone predicts and writes."""

    rank: int
    world_size: int
    backend: str = "gloo"
    local_rank: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RunContext:
    """The run's choices a model may read while fitting (``train.context``).

    ``seed``: the run's seed (one run per ``--seeds`` value); a model's own ``seed`` option,
    when set, wins. ``device``: ``cpu``, ``cuda``, ``cuda:1``, ``mps``, or ``auto`` when the run
    did not need to resolve it (no model declared torch). ``progress``: where to show a long
    fit's progress. ``distributed``: see ``Distributed``."""

    seed: int = 0
    device: str = "cpu"
    progress: ProgressReporter = field(default_factory=NullProgress, compare=False)
    # set on every rank of a data-parallel run, for the models that declare
    # ``Capabilities(distributed=True)``; None otherwise (and for every other model)
    distributed: Distributed | None = None
