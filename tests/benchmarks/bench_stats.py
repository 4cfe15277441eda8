"""pytest-benchmark: bootstrap CIs at the normal test-set scale (200,000 queries).

Run with ``nox -s bench`` (or ``pytest -m benchmark tests/benchmarks/bench_stats.py``).
Each case runs once (the bootstrap is deterministic under its seed) and records the
tracemalloc peak in ``extra_info``.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from bench.stats import metric_cis, paired_diff_cis, resample_batch

pytestmark = pytest.mark.benchmark  # deselected from the default suite; `nox -s bench`

N_QUERIES = 200_000
N_RESAMPLES = 1000


@pytest.fixture(scope="module")
def scored() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(truth, pred_a, pred_b): float32 (N_QUERIES,) each, two similar models."""
    rng = np.random.default_rng(0)
    truth = rng.choice(np.arange(0.5, 5.01, 0.5), N_QUERIES).astype(np.float32)
    pred_a = np.clip(truth + rng.normal(0.0, 0.90, N_QUERIES), 0.5, 5.0).astype(np.float32)
    pred_b = np.clip(truth + rng.normal(0.0, 0.92, N_QUERIES), 0.5, 5.0).astype(np.float32)
    return truth, pred_a, pred_b


def _traced(benchmark: Any, fn: Callable[[], Any]) -> Any:
    def run() -> Any:
        tracemalloc.start()
        try:
            out = fn()
            benchmark.extra_info["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        finally:
            tracemalloc.stop()
        return out

    benchmark.extra_info.update(
        n_queries=N_QUERIES,
        n_resamples=N_RESAMPLES,
        batch=resample_batch(N_QUERIES, N_RESAMPLES),
    )
    return benchmark.pedantic(run, rounds=1, iterations=1)


def test_metric_cis_200k(benchmark: Any, scored: tuple[np.ndarray, ...]) -> None:
    truth, pred_a, _ = scored
    cis = _traced(benchmark, lambda: metric_cis(truth, pred_a, n_resamples=N_RESAMPLES))
    assert cis["rmse"].method == "percentile"
    assert cis["rmse"].low < cis["rmse"].estimate < cis["rmse"].high


def test_paired_diff_cis_200k(benchmark: Any, scored: tuple[np.ndarray, ...]) -> None:
    truth, pred_a, pred_b = scored
    diff = _traced(
        benchmark, lambda: paired_diff_cis(truth, pred_a, pred_b, n_resamples=N_RESAMPLES)
    )
    assert diff["rmse"].high < 0  # a's errors are 0.90 vs b's 0.92 on 200k queries
