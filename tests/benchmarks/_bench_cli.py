"""One whole `bench run` in a fresh Python process, timed, for the scripts under
tests/benchmarks: ``run(args, out)`` -> (wall seconds, results JSON, predictions sidecar).
The process is ``e2e.launch``'s, as every whole-command figure is measured."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import e2e
import pandas as pd


def run(args: list[str], out: Path, ok: tuple[int, ...] = (0,)) -> tuple[float, dict, pd.DataFrame]:
    """``bench run ARGS --out OUT`` from the repository root; exits with its stderr when the
    exit code is not in ``ok``."""
    r = e2e.launch(["run", *args, "--out", str(out)], env={"RAY_USAGE_STATS_ENABLED": "0"})
    if r["returncode"] not in ok:
        sys.exit(f"{' '.join(args)} failed ({r['returncode']}):\n{r['stderr_tail']}")
    (path,) = out.glob("*.json")
    side = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    return r["seconds"], json.loads(path.read_text()), side
