"""One whole `bench run` in a fresh Python process, timed, for the scripts under
tests/benchmarks: ``run(args, out)`` -> (wall seconds, results JSON, predictions sidecar)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], out: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, dict, pd.DataFrame]:
    """``python -m bench.cli run ARGS --out OUT`` from the repository root; exits with its
    stderr when the exit code is not in ``ok``."""
    cmd = [sys.executable, "-m", "bench.cli", "run", *args, "--out", str(out)]
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode not in ok:
        sys.exit(f"{' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    (path,) = out.glob("*.json")
    side = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    return wall, json.loads(path.read_text()), side
