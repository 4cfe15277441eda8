"""What every job of a run reads (``JobInputs``), built once by the driver and shipped once
per worker: through a pool's initializer (one pickle per worker process) or Ray's object
store (one ``ray.put``; the arrays mapped zero-copy). Every array in it is read-only where
it is built and again wherever it arrives (a pickle does not keep the flag), so that a model
that writes into one fails the same way under every executor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from bench.checkpoints import CheckpointTarget
    from bench.plan import TestBatches, ValCheck
    from bench.spec import RunSpec
    from predictors.contract import Distributed
    from predictors.types import TrainSet

__all__ = ["JobInputs"]


@dataclass(frozen=True)
class JobInputs:
    """What every job reads, built once by the driver and shipped once per worker."""

    spec: RunSpec
    device: str  # the resolved --device
    torch_threads: int | None  # torch intra-op threads in every job; None: leave torch's
    trains: dict[str | None, TrainSet]  # one TrainSet per embedding (None: the base one)
    val_check: ValCheck
    tests: TestBatches  # the test queries in chunks of spec.chunk_size, in the split's order
    checkpoints: CheckpointTarget | None = None  # where fitted models are saved (--save-models)
    # a data-parallel run (--ddp): this process's rank, given to the models that declare
    # Capabilities(distributed=True); None otherwise
    distributed: Distributed | None = None
    fit_only: bool = False  # a rank > 0 of a data-parallel run: fit, then nothing else

    def __post_init__(self) -> None:
        self.freeze()

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickled (in a worker): the fields, read-only again."""
        for k, v in state.items():
            object.__setattr__(self, k, v)
        self.freeze()

    def freeze(self) -> None:
        """Make every array a model receives read-only: the TrainSets (events, targets,
        validation queries, embeddings), the validation check and the kept test batches
        (the others are read-only as each is built)."""
        from bench.plan import read_only

        read_only((self.trains, self.val_check))
        self.tests.freeze()
