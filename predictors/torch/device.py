"""The torch side of the device: a ``torch.device`` from a device name, seeded init.

The name is checked and resolved by ``predictors.device.resolve_device`` (the one resolver
of the project); this module only wraps the answer. Determinism: module initialisation and
dropout draw from torch's global generator, so the adapter runs them inside
``seeded(seed, device)`` (``torch.random.fork_rng`` + ``manual_seed``), which restores the
global state afterwards.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from predictors.device import resolve_device

__all__ = ["seeded", "torch_device"]


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
