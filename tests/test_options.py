"""``predictors.options``: options declared once (default, constraint, help, search space),
inherited constraints, one checker, messages of one form."""

from __future__ import annotations

import math
import re
from typing import ClassVar

import numpy as np
import pytest

from predictors.options import (
    Boolean,
    Device,
    Integer,
    Interval,
    OneOf,
    Validated,
    check_options,
    constraints_of,
    model_options,
    option,
    option_error,
    options_of,
    search_spaces,
)
from predictors.registry import REGISTRY, get_class


@model_options
class _Toy(Validated):
    name: ClassVar[str] = "toy"

    k: int | None = option(None, Integer(1), help="neighbours", space=(1, 100))
    lr: float | str = option("auto", Interval(0.0, 10.0, closed="right"))
    heads: int = option(2, Integer(1))
    width: int = option(8, Integer(2, even=True, multiple_of="heads"))
    frac: float = option(0.5, Interval(0.0, 1.0, closed="left"))
    tau: float | None = option(None, Interval(0.0, closed="neither", inf=True, unit="hours"))
    mode: str = option("a", OneOf("a", "b"))
    flag: bool = option(True, Boolean())
    device: str | None = option(None, Device())


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
    """Every option of a built-in model is declared with option(...), with help, and its
    default passes."""
    for name in REGISTRY:
        if not REGISTRY[name][0].startswith("predictors."):
            continue
        cls = get_class(name)
        model = cls()
        declared = options_of(cls)
        assert set(declared) == set(model.get_config()), name
        assert all(opt.help for opt in declared.values()), name


def test_the_default_is_accepted_first_and_the_alternatives_keep_their_order() -> None:
    assert constraints_of(_Toy)["k"] == (None, Integer(1))
    assert constraints_of(_Toy)["lr"] == ("auto", Interval(0.0, 10.0, closed="right"))
    assert constraints_of(_Toy)["mode"] == (OneOf("a", "b"),)  # "a" is named by OneOf
    assert option(3, None, Integer(1)).metadata  # a numeric default is not prepended
    with pytest.raises(TypeError, match="give the constraint"):
        option(3)


def test_search_spaces_list_the_declared_ones() -> None:
    assert search_spaces(_Toy) == {"k": (1, 100)}
    assert options_of(_Toy)["k"].help == "neighbours"
    assert options_of(_Toy)["heads"].space is None

    class Plain:
        pass

    assert search_spaces(Plain) == {} and options_of(Plain) == {}


@model_options
class _Child(_Toy):
    """Inherits every option of _Toy, changes one default, restates one constraint and adds
    one option: no constraint is spread by hand."""

    heads: int = 4
    k: int | None = option(None, Integer(5))
    extra: int = option(1, Integer(0, 3), help="an option of its own")


def test_inherited_options_are_checked_without_spreading() -> None:
    assert list(options_of(_Child))[-1] == "extra"
    assert set(options_of(_Child)) == set(options_of(_Toy)) | {"extra"}
    assert _Child().heads == 4
    with pytest.raises(ValueError, match=re.escape("toy: option frac must be a number in [0, 1)")):
        _Child(frac=2.0)
    with pytest.raises(ValueError, match=re.escape("toy: option width must be an even integer")):
        _Child(width=6)  # heads=4 (the child's default) must divide it
    with pytest.raises(ValueError, match=re.escape("toy: option k must be an integer >= 5")):
        _Child(k=2)
    with pytest.raises(ValueError, match=re.escape("toy: option extra must be an integer in")):
        _Child(extra=9)
    # a redeclaration keeps the help and space it does not restate
    assert options_of(_Child)["k"].help == "neighbours"
    assert search_spaces(_Child) == {"k": (1, 100)}
    assert options_of(_Child)["heads"] == options_of(_Toy)["heads"]


def test_a_model_written_with_a_constraints_dict_still_checks_every_option() -> None:
    """The earlier spelling (plain fields and an option_constraints dict spreading the
    parent's) keeps working: each entry becomes the field's option, inherited ones stay
    checked, and reading the constraints gives the derived ones."""
    assert _Child.option_constraints == constraints_of(_Child)

    @model_options
    class _Old(_Toy):
        extra: int = 1
        option_constraints: ClassVar[dict] = {
            **_Toy.option_constraints,
            "extra": (Integer(1),),
        }

    assert _Old().extra == 1 and _Old(extra=4).extra == 4
    assert _Old.option_constraints == {**constraints_of(_Toy), "extra": (Integer(1),)}
    with pytest.raises(ValueError, match="option extra must be an integer >= 1, got 0"):
        _Old(extra=0)
    for key, value in constraints_of(_Toy).items():  # the inherited ones, without spreading
        assert _Old.option_constraints[key] == value
