"""Run options declared once: a field of a frozen dataclass carries its flag, help,
constraint, text parser and whether ``--resume`` may change it, and everything else is derived
from the fields: the CLI's options (``bench.cli.options``), the Python API's keywords
(``bench.api.make_spec``), an experiment file's keys, the results' ``run_spec`` record
(``to_record`` / ``from_record``) and what ``--resume`` accepts (``resume_changes``).

A *section* is a frozen dataclass of run options (``bench.spec``: the data source, the split,
the embeddings, the statistics, the execution, the output); the run spec is a tree of
sections. A *leaf* is a field that is not a section; its name is its public name: the API
keyword, the key in a file and in the record, and (``-`` for ``_``) the default flag. Leaf
names are unique across the whole tree, so that a flat set of choices names each one once.

Constraints are ``predictors.options`` alternatives (``Integer(1)``, ``OneOf(...)``, ``None``
...); a value that meets none raises ``ConfigError`` in one form, naming the flag::

    "--jobs must be an integer >= 1, got 0"
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from bench.errors import ConfigError
from predictors.options import Alternative, OneOf, option_error

__all__ = [
    "IgnoredOptions",
    "Leaf",
    "RunOption",
    "build",
    "check_section",
    "from_record",
    "leaves",
    "run_option",
    "to_record",
]

T = TypeVar("T")

_KEY = "run_option"


@dataclass(frozen=True)
class RunOption:
    """How one run option is given, checked and recorded (the metadata of its field)."""

    help: str = ""
    flags: tuple[str, ...] = ()  # CLI names; () -> --<name with - for _>; None: no flag
    cli: bool = True  # False: no flag (e.g. the command line itself)
    allowed: tuple[Alternative, ...] = ()  # predictors.options alternatives; (): any value
    parse: Callable[[str], Any] | None = None  # text (CLI, files) -> value; ValueError: bad
    convert: Callable[[Any], Any] | None = None  # an API value -> the stored value
    encode: Callable[[Any], Any] | None = None  # stored value -> JSON (default: generic)
    decode: Callable[[Any], Any] | None = None  # JSON -> stored value (default: by type)
    resume: bool = False  # ``--resume`` may change it (where to find data, where jobs run)
    envvar: str | None = None
    metavar: str | None = None
    was: tuple[str, ...] = ()  # older record keys of this field (read, never written)
    shown_default: str | None = None  # the default as --help shows it (default: the value)


def run_option(default: Any = dataclasses.MISSING, *allowed: Alternative, **how: Any) -> Any:
    """A dataclass field that is a run option: ``default`` (or ``factory=``), the
    alternatives it accepts (``predictors.options``), and ``RunOption``'s keywords."""
    factory = how.pop("factory", dataclasses.MISSING)
    meta = {_KEY: RunOption(allowed=tuple(allowed), **how)}
    if factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


