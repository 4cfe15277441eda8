"""Test scaffolding that several test modules share: damaging a JSON file in place and
catching a checkpoint's refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.checkpoints import CheckpointError, load_checkpoint


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
