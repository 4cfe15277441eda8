"""Models from the user's code: a file, a module, or an installed package's entry point.

- ``path/to/models.py:Class``: the file is imported as a module of its own (its folder is on
  ``sys.path`` while it is imported, so it may import its neighbours);
- ``package.module:Class``: an importable module;
- an entry point in the group ``ratingbench.predictors`` (``name = "package.module:Class"``):
  installed packages register models this way, and they show in ``bench list``.

The class only has to keep the predictor protocol (``name``, ``fit``, ``predict``,
``get_config``); inheriting from ``BasePredictor`` is a convenience. Every failure is a
``PluginError`` naming the plugin and what was expected; an error raised while importing the
plugin shows the plugin's own last frames, labelled as the plugin's. ``PluginSource`` records
where a class came from and a hash of its code (the file's SHA-256, or the package's name and
version), so that a rerun can tell when the model's code changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import inspect
import sys
import traceback
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginError",
    "PluginSource",
    "entry_point_names",
    "load",
    "load_entry_point",
    "load_object",
    "loaded_class",
    "name_of",
    "split_reference",
]

ENTRY_POINT_GROUP = "ratingbench.predictors"
_PROTOCOL = "name, fit(train) -> self, predict(queries) -> (B,) array and get_config()"
_BAD_NAME_CHARS = set(":,/@ ")


class PluginError(ValueError):
    """A model from the user's code could not be used; the message says why."""


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin's class came from, and the identity of its code."""

    kind: str  # "file" | "module" | "entry-point"
    ref: str  # what loads it again: "/abs/path/models.py:Class" or "package.module:Class"
    given: str  # as the user wrote it (or the entry point's name)
    sha256: str | None = None  # of the file that defines the class, when it has one
    package: str | None = None  # the distribution that provides the module, if installed
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PluginSource:
        def text(key: str) -> str | None:
            v = d.get(key)
            return None if v is None else str(v)

        return cls(
            kind=str(d["kind"]),
            ref=str(d["ref"]),
            given=str(d.get("given") or d["ref"]),
            sha256=text("sha256"),
            package=text("package"),
            version=text("version"),
        )

    def describe(self) -> str:
        code = f"sha256 {self.sha256[:12]}" if self.sha256 else ""
        pkg = f"{self.package} {self.version}" if self.package else ""
        if self.kind == "entry-point":
            return f"entry point of {pkg or self.ref}"
        what = "file" if self.kind == "file" else "module"
        return f"{what} {self.given}" + (
            f" ({', '.join(x for x in (pkg, code) if x)})" if (pkg or code) else ""
        )

    def changed(self, other: PluginSource) -> str | None:
        """How ``other`` (the code found now) differs from this record, or None."""
        if self.sha256 and other.sha256 and self.sha256 != other.sha256:
            return f"its file changed (sha256 {self.sha256[:12]} -> {other.sha256[:12]})"
        if self.version and other.version and self.version != other.version:
            return f"{self.package} is now version {other.version} (was {self.version})"
        return None


# classes loaded in this process: ref -> (class, source); name -> class
_LOADED: dict[str, tuple[type, PluginSource]] = {}
_BY_NAME: dict[str, type] = {}


def split_reference(parts: list[str]) -> tuple[str, list[str]] | None:
    """For a spec split on ':', the plugin reference (``file.py:Class`` or
    ``package.module:Class``) and the option parts after it; None for a built-in name."""
    head = parts[0].strip()
    looks_file = head.endswith(".py") or "/" in head or "\\" in head
    looks_module = "." in head and all(p.isidentifier() for p in head.split("."))
    if not (looks_file or looks_module):
        return None
    if len(parts) < 2 or "=" in parts[1] or not parts[1].strip():
        return head, parts[1:]  # no class: ``load`` says what is missing
    return f"{head}:{parts[1].strip()}", parts[2:]


def name_of(cls: type) -> str:
    return str(getattr(cls, "name", "") or cls.__name__)


def loaded_class(name: str) -> type | None:
    return _BY_NAME.get(name)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _plugin_frames(tb: Any, skip: str) -> str:
    """The traceback's frames from the plugin's code (this module's frames and importlib's
    are left out), most recent last."""
    frames = [
        f
        for f in traceback.extract_tb(tb)
        if f.filename != skip and "importlib" not in f.filename and "<frozen" not in f.filename
    ][-6:]
    return "".join(traceback.format_list(frames)).rstrip()


