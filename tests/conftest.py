"""Shared fixtures: a hand-made tiny log, and the real ml-latest-small when present."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from bench.data.split import Split, make_split
from bench.data.types import Interactions, RawRatings, build_interactions
from predictors.types import EventStore, RatingScale

#: The half-star scale of MovieLens, which the hand-made tests use.
HALF_STARS = RatingScale(0.5, 5.0, 0.5)

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path | None:
    """The folder that holds ml-latest-small/: $RATINGBENCH_DATA_DIR, else ../shared/data,
    else the copy shipped inside the package (extracted, verified, into a temp folder), so
    that a fresh clone runs the real-data tests. None only when none of them is there."""
    env = os.environ.get("RATINGBENCH_DATA_DIR")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "data"]:
        if (cand / "ml-latest-small" / "ratings.csv").is_file():
            return cand
    from bench.data.locate import locate_dataset
    from bench.data.manifest import get_manifest, shipped_archive

    manifest = get_manifest("ml-latest-small")
    if shipped_archive(manifest) is None:
        return None
    cache = Path(tempfile.gettempdir()) / "ratingbench-tests" / "datasets"
    return locate_dataset(manifest, None, cache, download=False).folder.parent


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (parsed ratings, embeddings, downloads) go to a temp folder, not the user's."""
    old = os.environ.get("RATINGBENCH_CACHE")
    os.environ["RATINGBENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("RATINGBENCH_CACHE", None)
    else:
        os.environ["RATINGBENCH_CACHE"] = old


@pytest.fixture(scope="session")
def data_dir() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip(
            "ml-latest-small not found: set RATINGBENCH_DATA_DIR to the folder holding "
            "ml-latest-small/ (or place it at ../shared/data); the shipped copy is absent"
        )
    return d


def make_raw(rows: list[tuple[int, int, float, int]], scale=(0.5, 5.0, 0.5)) -> RawRatings:
    a = np.array(rows, dtype=np.float64)
    return RawRatings(
        user_id=a[:, 0].astype(np.int64),
        item_id=a[:, 1].astype(np.int64),
        rating=a[:, 2].astype(np.float32),
        timestamp=a[:, 3].astype(np.int64),
        scale=RatingScale(*scale),
        source="tiny",
    )


def make_store(users: list[list[tuple[int, float, int]]]) -> EventStore:
    """An EventStore from per-user lists of (item, rating, timestamp), oldest first."""
    lens = [len(u) for u in users]
    flat = [e for u in users for e in u]
    offsets = np.zeros(len(users) + 1, dtype=np.int64)
    np.cumsum(lens, out=offsets[1:])
    return EventStore(
        user_offsets=offsets,
        item=np.array([e[0] for e in flat], dtype=np.int32),
        rating=np.array([e[1] for e in flat], dtype=np.float32),
        timestamp=np.array([e[2] for e in flat], dtype=np.int64),
    )


def tiny_rows() -> list[tuple[int, int, float, int]]:
    """Three users, written out of order on purpose. User 7 has 14 events, user 3 has 12,
    user 5 has 4 (too short for min_history=10). Ratings are chosen so that every mean is
    easy to compute by hand."""
    rows: list[tuple[int, int, float, int]] = []
    # user 7: items 100..113 at times 1000..1013, ratings cycle 1,2,3,4,5
    for j in range(14):
        rows.append((7, 100 + j, float(1 + j % 5), 1000 + j))
    # user 3: items 100..111 at times 2000+10*j, rating 4 except the last two (2 and 5)
    for j in range(12):
        r = 4.0 if j < 10 else (2.0 if j == 10 else 5.0)
        rows.append((3, 100 + j, r, 2000 + 10 * j))
    # user 5: 4 events
    for j in range(4):
        rows.append((5, 200 + j, 3.0, 500 + j))
    rows.reverse()  # file order must not matter
    return rows


@pytest.fixture
def tiny() -> Interactions:
    return build_interactions(make_raw(tiny_rows()), name="tiny")


def detailed(model, batch):
    """(values, fallback) of ``model.predict_detailed(batch)``."""
    out = model.predict_detailed(batch)
    return out.values, out.fallback


def synthetic_world(n_users: int, seed: int):
    """(loaded, interactions, split) of a small synthetic dataset, split with
    ``min_history=10`` and five test samples per user."""
    from bench.data.loading import DataSource, load_source
    from bench.data.split import SplitParams, make_split

    loaded = load_source(
        DataSource(dataset="synthetic", users=n_users, data_seed=seed)
    )
    inter = loaded.interactions
    return loaded, inter, make_split(inter, SplitParams(min_history=10, samples_per_user=5))


def with_test_targets_changed(inter: Interactions, split: Split) -> tuple[Interactions, Split]:
    """``inter`` rebuilt with every test target's rating moved to the far end of the scale
    (above 2.5: the low end, else the high end), and split again with ``split``'s params.
    Asserts that the new split has the same test positions (the same target events)."""
    user_id = inter.user_ids[inter.user]
    rating = inter.rating.copy()
    rows = np.lexsort((inter.timestamp, user_id))[split.test_pos]  # the targets' rows
    rating[rows] = np.where(rating[rows] > 2.5, inter.scale.low, inter.scale.high)
    item_id = inter.item_ids[inter.item]
    raw = RawRatings(user_id, item_id, rating, inter.timestamp.copy(), inter.scale, "changed")
    inter2 = build_interactions(raw)
    split2 = make_split(inter2, split.params)
    assert np.array_equal(split2.test_pos, split.test_pos)
    return inter2, split2


def modules_loaded_by(code: str, watched: list[str]) -> list[str]:
    """Which of ``watched`` are in ``sys.modules`` after a fresh interpreter runs ``code``
    (sorted): what an import really pulls in, untouched by this test session's imports."""
    probe = f"import sys; {code}; print(sorted(m for m in {watched!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout.strip())


@pytest.fixture(scope="module")
def ray_instance() -> Iterator[object]:
    """One local Ray instance for a module's Ray runs (the executor reuses it); the test is
    skipped without ray (the ray extra)."""
    try:
        import ray
    except ImportError:
        pytest.skip("ray not installed (the ray extra)")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    yield ray
    ray.shutdown()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The machine the suite ran on, at the end of the report: float32 results may round
    differently on another CPU, and a log that names the CPU says which one."""
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    parts = [cpu, f"{os.cpu_count()} logical CPUs"]
    torch = sys.modules.get("torch")
    if torch is not None:
        parts.append(
            f"torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}, "
            f"{torch.get_num_threads()} threads)"
        )
    terminalreporter.write_line("machine: " + "; ".join(parts))
