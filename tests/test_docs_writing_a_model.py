"""docs/writing-a-model.md says what the code does: the containers' fields, and how option
values given on a model's name are typed (every example of its table is parsed here)."""

from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path
from typing import Any

import pytest

from predictors.registry import create, parse_spec
from predictors.types import EventStore

DOC = (Path(__file__).resolve().parents[1] / "docs" / "writing-a-model.md").read_text()

#: the "value" column of the typing table -> a check of the parsed value
KINDS: dict[str, Any] = {
    "`True`": lambda v: v is True,
    "`False`": lambda v: v is False,
    "`None`": lambda v: v is None,
    "an `int`": lambda v: type(v) is int,
    "a `float`": lambda v: type(v) is float,
    "the text, stripped": lambda v: type(v) is str,
}


def _typing_rows() -> list[tuple[str, str]]:
    """(kind, example) for every example in the table of option typing."""
    rows = re.findall(r"^\| (.+?) \| (.+?) \| (.+?) \|$", DOC, flags=re.MULTILINE)
    out = [
        (kind, ex)
        for _, kind, examples in rows
        if kind in KINDS
        for ex in re.findall(r"`([a-z_-]+=[^`]*)`", examples)
    ]
    assert len(out) >= 12, "the typing table is gone from docs/writing-a-model.md"
    return out


@pytest.mark.parametrize("kind, example", _typing_rows())
def test_each_typing_example_parses_as_documented(kind: str, example: str) -> None:
    (value,) = parse_spec(f"user-mean:{example}").options.values()
    assert KINDS[kind](value), (example, value)


def test_the_worked_examples_of_the_typing_section() -> None:
    assert parse_spec("recent-k:max-k=3").options == {"max_k": 3}
    assert parse_spec("bias:user_damping=5:refit=no").options == {
        "user_damping": 5,
        "refit": False,
    }
    assert parse_spec("user-mean:x='10'").options == {"x": "'10'"}
    assert math.isnan(parse_spec("user-mean:x=nan").options["x"])
    assert create("bias:user_damping=5").get_config()["user_damping"] == 5
    with pytest.raises(ValueError, match=r"option k must be an integer >= 1, got 10\.0"):
        create("recent-k:k=10.0")
    with pytest.raises(ValueError, match=r"option refit must be true or false, got 1"):
        create("bias:refit=1")
    with pytest.raises(ValueError, match=r"'0' .* is not key=value"):
        parse_spec("user-mean:device=cuda:0")
    with pytest.raises(ValueError, match="given twice"):
        parse_spec("recent-k:k=5:k=6")


def test_every_eventstore_field_is_listed() -> None:
    row = next(line for line in DOC.splitlines() if line.startswith("| `EventStore` |"))
    listed = set(re.findall(r"`(\w+)(?:\(\))?`", row))
    fields = {f.name for f in dataclasses.fields(EventStore)}
    members = {"n_users", "n_events", "lengths", "user"}
    assert fields | members <= listed, sorted((fields | members) - listed)
