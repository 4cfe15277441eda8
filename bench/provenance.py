"""Where and how a run ran: peak memory while a model runs, the git commit, package versions,
the platform (recorded in every results file)."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import threading
from importlib import metadata
from pathlib import Path
from typing import Any

import bench

__all__ = ["PeakRSS", "provenance"]


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/statm") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


class PeakRSS:
    """Samples the process RSS every few ms in a thread; ``peak`` is the high-water mark.
    Falls back to ``ru_maxrss`` (process lifetime) where /proc is not available."""

    def __init__(self, interval: float = 0.005) -> None:
        self.interval = interval
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            now = _rss_mb()
            if now is not None and (self.peak is None or now > self.peak):
                self.peak = now

    def __enter__(self) -> PeakRSS:
        if self.start is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        now = _rss_mb()
        if now is not None and self.peak is not None:
            self.peak = max(self.peak, now)
        if self.start is None:  # no /proc: lifetime maximum (KiB on Linux, bytes on macOS)
            ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            self.peak = ru / 2**20 if sys.platform == "darwin" else ru / 2**10


def _git_info() -> dict[str, Any]:
    root = Path(bench.__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for pkg in ("ratingbench", "numpy", "pandas", "pyarrow", "scipy", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = None
    return out


def provenance() -> dict[str, Any]:
    """Where the run ran: read once per run (git status is a subprocess)."""
    return {
        "ratingbench": bench.__version__,
        "git": _git_info(),
        "versions": _versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
