"""What a model does with randomness while it fits and predicts, watched from outside: the
generators it builds (numpy's, Python's ``random.Random``, ``torch.Generator``) and their
seeds, the global RNG states it touches (Python's ``random``, numpy's legacy global RNG,
torch's default CPU generator) and whether it reads ``train.context.seed``.

``Watch.active()`` replaces the constructors under their public names
(``np.random.default_rng``, ``np.random.RandomState`` and the bit generators,
``random.Random``, ``torch.Generator`` when torch is imported) for the duration of the block;
what they build is the real object, and ``isinstance`` against the names still works. Code
that bound a constructor to another name at import time (``from numpy.random import
default_rng``) is not seen."""

from __future__ import annotations

import contextlib
import os
import random
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from predictors.context import RunContext

TORCH_DEFAULT_SEED = 67280421310721  # what an unseeded torch.Generator starts from
_NUMPY_CLASSES = ("RandomState", "PCG64", "PCG64DXSM", "MT19937", "Philox", "SFC64")
_LIBRARY_DIRS = tuple(
    {os.path.realpath(p) + os.sep for p in sysconfig.get_paths().values() if p}
    | {os.path.dirname(os.path.realpath(random.__file__)) + os.sep}
)
_HERE = os.path.realpath(__file__)
_CONTEXT_FILES = {
    os.path.realpath(sys.modules[RunContext.__module__].__file__ or ""),
    os.path.join(os.path.dirname(os.path.dirname(_HERE)), "types.py"),
}


@dataclass(frozen=True)
class Built:
    """One generator a model built: ``kind`` (``np.random.default_rng``, ``random.Random``,
    ``torch.Generator``, ...), ``site`` (``file.py:12``, the nearest caller outside numpy,
    torch, the standard library and installed packages), ``phase`` (``fit`` or ``predict``)
    and ``seed``: the seed material as a tuple (None: no seed, so OS entropy, or torch's fixed
    default for a ``torch.Generator`` never seeded; ``derived``: built from another generator,
    which is watched on its own)."""

    kind: str
    site: str
    phase: str
    seed: tuple[Any, ...] | None
    derived: bool = False

    def call(self) -> str:
        """How the construction reads: ``np.random.default_rng(1234)``."""
        if self.kind == "torch.Generator":
            seeded = "never seeded" if self.seed is None else f"manual_seed({self.seed[0]})"
            return f"torch.Generator() {seeded}"
        if self.seed is None:
            return f"{self.kind}()"
        args = self.seed[0] if len(self.seed) == 1 else list(self.seed)
        return f"{self.kind}({args!r})"


def _site() -> str:
    f = sys._getframe(1)
    first = None
    while f is not None:
        path = os.path.realpath(f.f_code.co_filename)
        if first is None:
            first = f
        if path != _HERE and not path.startswith(_LIBRARY_DIRS) and path not in _CONTEXT_FILES:
            return f"{os.path.basename(path)}:{f.f_lineno}"
        f = f.f_back  # type: ignore[assignment]
    if first is None:  # pragma: no cover
        return "?"
    return f"{os.path.basename(first.f_code.co_filename)}:{first.f_lineno}"


def _material(x: Any) -> tuple[Any, ...] | str | None:
    """A seed argument as a comparable tuple; None for no seed; ``"derived"`` for a
    generator or bit generator (itself watched where it was built)."""
    if x is None:
        return None
    if isinstance(x, np.random.Generator | np.random.BitGenerator | np.random.RandomState):
        return "derived"
    if isinstance(x, np.random.SeedSequence):
        entropy = _material(x.entropy)
        return (*(entropy if isinstance(entropy, tuple) else ()), *x.spawn_key)
    if isinstance(x, bool | int | np.integer):
        return (int(x),)
    try:
        arr = np.asarray(x)
    except Exception:  # pragma: no cover - an odd seed object
        return (repr(x)[:60],)
    if arr.dtype.kind in "iu" and arr.size <= 64:
        return tuple(int(v) for v in arr.ravel())
    return (repr(x)[:60],)


def _seed_arg(args: tuple[Any, ...], kwargs: dict[str, Any], key: str) -> Any:
    return args[0] if args else kwargs.get(key)


_OnBuilt = Callable[[tuple[Any, ...], dict[str, Any], Any], None]


def _proxy(orig: type, on_built: _OnBuilt) -> type:
    """A stand-in for the class ``orig``: calling it builds a real ``orig`` and tells
    ``on_built(args, kwargs, obj)``; ``isinstance``/``issubclass`` and attributes defer to
    ``orig``."""

    class Meta(type):
        def __call__(cls, *args: Any, **kwargs: Any) -> Any:
            obj = orig(*args, **kwargs)
            on_built(args, kwargs, obj)
            return obj

        def __instancecheck__(cls, obj: Any) -> bool:
            return isinstance(obj, orig)

        def __subclasscheck__(cls, sub: type) -> bool:
            return issubclass(sub, orig)

        def __getattr__(cls, name: str) -> Any:
            return getattr(orig, name)

    return Meta(orig.__name__, (), {"__doc__": orig.__doc__, "__module__": orig.__module__})


