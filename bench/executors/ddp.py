"""The ranks of a ``torchrun`` job (``--executor ddp``; ``bench run --ddp N`` launches one on
this machine): every rank plans the same jobs, a model that declares
``Capabilities(distributed=True)`` is fitted by all of them together, any other by rank 0
alone, and rank 0 alone predicts, scores and writes. What the ranks agree on is
``TorchrunRanks``, the executor's ``ranks``."""

from __future__ import annotations

import dataclasses
import os
import socket
from typing import TYPE_CHECKING, Any

from bench.errors import ConfigError
from bench.executors.base import Executor, JobFn, exit_guard
from bench.executors.serial import SerialExecutor
from bench.memory import Copies
from bench.torchrun import under_torchrun

if TYPE_CHECKING:  # pragma: no cover
    from bench.executors.inputs import JobInputs
    from bench.jobs import Job, JobResult
    from predictors.contract import Distributed

__all__ = ["DDP_TIMEOUT_S", "DDPExecutor", "TorchrunRanks"]

#: how long a rank waits for the others at a collective: rank 0 fits the models that do not
#: train data-parallel alone while the other ranks wait at the next one's first collective
DDP_TIMEOUT_S = 6 * 3600


@dataclasses.dataclass(frozen=True)
class TorchrunRanks:
    """This process's place among the ranks of a torchrun job (``bench.executors.base.Ranks``):
    rank 0 writes; each rank runs on its own GPU of its machine; rank 0's list of jobs is
    broadcast and checked against the others' data and split hashes."""

    rank: int
    world_size: int
    local_rank: int
    backend: str
    console: Any = None

    @property
    def writes(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> Distributed:
        from predictors.contract import Distributed

        return Distributed(self.rank, self.world_size, self.backend, self.local_rank)

    def place(self, device: str) -> str:
        return f"cuda:{self.local_rank}" if device.startswith("cuda") else device

    def agree(self, jobs: list[Job], hashes: dict[str, str]) -> list[Job]:
        import torch.distributed as tdist

        box: list[Any] = [([str(j.run_key) for j in jobs], hashes)]
        tdist.broadcast_object_list(box, src=0)
        keys0, hashes0 = box[0]
        by_key = {str(j.run_key): j for j in jobs}
        if hashes0 != hashes or set(keys0) != set(by_key):
            raise ConfigError(
                f"--ddp: rank {self.rank} planned other jobs or read other data than rank 0 "
                f"({hashes} here, {hashes0} on rank 0); every rank must see the same files"
            )
        agreed = [by_key[k] for k in keys0]
        together = any(j.capabilities.distributed for j in agreed)
        if self.writes and not together and self.console is not None:
            self.console.print(
                "[yellow]note:[/] no model of this run trains data-parallel (the torch sequence "
                "models do): rank 0 fits them all, the other ranks only wait"
            )
        return agreed

    def follow(self, fn: JobFn, inputs: JobInputs, jobs: list[Job]) -> None:
        inputs = dataclasses.replace(inputs, distributed=self.distributed, fit_only=True)
        for job in jobs:
            if job.capabilities.distributed:
                with exit_guard():
                    fn(job, inputs, None)


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
        self.ranks: TorchrunRanks = TorchrunRanks(
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            local_rank=int(os.environ["LOCAL_RANK"]),
            backend="gloo",
            console=console,
        )
        super().__init__(self.ranks.world_size)
        self._device = device
        self._serial = SerialExecutor(console)

    def open(self) -> None:
        import datetime as dt

        import torch
        import torch.distributed as tdist

        cuda = self._device.startswith("cuda") or (
            self._device == "auto" and torch.cuda.is_available()
        )
        ranks = dataclasses.replace(self.ranks, backend="nccl" if cuda else "gloo")
        self.ranks = ranks
        if cuda:
            found = torch.cuda.device_count()
            if ranks.local_rank >= found:
                raise ConfigError(
                    f"--ddp on CUDA: rank {ranks.rank} needs GPU {ranks.local_rank} of this "
                    f"machine, which has {found}; give --ddp at most {found}, or --device cpu"
                )
            torch.cuda.set_device(ranks.local_rank)
        if not tdist.is_initialized():
            tdist.init_process_group(ranks.backend, timeout=dt.timedelta(seconds=DDP_TIMEOUT_S))

    @property
    def copies(self) -> Copies:
        n = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        return Copies(n, f"--ddp {n}: each rank on this machine loads its own", "--ddp")

    def start(self, fn: JobFn, inputs: JobInputs) -> None:
        self._torch_threads = inputs.torch_threads
        self._serial.start(fn, dataclasses.replace(inputs, distributed=self.ranks.distributed))

    def submit(self, job: Job) -> None:
        self._serial.submit(job)

    @property
    def pending(self) -> int:
        return self._serial.pending

    def running(self) -> list[Job]:
        return self._serial.running()

    def next_done(self) -> JobResult:
        job = self._serial.running()[0]
        result = self._serial.next_done()
        together = job.capabilities.distributed
        worker = f"{self.ranks.world_size} ranks" if together else "rank 0"
        return result.ran(f"{worker} ({socket.gethostname()})", result.attempts)

    def close(self, kill: bool = False) -> None:
        import torch.distributed as tdist

        self._serial.close(kill)
        if tdist.is_initialized():
            tdist.destroy_process_group()

    def record(self, jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return {
            **super().record(jobs),
            "retries": 0,
            "backend": self.ranks.backend,
            "world_size": self.ranks.world_size,
            "batch_sharding": "each rank a contiguous shard of every global batch",
        }