@dataclass(frozen=True)
class Leaf:
    """A run option in its tree: its field, declaration, type and the sections above it."""

    name: str
    path: tuple[str, ...]  # section field names from the root down to its section
    owner: type  # the section class that declares it
    field: dataclasses.Field[Any]
    option: RunOption
    type: Any  # the resolved annotation

    @property
    def flags(self) -> tuple[str, ...]:
        return self.option.flags or ("--" + self.name.replace("_", "-"),)

    @property
    def flag(self) -> str:
        """The flag messages name (the longest, e.g. --seeds of --seed/--seeds)."""
        return max(self.flags, key=len) if self.option.cli else self.name

    @property
    def default(self) -> Any:
        f = self.field
        if f.default is not dataclasses.MISSING:
            return f.default
        if f.default_factory is not dataclasses.MISSING:
            return f.default_factory()
        return dataclasses.MISSING

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The strings it accepts when its constraint is one ``OneOf``."""
        ones = [a for a in self.option.allowed if isinstance(a, OneOf)]
        return ones[0].values if len(ones) == 1 else None


def is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of ``cls``, resolved once per class (every section's
    construction checks its fields through them)."""
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def sections(cls: type) -> Iterator[tuple[str, type]]:
    """The section fields of ``cls``: (field name, section class)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if is_section(hints[f.name]):
            yield f.name, hints[f.name]


def leaves(cls: type, path: tuple[str, ...] = ()) -> Iterator[Leaf]:
    """Every run option of the tree under ``cls``, in declaration order (sections inline)."""
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if is_section(tp):
            yield from leaves(tp, (*path, f.name))
        elif _KEY in f.metadata:
            yield Leaf(f.name, path, cls, f, f.metadata[_KEY], tp)


def _own_leaves(cls: type) -> list[Leaf]:
    """The run options ``cls`` holds itself (not those of its sections)."""
    hints = _hints(cls)
    return [
        Leaf(f.name, (), cls, f, f.metadata[_KEY], hints[f.name])
        for f in dataclasses.fields(cls)
        if _KEY in f.metadata and not is_section(hints[f.name])
    ]


def _leaf_map(cls: type) -> dict[str, Leaf]:
    out: dict[str, Leaf] = {}
    for leaf in leaves(cls):
        if leaf.name in out:  # pragma: no cover - a declaration error, caught by the tests
            raise TypeError(f"run option {leaf.name} is declared twice")
        out[leaf.name] = leaf
    return out


def _suggest(name: str, known: list[str]) -> str:
    near = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {near[0]}?)" if near else ""


def unknown_error(names: list[str], cls: type) -> ConfigError:
    known = sorted(_leaf_map(cls))
    first = names[0]
    return ConfigError(
        f"unknown run option {', '.join(names)}{_suggest(first, known)}; "
        f"known: {', '.join(known)}"
    )


def parse_text(leaf: Leaf, text: str) -> Any:
    """A value given as text (the command line, a file), through the option's parser."""
    if leaf.option.parse is None:
        return text
    try:
        return leaf.option.parse(text)
    except ValueError as e:
        detail = str(e)
        if not detail.startswith(leaf.flag):
            detail = f"{leaf.flag}: {detail}"
        raise ConfigError(detail) from e


def _coerce(leaf: Leaf, value: Any) -> Any:
    if isinstance(value, str) and leaf.option.parse is not None:
        value = parse_text(leaf, value)
    if leaf.option.convert is not None and value is not None:
        value = leaf.option.convert(value)
    return value


def check_section(obj: Any) -> None:
    """Check every declared option of the section ``obj`` against its constraint; raises
    ``ConfigError`` "<flag> must be <what>, got <value>" (call it from ``__post_init__``)."""
    values = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    for leaf in _own_leaves(type(obj)):  # a section below was checked when it was built
        if not leaf.option.allowed:
            continue
        msg = option_error(leaf.flag, values[leaf.name], leaf.option.allowed, values)
        if msg is not None:
            raise ConfigError(msg.removeprefix("option "))


def build(cls: type[T], given: Mapping[str, Any]) -> T:
    """The tree ``cls`` with the flat choices ``given`` (public names -> values: typed
    values, or text that the options' parsers read) over the defaults. A section class may
    declare ``presets`` (name -> a default instance) and ``preset_by`` (the leaf that names
    the preset): its defaults are then the preset's.
    Raises ``ConfigError`` for an unknown name (with the nearest known one) or a bad value."""
    known = _leaf_map(cls)
    unknown = [k for k in given if k not in known]
    if unknown:
        raise unknown_error(unknown, cls)
    values = {k: _coerce(known[k], v) for k, v in given.items()}
    return _build(cls, values, None, known)


def _build(cls: type[T], values: dict[str, Any], base: Any, known: dict[str, Leaf]) -> T:
    kwargs: dict[str, Any] = {}
    presets = getattr(cls, "presets", None)
    if presets is not None and base is None:
        by = cls.preset_by  # type: ignore[attr-defined]
        name = values.get(by, known[by].default)
        if name not in presets:  # pragma: no cover - the selector's own constraint says it
            raise ConfigError(f"{known[by].flag} must be one of {', '.join(presets)}, got {name!r}")
        base = presets[name]
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if is_section(tp):
            kwargs[f.name] = _build(tp, values, getattr(base, f.name, None), known)
        elif f.name in values:
            kwargs[f.name] = values[f.name]
        elif base is not None:
            kwargs[f.name] = getattr(base, f.name)
    return cls(**kwargs)


# -- the record (results JSON) -----------------------------------------------------------


def _encode(v: Any) -> Any:
    if isinstance(v, Path):
        return str(v)
    if isinstance(v, tuple | list):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {k: _encode(x) for k, x in v.items()}
    return v


