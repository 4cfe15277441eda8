"""Whether this process is a rank of a ``torchrun`` job (its environment says so)."""

from __future__ import annotations

import os

__all__ = ["TORCHRUN_ENV", "rank", "under_torchrun"]

#: the variables torchrun sets in every rank's environment
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


def under_torchrun() -> bool:
    """True in a process started by ``torchrun`` (every one of ``TORCHRUN_ENV`` is set)."""
    return all(k in os.environ for k in TORCHRUN_ENV)


def rank() -> int | None:
    """This process's rank under torchrun, or None outside torchrun."""
    return int(os.environ["RANK"]) if under_torchrun() else None
