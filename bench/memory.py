"""Will a run fit in memory? The harness's own arrays, estimated before any model runs.

A run that cannot fit should stop at once with the option to change, not minutes later by
the kernel's OOM killer. The estimate covers what the runner itself builds from the split
(the events fitting may see, the training targets, the test batches); models estimate and
check their own large arrays (they know their sizes) and raise naming their options.

The memory available is the smaller of the kernel's ``MemAvailable`` and the cgroup limit
(containers, batch schedulers), minus what this process already holds counts as used.
``RATINGBENCH_MEMORY_LIMIT`` (bytes, or with a K/M/G suffix) replaces it, for a run that
must stay within a share of a machine.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bench.errors import ConfigError

__all__ = ["Copies", "Need", "available_bytes", "check_fits", "parse_size"]

# history row: item int32 + rating float32 + timestamp int64
HISTORY_ROW_BYTES = 16
# share of the available memory the harness's arrays may take: models need the rest
HARNESS_SHARE = 0.5


@dataclass(frozen=True)
class Copies:
    """How many copies of the run's arrays this machine holds (one per worker process or
    rank, see ``Executor.copies``), who holds them, and the option that sets the count."""

    n: int = 1
    held_by: str = ""  # e.g. "the driver and each worker"
    option: str | None = None  # e.g. "--jobs": a smaller value holds fewer copies


@dataclass(frozen=True)
class Need:
    """One array family the runner will build: what it is, its size, the option that sizes it."""

    what: str
    bytes: int
    option: str


def parse_size(text: str) -> int:
    """``"512M"`` -> bytes; plain digits are bytes. Raises ConfigError naming the variable."""
    t = text.strip().upper()
    units = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
    suffix = t[-1:] if t[-1:] in units else ""
    mult = units.get(suffix, 1)
    digits = t[:-1] if suffix else t
    try:
        value = float(digits)
    except ValueError:
        raise ConfigError(
            f"RATINGBENCH_MEMORY_LIMIT={text!r}: expected a size such as 8G, 512M or 1000000"
        ) from None
    if value <= 0:
        raise ConfigError(f"RATINGBENCH_MEMORY_LIMIT={text!r}: must be positive")
    return int(value * mult)


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_free() -> int | None:
    """Limit minus usage of this process's cgroup (v2, then v1), or None when unlimited."""
    pairs = (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    )
    for limit_path, usage_path in pairs:
        try:
            raw = Path(limit_path).read_text().strip()
            if raw == "max":
                return None
            limit = int(raw)
            if limit >= 2**60:  # v1 writes a huge number for "no limit"
                return None
            return max(0, limit - int(Path(usage_path).read_text().strip()))
        except (OSError, ValueError):
            continue
    return None


def available_bytes() -> int | None:
    """Bytes this run may still allocate, or None when the platform does not say."""
    env = os.environ.get("RATINGBENCH_MEMORY_LIMIT")
    if env:
        return parse_size(env)
    found = [v for v in (_meminfo_available(), _cgroup_free()) if v is not None]
    return min(found) if found else None


def check_fits(needs: list[Need], available: int | None, copies: Copies = Copies()) -> None:
    """Raise ConfigError when ``needs``, held ``copies.n`` times on this machine, exceed
    ``HARNESS_SHARE`` of ``available`` bytes, naming the largest need and its option (and the
    option that sets the copies); nothing happens when ``available`` is None."""
    if available is None:
        return
    total = sum(n.bytes for n in needs) * max(1, copies.n)
    budget = int(available * HARNESS_SHARE)
    if total <= budget:
        return
    big = max(needs, key=lambda n: n.bytes)
    parts = ", ".join(f"{n.what} {n.bytes / 2**20:,.0f} MB" for n in needs if n.bytes)
    held = ""
    fix = f"lower {big.option}"
    if copies.n > 1:
        held = f", held {copies.n} times on this machine ({copies.held_by})"
        if copies.option is not None:
            fix += f", or a smaller {copies.option}"
    raise ConfigError(
        f"this run needs about {total / 2**20:,.0f} MB for its own arrays ({parts}{held}) but "
        f"only {available / 2**20:,.0f} MB are available, of which the harness takes at most "
        f"{HARNESS_SHARE:.0%} to leave room for the models; the largest is {big.what}: {fix}"
    )