class Watch:
    """The log of one fit-and-predict: ``built`` generators, ``seed_reads`` (sites that read
    ``context.seed`` while active) and ``phase``, set by the caller."""

    def __init__(self) -> None:
        self.built: list[Built] = []
        self.seed_reads: list[str] = []
        self.phase = "fit"
        self.on = False
        self._torch: list[tuple[str, str, Any]] = []  # (site, phase, generator)

    def _record(self, kind: str, seed: Any) -> None:
        m = _material(seed)
        if m == "derived":
            self.built.append(Built(kind, _site(), self.phase, None, derived=True))
        else:
            self.built.append(Built(kind, _site(), self.phase, m))  # type: ignore[arg-type]

    @contextlib.contextmanager
    def active(self) -> Iterator[Watch]:
        """Patch the constructors for the block (and restore them after)."""
        patches: list[tuple[Any, str, Any]] = []

        def patch(module: Any, name: str, new: Any) -> None:
            patches.append((module, name, getattr(module, name)))
            setattr(module, name, new)

        orig_rng = np.random.default_rng

        def default_rng(*args: Any, **kwargs: Any) -> np.random.Generator:
            self._record("np.random.default_rng", _seed_arg(args, kwargs, "seed"))
            return orig_rng(*args, **kwargs)

        patch(np.random, "default_rng", default_rng)
        for name in _NUMPY_CLASSES:
            kind = f"np.random.{name}"
            patch(np.random, name, _proxy(getattr(np.random, name), self._recorder(kind, "seed")))
        patch(random, "Random", _proxy(random.Random, self._recorder("random.Random", "x")))
        torch = sys.modules.get("torch")
        if torch is not None:

            def torch_built(args: tuple[Any, ...], kwargs: dict[str, Any], g: Any) -> None:
                self._torch.append((_site(), self.phase, g))  # seeded later: read at the end

            patch(torch, "Generator", _proxy(torch.Generator, torch_built))
        self.on = True
        try:
            yield self
        finally:
            self.on = False
            for module, name, old in reversed(patches):
                setattr(module, name, old)
            self._finish_torch()

    def _recorder(self, kind: str, key: str) -> _OnBuilt:
        def on_built(args: tuple[Any, ...], kwargs: dict[str, Any], obj: Any) -> None:
            del obj
            self._record(kind, _seed_arg(args, kwargs, key))

        return on_built

    def _finish_torch(self) -> None:
        for site, phase, g in self._torch:
            seed = int(g.initial_seed())
            material = None if seed == TORCH_DEFAULT_SEED else (seed,)
            self.built.append(Built("torch.Generator", site, phase, material))
        self._torch = []


class WatchedContext(RunContext):
    """A ``RunContext`` that notes where ``seed`` is read while its ``Watch`` is active."""

    def __init__(self, *args: Any, watch: Watch | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        object.__setattr__(self, "_watch", watch if watch is not None else Watch())

    def __getattribute__(self, name: str) -> Any:
        if name == "seed":
            w = object.__getattribute__(self, "_watch")
            if w.on:
                w.seed_reads.append(_site())
        return object.__getattribute__(self, name)


# -- the global states -----------------------------------------------------------------------
GLOBALS = ("Python's random", "numpy's global RNG", "torch's global RNG")


def global_states() -> dict[str, Any]:
    """The state of every global RNG (torch's only when torch is imported)."""
    st = np.random.get_state(legacy=False)  # noqa: NPY002 - probing the global RNG on purpose
    out: dict[str, Any] = {
        GLOBALS[0]: random.getstate(),
        GLOBALS[1]: (st["state"]["key"].tobytes(), st["state"]["pos"], st["has_gauss"]),
    }
    torch = sys.modules.get("torch")
    if torch is not None:
        out[GLOBALS[2]] = bytes(torch.random.get_rng_state().numpy().tobytes())
    return out


def touched(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The global RNGs whose state changed (torch imported in between: against the state
    torch starts with)."""
    out = [k for k in GLOBALS[:2] if before[k] != after[k]]
    if GLOBALS[2] in after:
        if GLOBALS[2] in before:
            start = before[GLOBALS[2]]
        else:
            import torch

            start = bytes(torch.Generator().get_state().numpy().tobytes())
        if after[GLOBALS[2]] != start:
            out.append(GLOBALS[2])
    return out


def set_globals(seed: int) -> None:
    """Put every global RNG in a known state."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - the suite's own probe state
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.random.manual_seed(seed)


@contextlib.contextmanager
def globals_kept() -> Iterator[None]:
    """Restore every global RNG's state after the block (torch's: the state it had, or the
    state it starts with when the block imported it)."""
    py, npy = random.getstate(), np.random.get_state()  # noqa: NPY002
    torch = sys.modules.get("torch")
    tstate = torch.random.get_rng_state() if torch is not None else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)  # noqa: NPY002
        torch = sys.modules.get("torch")
        if torch is not None:
            if tstate is not None:
                torch.random.set_rng_state(tstate)
            else:
                torch.random.manual_seed(TORCH_DEFAULT_SEED)
