"""The torch side of the device: a ``torch.device`` from a device name, seeded init.

The name is checked and resolved by ``predictors.device.resolve_device`` (the one resolver
of the project); this module only wraps the answer. Determinism: module initialisation and
dropout draw from torch's global generator, so the adapter runs them inside
``seeded(seed, device)`` (``torch.random.fork_rng`` + ``manual_seed``), which restores the
global state afterwards. ``owned(array, device)`` is how every NumPy array enters a torch
model: as a copy in torch's own memory.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import torch
from numpy.typing import NDArray

from predictors.device import resolve_device

__all__ = ["owned", "seeded", "torch_device"]


def torch_device(name: str | torch.device | None) -> torch.device:
    """The ``torch.device`` for ``name`` (``auto | cpu | cuda | cuda:N | mps``; None is
    ``auto``). Raises ValueError as ``resolve_device`` does (unknown name, unavailable
    backend). Torch is imported here, so ``auto`` always resolves to a concrete device."""
    if isinstance(name, torch.device):
        return name
    return torch.device(resolve_device("auto" if name is None else name))


@contextlib.contextmanager
def seeded(seed: int, device: torch.device) -> Iterator[None]:
    """Run the block with torch's global generators seeded by ``seed``, then restore them
    (``torch.random.fork_rng``), so module init and dropout are reproducible without
    touching the caller's random state."""
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        yield


def owned(a: NDArray[np.generic], device: torch.device | None = None) -> torch.Tensor:
    """``a`` copied into a tensor in torch's own memory on ``device`` (None: the CPU).

    ``torch.from_numpy`` alone shares NumPy's buffer, and where that buffer lies (its
    alignment) depends on the process: malloc's heap in one, a worker's copy of the inputs in
    another. A float32 kernel may take a different path for a differently aligned row and
    round it differently, so the same fit could predict a few ulps apart under another
    executor. torch's allocator aligns every buffer to 64 bytes: from it, every process runs
    the same kernels on the same addresses modulo 64."""
    return torch.tensor(a, device=device)  # always a copy, contiguous, the same dtype
