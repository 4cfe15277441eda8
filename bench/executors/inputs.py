"""What every job of a run reads (``JobInputs``), built once by the driver and shipped once
per worker: through a pool's initializer (one pickle per worker process) or Ray's object
store (one ``ray.put``; the arrays mapped zero-copy, read-only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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

    def freeze(self) -> None:
        """Make the kept test batches read-only, as the driver keeps them (a model that
        writes into its input fails the same way wherever it runs)."""
        self.tests.freeze()
