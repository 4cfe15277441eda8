"""Name -> predictor class, with options on the name: ``recent-k:k=10``, ``mf:factors=64:reg=0.02``.

Built-in entries are ``"module:Class"`` strings so that importing the registry imports no
model module (torch models load only when asked for). Adding a built-in is one line here.

A model may also come from the user's code (``predictors.plugins``): a file
(``path/to/models.py:Class``), a module (``package.module:Class``) or an installed package's
entry point in the group ``ratingbench.predictors``; options go on the name as for built-ins
(``models.py:GRURec:hidden=64``). A plugin's name is its class's ``name`` (the class name when
it declares none); it must not be a built-in's name.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import predictors.plugins as plugins
from predictors.plugins import PluginError, PluginSource

__all__ = [
    "REGISTRY",
    "ModelSpec",
    "PluginError",
    "available",
    "class_of",
    "create",
    "describe",
    "get_class",
    "origins",
    "parse_models",
    "parse_spec",
    "spec_from_record",
]

# name -> (import path, one-line summary). Order is the display and run order.
REGISTRY: dict[str, tuple[str, str]] = {
    "global-mean": (
        "predictors.baselines:GlobalMean",
        "mean of all training ratings",
    ),
    "user-mean": (
        "predictors.baselines:UserMean",
        "mean of the query's whole history (global mean when empty)",
    ),
    "recent-k": (
        "predictors.baselines:RecentK",
        "mean of the last k ratings of the history (k=5)",
    ),
    "bias": (
        "predictors.baselines:Bias",
        "global mean + damped user and item biases, damping tuned on validation",
    ),
    "knn": (
        "predictors.knn:KNN",
        "similarity-weighted kNN over item embeddings (k, alpha, shrink tuned)",
    ),
    "mf": (
        "predictors.mf:MF",
        "biased matrix factorisation (ALS), factors/reg/sweeps tuned on validation",
    ),
    "svdpp": (
        "predictors.svdpp:SVDpp",
        "SVD++: biased MF + implicit feedback from the history, Adam, tuned on validation",
    ),
    "mf-temporal": (
        "predictors.mf_temporal:MFTemporal",
        "timeSVD-style MF: drifting user bias + recency-weighted session offset",
    ),
    "attention": (
        "predictors.attention:Attention",
        "the notebook's attention RatingPredictor over item embeddings + ratings",
    ),
    "transformer": (
        "predictors.transformer:Transformer",
        "Transformer encoder over history + query cross-attention + learned biases",
    ),
}


# Adapter namespaces: ``surprise:SVD:n_factors=50`` is the library's model ``SVD`` with its own
# parameters. Each entry is "module:function"; the function maps the library's model name to
# a predictor class (raising PluginError with the known names, or naming the extra to install).
ADAPTERS: dict[str, str] = {
    "surprise": "predictors.adapters.surprise:adapter_class",
    "cornac": "predictors.adapters.cornac:adapter_class",
}


def _adapter_class(namespace: str, model: str) -> type:
    module, _, fn = ADAPTERS[namespace].partition(":")
    factory = getattr(importlib.import_module(module), fn)
    return factory(model)  # type: ignore[no-any-return]


class UnknownModelError(KeyError):
    pass


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: the model's name plus option overrides, as written by the user.

    ``source`` is set for a plugin (where its class came from, with a hash of its code);
    ``error`` is set for a plugin that could not be loaded: the run records that model as
    failed, with this message, and goes on with the others."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)
    # True when the spec came from expanding ``all``: such a model may be skipped (with a
    # note) when the data cannot serve it, e.g. no embeddings for an embedding model
    implicit: bool = field(default=False, compare=False)
    source: PluginSource | None = field(default=None, compare=False)
    error: str | None = field(default=None, compare=False)

    @property
    def label(self) -> str:
        """Canonical text form, used as the model's key in results."""
        if not self.options:
            return self.name
        opts = ":".join(f"{k}={_fmt(v)}" for k, v in self.options.items())
        return f"{self.name}:{opts}"

    @property
    def is_plugin(self) -> bool:
        return self.source is not None or self.error is not None


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    return str(v)


