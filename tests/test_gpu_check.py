"""The GPU throughput script runs end to end in --smoke mode on CPU, and fails loudly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parent / "benchmarks" / "gpu_check.py"


def run(tmp_path: Path, *args: str) -> tuple[int, dict, str]:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    doc = json.loads(out.read_text()) if out.exists() else {}
    return proc.returncode, doc, proc.stderr


def test_smoke_on_cpu(tmp_path: Path) -> None:
    rc, doc, err = run(tmp_path, "--device", "cpu", "--steps", "2", "--warmup", "1")
    assert rc == 0, err[-3000:]
    assert doc["ok"] is True and doc["smoke"] is True
    assert doc["data"]["n_train_targets"] == doc["data"]["notebook_train_samples"] > 0
    for name in ("attention", "transformer"):
        row = doc["models"][name]
        assert row["status"] == "ok", row
        rb, nb = row["ratingbench"], row["notebook"]
        assert rb["steps"] == nb["steps"] == 2
        assert rb["samples"] == nb["samples"] == 2 * doc["settings"]["batch_size"]
        assert rb["samples_per_s"] > 0 and nb["samples_per_s"] > 0
        assert row["speedup"] == pytest.approx(rb["samples_per_s"] / nb["samples_per_s"])


def test_unknown_model_fails_with_nonzero_exit(tmp_path: Path) -> None:
    rc, doc, _ = run(tmp_path, "--device", "cpu", "--models", "nope", "--steps", "1")
    assert rc == 1
    assert doc["ok"] is False and doc["models"]["nope"]["status"] == "failed"
    assert "nope" in doc["models"]["nope"]["error"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_missing_cuda_fails_with_nonzero_exit(tmp_path: Path) -> None:
    rc, doc, _ = run(tmp_path, "--device", "cuda")
    assert rc == 2
    assert doc["ok"] is False and "CUDA" in doc["error"]