@contextlib.contextmanager
def _importing(label: str) -> Iterator[None]:
    """Turns any exception raised by the plugin's import into a labelled ``PluginError``."""
    try:
        yield
    except PluginError:
        raise
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt):
            raise
        frames = _plugin_frames(e.__traceback__, __file__)
        where = f"\n  the plugin's traceback (most recent call last):\n{frames}" if frames else ""
        raise PluginError(
            f"plugin {label}: importing it raised {type(e).__name__}: {e}{where}"
        ) from None


class _HashedSource(importlib.machinery.SourceFileLoader):
    """Runs the bytes whose digest names the plugin, compiled afresh: never a cached .pyc
    (Python checks those by the source's mtime in seconds and its size, so an edit within
    the same second that keeps the size would run the old code under the new digest) and
    never a second read of a file that may have changed since it was hashed."""

    def __init__(self, fullname: str, path: str, source: bytes) -> None:
        super().__init__(fullname, path)
        self._source = source

    def get_code(self, fullname: str) -> Any:
        return compile(self._source, self.path, "exec", dont_inherit=True)


def _import_file(path: Path, given: str) -> Any:
    source = path.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    mod_name = f"ratingbench_plugin_{path.stem}_{digest[:12]}"
    if mod_name in sys.modules:
        return sys.modules[mod_name], digest
    loader = _HashedSource(mod_name, str(path), source)
    spec = importlib.util.spec_from_file_location(mod_name, path, loader=loader)
    if spec is None or spec.loader is None:
        raise PluginError(f"plugin {given}: {path} cannot be imported as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        with _importing(given):
            spec.loader.exec_module(module)
    except PluginError:
        sys.modules.pop(mod_name, None)
        raise
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)
    return module, digest


def _distribution_of(module: Any) -> tuple[str | None, str | None]:
    top = module.__name__.split(".")[0]
    with contextlib.suppress(Exception):
        dists = metadata.packages_distributions().get(top) or []
        if dists:
            return dists[0], metadata.version(dists[0])
    return None, None


def _check_class(obj: Any, label: str, builtins: Mapping[str, Any], name: str | None) -> type:
    if not inspect.isclass(obj):
        raise PluginError(
            f"plugin {label} is a {type(obj).__name__}, not a class: give a predictor class "
            f"(one with {_PROTOCOL})"
        )
    missing = [m for m in ("fit", "predict", "get_config") if not callable(getattr(obj, m, None))]
    if missing:
        raise PluginError(
            f"plugin {label} is not a predictor: it has no {', '.join(m + '()' for m in missing)} "
            f"(a predictor has {_PROTOCOL})"
        )
    model_name = name if name is not None else name_of(obj)
    if model_name in builtins:
        raise PluginError(
            f"plugin {label} is named '{model_name}', the name of a built-in model: give the "
            "class another `name`"
        )
    bad = sorted(set(model_name) & _BAD_NAME_CHARS)
    if bad:
        raise PluginError(
            f"plugin {label} has the name '{model_name}': a model name may not contain "
            f"{' '.join(repr(c) for c in bad)}"
        )
    return obj


def _register(cls: type, src: PluginSource, name: str) -> tuple[type, PluginSource]:
    other = _BY_NAME.get(name)
    if other is not None and other is not cls:
        prev = next((s for c, s in _LOADED.values() if c is other), None)
        if prev is not None and prev.ref != src.ref:
            raise PluginError(
                f"plugin {src.given} is named '{name}', as is {prev.given}: rename one"
            )
    _BY_NAME[name] = cls
    _LOADED[src.ref] = (cls, src)
    return cls, src


def _module_exists(where: str, label: str) -> bool:
    try:
        with _importing(label):  # finding a submodule imports its parents: their errors show
            return importlib.util.find_spec(where) is not None
    except PluginError as e:
        cause = e.__context__
        missing = getattr(cause, "name", None) if isinstance(cause, ModuleNotFoundError) else None
        if missing is not None and (where == missing or where.startswith(missing + ".")):
            return False  # the module itself (or a parent package) is not there
        raise  # the module is there, and importing it (or what it imports) fails


