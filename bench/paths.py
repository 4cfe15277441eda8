"""Where the harness keeps what it downloads, parses and builds: one cache root for all."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CACHE_ENV", "cache_root"]

CACHE_ENV = "RATINGBENCH_CACHE"


def cache_root() -> Path:
    """``$RATINGBENCH_CACHE``, else ``$XDG_CACHE_HOME/ratingbench``, else
    ``~/.cache/ratingbench``. Each cache is a sub-folder (``datasets``, ``embeddings``,
    ``interactions``)."""
    root = os.environ.get(CACHE_ENV)
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ratingbench"