def base_type(tp: Any) -> Any:
    """An annotation without its ``None`` (``int | None`` -> int; others as they are)."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _decode(tp: Any, v: Any) -> Any:
    """A JSON value back to the annotated type (paths, tuples; optional types)."""
    if v is None:
        return None
    base = base_type(tp)
    if base is Path:
        return Path(v)
    if typing.get_origin(base) is tuple:
        return tuple(v)
    return v


def to_record(obj: Any) -> dict[str, Any]:
    """The JSON-able record of a section tree: sections nested, every leaf by its name."""
    out: dict[str, Any] = {}
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if is_section(hints[f.name]):
            out[f.name] = to_record(v)
        elif _KEY in f.metadata:
            enc = f.metadata[_KEY].encode
            out[f.name] = enc(v) if enc is not None else _encode(v)
    return out


def from_record(cls: type[T], d: Mapping[str, Any], **override: Any) -> T:
    """The tree ``to_record`` wrote, rebuilt; a missing key takes its default (records of
    older versions), a section missing from ``d`` reads its leaves from ``d`` itself (older
    records were flat), a section class's ``upgrade(d)`` maps its older keys. ``override``:
    leaves set directly (e.g. the command of the resuming process)."""
    upgrade = getattr(cls, "upgrade", None)
    d = dict(upgrade(d) if upgrade is not None else d)
    kwargs: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        tp = hints[f.name]
        if is_section(tp):
            sub = d.get(f.name)
            kwargs[f.name] = from_record(tp, sub if isinstance(sub, Mapping) else d, **override)
            continue
        if _KEY not in f.metadata:
            continue
        opt: RunOption = f.metadata[_KEY]
        if f.name in override:
            kwargs[f.name] = override[f.name]
            continue
        key = next((k for k in (f.name, *opt.was) if k in d), None)
        if key is None:
            continue
        v = d[key]
        kwargs[f.name] = opt.decode(v) if opt.decode is not None else _decode(tp, v)
    return cls(**kwargs)


def section_from_record(cls: type, d: Mapping[str, Any], name: str) -> Any:
    """Section ``name`` of the tree ``cls`` read from its record ``d`` alone (the other
    sections are not decoded: reading the embeddings of a run loads none of its plugins)."""
    tp = dict(sections(cls))[name]
    sub = d.get(name)
    return from_record(tp, sub if isinstance(sub, Mapping) else d)


class IgnoredOptions(ConfigError):
    """Options given to ``--resume`` that it would ignore (the recorded run decides them)."""


# -- --resume ------------------------------------------------------------------------------


def resume_changes(cls: type[T], spec: T, given: Mapping[str, Any]) -> T:
    """``spec`` (a recorded run) with the options ``given`` to ``--resume`` applied. Only
    options declared ``resume=True`` may be given; any other would be ignored, so it raises
    ``IgnoredOptions`` naming them (a bad value of a resumable one: ``ConfigError``). A
    section that declares ``resume_together = True`` takes its resumable options together:
    giving one resets the others to their defaults (where the jobs run: ``--jobs 2`` alone
    means local processes, whatever the run used)."""
    known = _leaf_map(cls)
    unknown = [k for k in given if k not in known]
    if unknown:
        raise unknown_error(unknown, cls)
    ignored = [known[k].flag for k in given if not known[k].option.resume]
    if ignored:
        raise IgnoredOptions(f"these options would be ignored: {', '.join(ignored)}")
    values = {k: _coerce(known[k], v) for k, v in given.items()}
    for leaf in known.values():
        if (
            leaf.option.resume
            and leaf.name not in values
            and getattr(leaf.owner, "resume_together", False)
            and any(known[k].owner is leaf.owner for k in values)
        ):
            values[leaf.name] = leaf.default
    return _replace(spec, values)


def _replace(obj: Any, values: Mapping[str, Any]) -> Any:
    changes: dict[str, Any] = {}
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        if is_section(hints[f.name]):
            sub = _replace(getattr(obj, f.name), values)
            if sub is not getattr(obj, f.name):
                changes[f.name] = sub
        elif f.name in values:
            changes[f.name] = values[f.name]
    return dataclasses.replace(obj, **changes) if changes else obj
