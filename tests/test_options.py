"""``predictors.options``: declared constraints, one checker, messages of one form."""

from __future__ import annotations

import math
import re
from typing import ClassVar

import numpy as np
import pytest

from predictors.options import (
    Boolean,
    Constraints,
    Device,
    Integer,
    Interval,
    OneOf,
    Validated,
    check_options,
    model_options,
    option_error,
)
from predictors.registry import REGISTRY, get_class


@model_options
class _Toy(Validated):
    name: ClassVar[str] = "toy"

    k: int | None = None
    lr: float | str = "auto"
    heads: int = 2
    width: int = 8
    frac: float = 0.5
    tau: float | None = None
    mode: str = "a"
    flag: bool = True
    device: str | None = None

    option_constraints: ClassVar[Constraints] = {
        "k": (None, Integer(1)),
        "lr": ("auto", Interval(0.0, 10.0, closed="right")),
        "heads": (Integer(1),),
        "width": (Integer(2, even=True, multiple_of="heads"),),
        "frac": (Interval(0.0, 1.0, closed="left"),),
        "tau": (None, Interval(0.0, closed="neither", inf=True, unit="hours")),
        "mode": (OneOf("a", "b"),),
        "flag": (Boolean(),),
        "device": (None, Device()),
    }


def test_defaults_and_accepted_values_pass() -> None:
    t = _Toy()
    assert (t.k, t.lr, t.device) == (None, "auto", None)
    _Toy(k=np.int64(3), lr=10, width=4, frac=0.0, tau=math.inf, mode="b", flag=False)
    _Toy(device="cpu", heads=4, width=8)


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"k": 0}, "toy: option k must be an integer >= 1, got 0"),
        ({"k": True}, "toy: option k must be an integer >= 1, got True"),
        ({"k": 2.0}, "toy: option k must be an integer >= 1, got 2.0"),
        ({"lr": 0}, "toy: option lr must be 'auto' or a number in (0, 10], got 0"),
        ({"lr": "fast"}, "toy: option lr must be 'auto' or a number in (0, 10], got 'fast'"),
        ({"width": 7}, "toy: option width must be an even integer >= 2 divisible by heads (2)"),
        ({"heads": 3}, "toy: option width must be an even integer >= 2 divisible by heads (3)"),
        ({"frac": 1.0}, "toy: option frac must be a number in [0, 1), got 1.0"),
        ({"frac": math.nan}, "toy: option frac must be a number in [0, 1), got nan"),
        ({"tau": 0}, "toy: option tau must be a number of hours > 0 (or inf), got 0"),
        ({"tau": -math.inf}, "toy: option tau must be a number of hours > 0 (or inf)"),
        ({"mode": "c"}, "toy: option mode must be one of a, b, got 'c'"),
        ({"flag": 1}, "toy: option flag must be true or false, got 1"),
    ],
)
def test_bad_values_fail_in_one_form(kw: dict, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _Toy(**kw)


def test_a_bad_device_says_why() -> None:
    with pytest.raises(ValueError, match=r"toy: option device must be a device .*, got 'tpu' "):
        _Toy(device="tpu")
    with pytest.raises(ValueError, match=r"\(unknown device 'tpu'; known: auto, cpu, cuda, mps"):
        _Toy(device="tpu")


def test_check_options_sees_later_changes_and_option_error_has_no_prefix() -> None:
    t = _Toy()
    t.k = -1
    with pytest.raises(ValueError, match="toy: option k must be an integer >= 1, got -1"):
        check_options(t)
    assert option_error("n", 5, (Integer(1, 3),), {}) == (
        "option n must be an integer in [1, 3], got 5"
    )
    assert option_error("n", 2, (Integer(1, 3),), {}) is None


def test_every_registered_model_declares_its_options() -> None:
    """Every option of a built-in model has a declared constraint and its default passes."""
    for name in REGISTRY:
        if not REGISTRY[name][0].startswith("predictors."):
            continue
        cls = get_class(name)
        model = cls()
        declared = set(getattr(cls, "option_constraints", {}))
        assert declared == set(model.get_config()), name
