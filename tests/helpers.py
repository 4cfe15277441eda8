"""Test scaffolding that several test modules share: the Ray marker, reading a run's results,
damaging a JSON file in place and catching a checkpoint's refusal (the Ray instance itself is
``tests.conftest``'s ``ray_instance`` fixture)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from bench.checkpoints import CheckpointError, load_checkpoint

try:
    import ray as _ray  # noqa: F401

    HAVE_RAY = True
except ImportError:
    HAVE_RAY = False
needs_ray = pytest.mark.skipif(not HAVE_RAY, reason="ray not installed (the ray extra)")


def results_of(out: Path) -> tuple[dict, pd.DataFrame]:
    """The results document of the one run written under ``out``, and its predictions
    sidecar."""
    (path,) = sorted(out.glob("*.json"))
    side = pd.read_parquet(path.with_name(path.stem + ".predictions.parquet"))
    return json.loads(path.read_text()), side


def edit_json(path: Path, where: tuple[str | int, ...], value: object) -> None:
    """Set ``where`` (a path of keys and indices) in the JSON file ``path`` to ``value``."""
    doc = json.loads(path.read_text())
    inner = doc
    for k in where[:-1]:
        inner = inner[k]
    inner[where[-1]] = value
    path.write_text(json.dumps(doc))


def refused(results: Path, key: str, **kw: str | None) -> str:
    """The one-line message with which loading ``key``'s checkpoint of ``results`` fails
    (``kw`` go to ``load_checkpoint``)."""
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(results, key, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg
