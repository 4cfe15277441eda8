"""Declared option constraints and the one function that checks them.

In the spirit of scikit-learn's ``_parameter_constraints``: a model class declares, in one
ClassVar ``option_constraints``, what each option accepts, as a tuple of alternatives::

    option_constraints = {
        "k": (None, Integer(1)),              # None (tuned) or an integer >= 1
        "lr": ("auto", Interval(1e-12, 10)),  # the string "auto" or a number in [1e-12, 10]
        "baseline": (None, OneOf("bias", "user-mean")),
        "refit": (Boolean(),),
    }

An alternative is ``None`` (the value None), a string (that exact string), or a constraint
object (``Integer``, ``Interval``, ``OneOf``, ``Boolean``, ``Device``). ``check_options``
checks every declared option of an instance and raises ValueError in one form::

    "<model>: option <key> must be <what>, got <value>"

where ``<what>`` names the constraint objects and the accepted strings (``None`` is not
named: it always means "tune it" or "take the run's value", and the model's docstring says
which). ``@model_options`` makes a class an options dataclass (keyword-only fields, the
``__init__`` that stores them, identity equality) whose ``__post_init__`` runs
``check_options``; option blocks shared by several models are declared once in a base class
decorated the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

import numpy as np

from predictors.device import resolve_device

__all__ = [
    "Boolean",
    "Constraints",
    "Device",
    "Integer",
    "Interval",
    "OneOf",
    "Validated",
    "check_options",
    "model_options",
    "option_error",
]


def _bounds(word: str, low: float | None, high: float | None, left: bool, right: bool) -> str:
    """``word`` with its bounds: "x >= 1", "x > 0", "x in (0, 1]" (numbers as ``:g``)."""
    lo, hi = (f"{x:g}" if x is not None else "" for x in (low, high))
    if low is not None and high is not None:
        return f"{word} in {'[' if left else '('}{lo}, {hi}{']' if right else ')'}"
    if low is not None:
        return f"{word} {'>=' if left else '>'} {lo}"
    if high is not None:
        return f"{word} {'<=' if right else '<'} {hi}"
    return word


@dataclass(frozen=True)
class Integer:
    """An integer (not a bool) in ``[low, high]``; ``even``: a multiple of 2;
    ``multiple_of``: the name of another option this one must be a multiple of."""

    low: int | None = None
    high: int | None = None
    even: bool = False
    multiple_of: str | None = None

    def reason(self, v: Any, options: Mapping[str, Any]) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            return ""
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            return ""
        if self.even and v % 2:
            return ""
        other = options.get(self.multiple_of) if self.multiple_of else None
        if isinstance(other, int) and other > 0 and v % other:
            return ""
        return None

    def describe(self, options: Mapping[str, Any]) -> str:
        word = "an even integer" if self.even else "an integer"
        text = _bounds(word, self.low, self.high, left=True, right=True)
        if self.multiple_of:
            text += f" divisible by {self.multiple_of} ({options.get(self.multiple_of)!r})"
        return text


@dataclass(frozen=True)
class Interval:
    """A finite number (int or float, not a bool) between ``low`` and ``high``; ``closed``
    says which ends belong to it (``"both"``, ``"left"``, ``"right"``, ``"neither"``).
    ``inf``: +inf is accepted too. ``unit`` is named in the message."""

    low: float | None = None
    high: float | None = None
    closed: str = "both"
    inf: bool = False
    unit: str | None = None

    def reason(self, v: Any, options: Mapping[str, Any]) -> str | None:
        if isinstance(v, bool) or not isinstance(v, int | float | np.integer | np.floating):
            return ""
        if self.inf and v == math.inf:
            return None
        if not math.isfinite(v):
            return ""
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        if self.low is not None and (v < self.low or (v == self.low and not left)):
            return ""
        if self.high is not None and (v > self.high or (v == self.high and not right)):
            return ""
        return None

    def describe(self, options: Mapping[str, Any]) -> str:
        word = f"a number of {self.unit}" if self.unit else "a number"
        left = self.closed in ("both", "left")
        right = self.closed in ("both", "right")
        return _bounds(word, self.low, self.high, left, right) + (" (or inf)" if self.inf else "")


@dataclass(frozen=True)
class OneOf:
    """One of the given strings."""

    values: tuple[str, ...]

    def __init__(self, *values: str) -> None:
        object.__setattr__(self, "values", tuple(values))

    def reason(self, v: Any, options: Mapping[str, Any]) -> str | None:
        return None if isinstance(v, str) and v in self.values else ""

    def describe(self, options: Mapping[str, Any]) -> str:
        return f"one of {', '.join(self.values)}"


@dataclass(frozen=True)
class Boolean:
    """True or False (a bool, not 0/1)."""

    def reason(self, v: Any, options: Mapping[str, Any]) -> str | None:
        return None if isinstance(v, bool) else ""

    def describe(self, options: Mapping[str, Any]) -> str:
        return "true or false"


@dataclass(frozen=True)
class Device:
    """A device name that ``predictors.device.resolve_device`` accepts here (an unknown name
    or an unavailable backend fails when the model is built, not after loading the data)."""

    def reason(self, v: Any, options: Mapping[str, Any]) -> str | None:
        try:
            resolve_device(v)
        except ValueError as e:
            return str(e)
        return None

    def describe(self, options: Mapping[str, Any]) -> str:
        return "a device (auto, cpu, cuda, cuda:N, mps)"


Constraint = Integer | Interval | OneOf | Boolean | Device
Alternative = Constraint | str | None
Constraints = Mapping[str, tuple[Alternative, ...]]


def option_error(
    key: str, value: Any, alternatives: tuple[Alternative, ...], options: Mapping[str, Any]
) -> str | None:
    """None when ``value`` satisfies one of ``alternatives``, else the message tail
    ``"option <key> must be <what>, got <value>"`` (with the reason a constraint gave)."""
    reasons = []
    for alt in alternatives:
        if alt is None or isinstance(alt, str):
            if value is alt or (isinstance(alt, str) and value == alt):
                return None
            continue
        why = alt.reason(value, options)
        if why is None:
            return None
        if why:
            reasons.append(why)
    named = [repr(a) for a in alternatives if isinstance(a, str)]
    named += [a.describe(options) for a in alternatives if a is not None and not isinstance(a, str)]
    tail = f" ({'; '.join(reasons)})" if reasons else ""
    return f"option {key} must be {' or '.join(named)}, got {value!r}{tail}"


def check_options(model: Any) -> None:
    """Check every option ``type(model).option_constraints`` declares against its value on
    ``model``. Raises ValueError ``"<name>: option <key> must be ..., got <value>"``."""
    cls = type(model)
    constraints: Constraints = getattr(cls, "option_constraints", {})
    values = {key: getattr(model, key) for key in constraints}
    name = getattr(cls, "name", "") or cls.__name__
    for key, alternatives in constraints.items():
        msg = option_error(key, values[key], alternatives, values)
        if msg is not None:
            raise ValueError(f"{name}: {msg}")


class Validated:
    """Base of the options dataclasses: ``__post_init__`` checks the declared options."""

    option_constraints: ClassVar[Constraints] = {}

    def __post_init__(self) -> None:
        check_options(self)


T = TypeVar("T")


@dataclass_transform(kw_only_default=True, eq_default=False)
def model_options(cls: type[T]) -> type[T]:
    """Make ``cls`` an options dataclass: keyword-only fields stored by the generated
    ``__init__`` (whose signature is the model's config and the options the registry
    accepts), identity equality, the class's own ``__repr__``; ``__post_init__`` (from
    ``Validated``) checks ``option_constraints``."""
    out: Callable[[type[T]], type[T]] = dataclass(kw_only=True, eq=False, repr=False)
    return out(cls)
