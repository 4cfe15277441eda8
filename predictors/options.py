"""Model options, each declared once: its default, what it accepts, its help, its search space.

A model class declares each option as a dataclass field made by ``option``::

    @model_options
    class KNN(Validated, BasePredictor):
        k: int | None = option(None, Integer(1), help="neighbours; None: tuned")
        lr: float | str = option("auto", Interval(1e-12, 10), help="learning rate or 'auto'")
        baseline: str | None = option(None, OneOf("bias", "user-mean"), help="...")
        refit: bool = option(True, Boolean(), help="refit on training + validation events")

``option(default, *accepts, help, space)``: ``accepts`` are the alternatives the value may
match: ``None`` (the value None), a string (that exact string), or a constraint object
(``Integer``, ``Interval``, ``OneOf``, ``Boolean``, ``Device``). The default is always
accepted: a default of None, or a string that no alternative names, is put first among the
alternatives (so ``option(None, Integer(1))`` accepts None or an integer >= 1, and
``option("auto", Interval(0, 1))`` accepts "auto" or a number). ``space`` is the option's
search space for tuning (None: not tuned); ``search_spaces(cls)`` lists them.

Options are inherited like any dataclass field: a subclass's options are its own plus its
bases', each checked with the constraint it was declared with. A subclass that redeclares an
inherited option with a plain default (``epochs: int = 20``) changes only the default; one
that redeclares it with ``option(...)`` restates what it accepts, and keeps the inherited
help and space unless it gives its own.

``check_options`` checks every option of an instance and raises ValueError in one form::

    "<model>: option <key> must be <what>, got <value>"

where ``<what>`` names the constraint objects and the accepted strings (``None`` is not
named: it always means "tune it" or "take the run's value", and the option's help says
which). ``@model_options`` makes a class an options dataclass (keyword-only fields, the
``__init__`` that stores them, identity equality) whose ``__post_init__`` (from
``Validated``) runs ``check_options``; option blocks shared by several models are declared
once in a base class decorated the same way.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar, dataclass_transform

import numpy as np

from predictors.device import resolve_device

__all__ = [
    "Alternative",
    "Boolean",
    "Constraints",
    "Device",
    "Integer",
    "Interval",
    "OneOf",
    "Option",
    "Validated",
    "check_options",
    "constraints_of",
    "model_options",
    "option",
    "option_error",
    "options_of",
    "search_spaces",
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


OPTION = "ratingbench.option"  # the key of an option's declaration in its field's metadata


@dataclass(frozen=True)
class Option:
    """One option's declaration (kept in its dataclass field's metadata): the alternatives its
    value may match, one line of help, and its search space for tuning (None: not tuned)."""

    accepts: tuple[Alternative, ...]
    help: str = ""
    space: Any = None


def _names(alternatives: tuple[Alternative, ...], value: Any) -> bool:
    """True when one of ``alternatives`` is ``value`` itself (None, or an accepted string)."""
    for alt in alternatives:
        if value is None and alt is None:
            return True
        if isinstance(value, str) and (
            (isinstance(alt, str) and alt == value)
            or (isinstance(alt, OneOf) and value in alt.values)
        ):
            return True
    return False


def option(default: Any, *accepts: Alternative, help: str = "", space: Any = None) -> Any:
    """Declare a model option: a keyword-only dataclass field with ``default``, that accepts
    ``accepts`` (alternatives, see the module docstring) and the default; ``help`` is one line
    on what it does, ``space`` its search space for tuning (None: not tuned; see
    ``search_spaces``). A default of None, or a string no alternative names, is accepted
    first. Raises TypeError when nothing is accepted but a default that is not None or a
    string."""
    alternatives = tuple(accepts)
    if (default is None or isinstance(default, str)) and not _names(alternatives, default):
        alternatives = (default, *alternatives)
    if not alternatives:
        raise TypeError(f"option({default!r}): give the constraint its value must satisfy")
    declared = Option(accepts=alternatives, help=help, space=space)
    return dataclasses.field(default=default, metadata={OPTION: declared})


def options_of(cls: type) -> dict[str, Option]:
    """Every option ``cls`` declares or inherits, in field order (name -> ``Option``); empty
    for a class that is not an options dataclass (a plain model checks its own options)."""
    if not dataclasses.is_dataclass(cls):
        return {}
    return {f.name: f.metadata[OPTION] for f in dataclasses.fields(cls) if OPTION in f.metadata}


def constraints_of(cls: type) -> dict[str, tuple[Alternative, ...]]:
    """name -> the alternatives its value may match, for every option of ``cls``."""
    return {name: opt.accepts for name, opt in options_of(cls).items()}


def search_spaces(cls: type) -> dict[str, Any]:
    """name -> search space, for every option of ``cls`` that declares one (tuning code lists
    a model's spaces with it; an empty dict: nothing to tune)."""
    return {name: opt.space for name, opt in options_of(cls).items() if opt.space is not None}


def check_options(model: Any) -> None:
    """Check every option ``type(model)`` declares (its own and its bases') against its value
    on ``model``. Raises ValueError ``"<name>: option <key> must be ..., got <value>"``."""
    cls = type(model)
    constraints = constraints_of(cls)
    values = {key: getattr(model, key) for key in constraints}
    name = getattr(cls, "name", "") or cls.__name__
    for key, alternatives in constraints.items():
        msg = option_error(key, values[key], alternatives, values)
        if msg is not None:
            raise ValueError(f"{name}: {msg}")


class _Derived:
    """``cls.option_constraints``, read-only: ``constraints_of(cls)`` (for code that reads the
    constraints by their former name; a class that writes its own dict is refused)."""

    def __get__(self, obj: Any, owner: type) -> dict[str, tuple[Alternative, ...]]:
        return constraints_of(owner)


class Validated:
    """Base of the options dataclasses: ``__post_init__`` checks the declared options."""

    option_constraints: ClassVar[_Derived] = _Derived()

    def __post_init__(self) -> None:
        check_options(self)


T = TypeVar("T")


def _adopt_dict(cls: type) -> None:
    """The earlier style's ``option_constraints = {key: alternatives}`` written on ``cls``:
    each key this class declares as a plain field becomes ``option(default, *alternatives)``
    (a key it inherits is already checked through its base's declaration, so a dict that
    spreads its parent's constraints loses nothing); the dict itself is removed, so that
    ``cls.option_constraints`` reads the derived constraints like any other class's."""
    legacy = cls.__dict__.get("option_constraints")
    if not isinstance(legacy, Mapping):
        return
    delattr(cls, "option_constraints")
    own = inspect.get_annotations(cls)
    for key, alternatives in legacy.items():
        value = cls.__dict__.get(key, dataclasses.MISSING)
        if key not in own or isinstance(value, dataclasses.Field):
            continue
        if value is dataclasses.MISSING:
            field = dataclasses.field(metadata={OPTION: Option(accepts=tuple(alternatives))})
            setattr(cls, key, field)
        else:
            setattr(cls, key, option(value, *alternatives))


def _inherit_redeclared(cls: type) -> None:
    """Give each inherited option that ``cls`` redeclares its base's declaration: with a plain
    default, the whole declaration; with ``option(...)``, the help and space it leaves out."""
    inherited: dict[str, Option] = {}
    for base in cls.__mro__[1:]:
        for name, opt in options_of(base).items():
            inherited.setdefault(name, opt)
    for name in inspect.get_annotations(cls):
        parent = inherited.get(name)
        value = cls.__dict__.get(name, dataclasses.MISSING)
        if parent is None or value is dataclasses.MISSING:
            continue
        if isinstance(value, dataclasses.Field):
            own = value.metadata.get(OPTION)
            if own is None:
                continue
            merged = dataclasses.replace(
                own,
                help=own.help or parent.help,
                space=own.space if own.space is not None else parent.space,
            )
            setattr(cls, name, dataclasses.field(default=value.default, metadata={OPTION: merged}))
        else:
            setattr(cls, name, dataclasses.field(default=value, metadata={OPTION: parent}))


@dataclass_transform(kw_only_default=True, eq_default=False)
def model_options(cls: type[T]) -> type[T]:
    """Make ``cls`` an options dataclass: keyword-only fields stored by the generated
    ``__init__`` (whose signature is the model's config and the options the registry
    accepts), identity equality, the class's own ``__repr__``; ``__post_init__`` (from
    ``Validated``) checks every option declared with ``option`` here or in a base. A class
    written in the earlier style, its constraints in an ``option_constraints`` dict beside
    plain fields, still works: ``_adopt_dict`` turns each entry into the field's ``option``."""
    _adopt_dict(cls)
    _inherit_redeclared(cls)
    out: Callable[[type[T]], type[T]] = dataclass(kw_only=True, eq=False, repr=False)
    return out(cls)