def load_object(target: str, what: str = "class") -> tuple[Any, PluginSource]:
    """The object ``target`` names (``file.py:name`` or ``package.module:name``) and where it
    came from; ``what`` words the messages ("class", "function")."""
    where, colon, attr = target.rpartition(":")
    if not colon or not attr or not where:
        example = "MyModel" if what == "class" else "build"
        raise PluginError(
            f"plugin {target}: say which {what}, e.g. {target.rstrip(':')}:{example} "
            f"(FILE.py:{what} or package.module:{what})"
        )
    is_file = where.endswith(".py") or "/" in where or "\\" in where
    if is_file:
        path = Path(where).expanduser()
        if not path.is_file():
            raise PluginError(f"plugin {target}: the file {where} does not exist")
        path = path.resolve()
        ref = f"{path}:{attr}"
        module, digest = _import_file(path, target)
        package = version = None
    else:
        ref = target
        if not _module_exists(where, target):
            raise PluginError(
                f"plugin {target}: no module named '{where}' (is it installed, or on "
                f"PYTHONPATH? a file is given as path/to/file.py:{what})"
            )
        with _importing(target):
            module = importlib.import_module(where)
        file = getattr(module, "__file__", None)
        digest = _sha256(Path(file)) if file and Path(file).is_file() else None
        package, version = _distribution_of(module)
    obj = getattr(module, attr, None)
    if obj is None:
        test = inspect.isclass if what == "class" else callable
        found = sorted(
            n
            for n, v in vars(module).items()
            if test(v) and getattr(v, "__module__", None) == module.__name__
        )
        plural = "classes" if what == "class" else f"{what}s"
        listing = f" ({plural} defined there: {', '.join(found)})" if found else ""
        raise PluginError(f"plugin {target}: {where} has no {what} '{attr}'{listing}")
    kind = "file" if is_file else "module"
    return obj, PluginSource(kind, ref, target, digest, package, version)


def load(target: str, *, builtins: Mapping[str, Any]) -> tuple[type, PluginSource]:
    """Import the class ``target`` names (``file.py:Class`` or ``package.module:Class``)."""
    if target in _LOADED:
        return _LOADED[target]
    where, _, cls_name = target.rpartition(":")
    if where.endswith(".py") or "/" in where:
        resolved = f"{Path(where).expanduser().resolve()}:{cls_name}"
        if resolved in _LOADED and Path(where).expanduser().is_file():
            # the same file: loaded again only when its content changed
            cls, src = _LOADED[resolved]
            if src.sha256 == _sha256(Path(where).expanduser()):
                return cls, src
    obj, src = load_object(target, "class")
    cls = _check_class(obj, target, builtins, None)
    return _register(cls, src, name_of(cls))


def _entry_points() -> dict[str, Any]:
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # a broken installed distribution must not break the harness
        return {}
    return {ep.name: ep for ep in eps}


def entry_point_names() -> list[str]:
    return sorted(_entry_points())


def load_entry_point(name: str, *, builtins: Mapping[str, Any]) -> tuple[type, PluginSource]:
    """The class an installed package registers under ``name``; its model name is ``name``."""
    ep = _entry_points().get(name)
    if ep is None:
        raise PluginError(f"no entry point '{name}' in the group {ENTRY_POINT_GROUP}")
    label = f"entry point '{name}' ({ep.value})"
    if name in builtins:
        raise PluginError(
            f"plugin {label} has the name of a built-in model: the package must register it "
            "under another name"
        )
    with _importing(label):
        obj = ep.load()
    cls = _check_class(obj, label, builtins, name)
    dist = getattr(ep, "dist", None)
    package = getattr(dist, "name", None) if dist is not None else None
    version = getattr(dist, "version", None) if dist is not None else None
    module = sys.modules.get(getattr(obj, "__module__", ""), None)
    file = getattr(module, "__file__", None) if module is not None else None
    digest = _sha256(Path(file)) if file and Path(file).is_file() else None
    src = PluginSource("entry-point", ep.value, name, digest, package, version)
    _BY_NAME[name] = cls
    _LOADED[src.ref] = (cls, src)
    return cls, src