def _coerce(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text.strip()


def available() -> list[str]:
    """Built-in names, then the entry points' (installed packages)."""
    return list(REGISTRY) + [n for n in plugins.entry_point_names() if n not in REGISTRY]


def describe() -> list[tuple[str, str]]:
    """(name, one-line summary) for every built-in model."""
    return [(name, summary) for name, (_, summary) in REGISTRY.items()]


def origins() -> list[tuple[str, str, str]]:
    """(name, origin, summary) for every model ``bench list`` shows: the built-ins (origin
    "built-in"), the library adapters (with the extra they need) and the entry points of
    installed packages ("entry point of PACKAGE VERSION"); a broken entry point is listed
    with its error as summary."""
    rows = [(name, "built-in", summary) for name, (_, summary) in REGISTRY.items()]
    for namespace, ref in ADAPTERS.items():
        module = importlib.import_module(ref.partition(":")[0])  # imports no library
        for model, summary in getattr(module, "MODELS", {}).items():
            rows.append((f"{namespace}:{model}", f"adapter ({module.INSTALL})", summary))
    for name in plugins.entry_point_names():
        try:
            cls, src = plugins.load_entry_point(name, builtins=REGISTRY)
            summary = str(getattr(cls, "summary", "") or (cls.__doc__ or "").strip().split("\n")[0])
            rows.append((name, src.describe(), summary))
        except PluginError as e:
            rows.append((name, "entry point (broken)", str(e).split("\n")[0]))
    return rows


def _unknown(name: str) -> ValueError:
    known = available()
    near = difflib.get_close_matches(name, known, n=1)
    hint = f" Did you mean '{near[0]}'?" if near else ""
    return ValueError(
        f"unknown model '{name}'.{hint} Known models: {', '.join(known)} "
        "(or your own: path/to/file.py:Class or package.module:Class)"
    )


def get_class(name: str) -> type:
    """The class of a built-in, a library adapter (``surprise:SVD``), an entry point, or a
    plugin already parsed by name."""
    namespace, colon, model = name.partition(":")
    if colon and namespace in ADAPTERS:
        return _adapter_class(namespace, model)
    if name in REGISTRY:
        module, _, cls = REGISTRY[name][0].partition(":")
        return getattr(importlib.import_module(module), cls)  # type: ignore[no-any-return]
    loaded = plugins.loaded_class(name)
    if loaded is not None:
        return loaded
    if name in plugins.entry_point_names():
        return plugins.load_entry_point(name, builtins=REGISTRY)[0]
    raise _unknown(name)


def class_of(spec: ModelSpec) -> type:
    """The class a spec names (raises ``PluginError`` for a plugin that failed to load)."""
    if spec.error is not None:
        raise PluginError(spec.error)
    if spec.source is not None:
        return plugins.load(spec.source.ref, builtins=REGISTRY)[0]
    return get_class(spec.name)


def _parse_options(parts: list[str], text: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for p in parts:
        key, eq, value = p.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not key:
            raise ValueError(
                f"model option '{p}' in '{text}' is not key=value (e.g. recent-k:k=10)"
            )
        if key in options:
            raise ValueError(
                f"model option '{key}' is given twice in '{text}'; give each option once"
            )
        options[key] = _coerce(value)
    return options


def parse_spec(text: str, *, keep_errors: bool = False) -> ModelSpec:
    """Parse ``name[:key=value...]`` or a plugin ``FILE.py:Class[:key=value...]`` /
    ``package.module:Class[:key=value...]``. Raises ValueError on an unknown name, a
    malformed option or one given twice (``k=5:k=6``, also spelled ``max-k`` and ``max_k``);
    unknown option keys are checked by ``create``. A plugin that cannot be loaded raises
    ``PluginError``, or, with ``keep_errors``, comes back as a spec with ``error`` set
    (the run records it as a failed model and goes on)."""
    parts = [p for p in text.strip().split(":")]
    name = parts[0].strip()
    if not name:
        raise ValueError(f"empty model name in '{text}'")
    if name in ADAPTERS:
        if len(parts) < 2 or not parts[1].strip() or "=" in parts[1]:
            raise ValueError(f"'{text}': name the {name} model, e.g. {name}:SVD (see `bench list`)")
        full = f"{name}:{parts[1].strip()}"
        _adapter_class(name, parts[1].strip())  # unknown model / extra not installed: now
        return ModelSpec(name=full, options=_parse_options(parts[2:], text))
    ref = plugins.split_reference(parts)
    if ref is not None:
        target, rest = ref
        return _plugin_spec(target, _parse_options(rest, text), keep_errors, entry_point=False)
    if name not in REGISTRY:
        if name in plugins.entry_point_names():
            options = _parse_options(parts[1:], text)
            return _plugin_spec(name, options, keep_errors, entry_point=True)
        raise _unknown(name)
    return ModelSpec(name=name, options=_parse_options(parts[1:], text))


def _plugin_spec(
    target: str, options: dict[str, Any], keep_errors: bool, *, entry_point: bool
) -> ModelSpec:
    """The spec of a plugin (a ``file.py:Class``/``module:Class`` target, or an entry point's
    name); a load failure raises, or with ``keep_errors`` is kept on the spec."""
    try:
        if entry_point:
            cls, source = plugins.load_entry_point(target, builtins=REGISTRY)
        else:
            cls, source = plugins.load(target, builtins=REGISTRY)
    except PluginError as e:
        if not keep_errors:
            raise
        return ModelSpec(name=target, options=options, error=str(e))
    name = target if entry_point else plugins.name_of(cls)
    return ModelSpec(name=name, options=options, source=source)


def parse_models(text: str, *, keep_errors: bool = True) -> list[ModelSpec]:
    """Comma-separated specs; ``all`` expands to every built-in model. Plugins that fail to
    load come back with ``error`` set (``keep_errors``) so that the run can go on."""
    specs: list[ModelSpec] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        if item == "all":
            specs.extend(ModelSpec(n, implicit=True) for n in REGISTRY)
        else:
            specs.append(parse_spec(item, keep_errors=keep_errors))
    if not specs:
        raise ValueError("no model given (e.g. --models all or --models user-mean,bias)")
    seen: dict[str, ModelSpec] = {}
    unique = []
    for s in specs:
        other = seen.get(s.label)
        if other is not None:
            a = other.source.ref if other.source else "built-in"
            b = s.source.ref if s.source else "built-in"
            if a != b:
                raise ValueError(f"two models are named '{s.label}': {a} and {b}; rename one")
            continue
        seen[s.label] = s
        unique.append(s)
    return unique


def spec_from_record(rec: str | dict[str, Any]) -> ModelSpec:
    """The spec a results file recorded (``run_spec.models``): a built-in by its label, a
    plugin loaded again from where it came from (``source.ref``), with ``error`` set when
    that fails. A plugin whose code changed since loads; ``changed_plugins`` tells."""
    if isinstance(rec, str):
        return parse_spec(rec)
    implicit = bool(rec.get("implicit"))
    src = rec.get("source")
    if not src:
        if rec.get("error"):
            label = str(rec["spec"])
            return ModelSpec(name=label, error=str(rec["error"]), implicit=implicit)
        spec = parse_spec(str(rec["spec"]))  # a built-in or a library adapter
        return ModelSpec(spec.name, spec.options, implicit=implicit)
    source = PluginSource.from_dict(src)
    label = str(rec["spec"])
    name = label.split(":", 1)[0]
    opts_text = label[len(name) :]
    if source.kind == "entry-point":
        spec = parse_spec(source.given + opts_text, keep_errors=True)
    else:
        spec = parse_spec(source.ref + opts_text, keep_errors=True)
    if spec.error is None and spec.label != label:
        return ModelSpec(
            name=label,
            options={},
            implicit=implicit,
            error=f"plugin {source.given} now loads as '{spec.label}', not '{label}'",
        )
    return ModelSpec(
        spec.name, spec.options, implicit=implicit, source=spec.source, error=spec.error
    )


def changed_plugins(
    recorded: list[dict[str, Any]], now: Sequence[ModelSpec]
) -> dict[str, str]:
    """label -> how the plugin's code differs from what a results file recorded."""
    out: dict[str, str] = {}
    by_label = {m.label: m for m in now}
    for rec in recorded:
        if not isinstance(rec, dict) or not rec.get("source"):
            continue
        m = by_label.get(str(rec["spec"]))
        if m is None or m.source is None:
            continue
        why = PluginSource.from_dict(rec["source"]).changed(m.source)
        if why:
            out[m.label] = why
    return out


def create(spec: ModelSpec | str) -> Any:
    """Instantiate a model from its spec; unknown option keys fail with the list of accepted
    ones, bad values with the model's own validation message. The run's seed and device are
    not options: they reach the model in ``train.context`` when it is fitted."""
    if isinstance(spec, str):
        spec = parse_spec(spec)
    cls: Any = class_of(spec)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    accepted = [
        k
        for k, p in params.items()
        if k != "self" and p.kind not in (inspect.Parameter.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    for key in spec.options:
        if key not in accepted and not takes_any:
            near = difflib.get_close_matches(key, accepted, n=1)
            hint = f" Did you mean '{near[0]}'?" if near else ""
            raise ValueError(
                f"unknown option '{key}' for model '{spec.name}'.{hint} "
                f"Accepted: {', '.join(accepted) or '(none)'}"
            )
    if spec.source is None:
        return cls(**spec.options)
    try:
        return cls(**spec.options)
    except Exception as e:  # the plugin's own constructor: labelled as the plugin's
        raise PluginError(
            f"plugin {spec.source.ref}: its constructor raised {type(e).__name__}: {e}"
        ) from e
