"""The public conformance suite: the checks every predictor passes, built-in or the user's own.

``check_predictor(MyModel).raise_for_failures()`` is the pytest helper; ``bench check`` runs
the same function. The suite builds its own small synthetic data (a few hundred users and
items, chronological histories, leave-last-out split) from ``predictors.types`` alone, fits
the model a handful of times and returns one ``CheckResult`` per named check. Each check runs
on its own: one that fails or raises never stops the others.

The checks (``CHECKS``, in this order):

- ``capabilities``: the class's ``capabilities``, if declared, is a ``Capabilities``.
- ``config_json``: ``get_config()`` is a dict with string keys that ``json.dumps`` accepts.
- ``config_roundtrip``: ``type(m)(**m.get_config())`` builds a model with the same config.
- ``predict_before_fit``: ``predict`` on an unfitted model raises (a ``BasePredictor`` must
  raise ``NotFittedError``, which the base class does unless ``predict`` is overridden).
- ``fit_returns_self``: ``fit(train)`` returns the model itself.
- ``output_shape``: ``predict`` returns a numpy array of shape (B,) with a float dtype.
- ``output_finite``: every prediction is finite (no NaN, no inf), empty histories and items
  never seen in training included (the data has both: a model must fall back).
- ``output_in_scale``: every raw ``predict`` value lies inside the rating scale (the harness
  clips and counts, but a plain model that leaves the scale fails here, with the count).
- ``deterministic``: two fresh models fitted on two identically built TrainSets with the same
  ``context.seed`` predict bit-identically, and neither fit nor predict draws from or
  reseeds numpy's global RNG. (A different seed may change results: that is not checked.)
- ``batch_order``: predicting a permuted batch gives the permuted predictions.
- ``chunking``: predicting the batch in chunks (of 1, 2, 13, ... queries) gives the same
  predictions as predicting it at once.
- ``no_mutation``: fit and predict leave every array of the TrainSet and the HistoryBatch
  unchanged (compared with copies), and they also work when every input array is read-only
  (the harness may hand over shared-memory arrays, as Ray's object store does).
- ``future``: a query's prediction depends on nothing at or after its target: (a) each user
  has two test targets in one batch, so the second query's history holds the first target's
  rating; changing the ratings and items of both targets leaves every first-target
  prediction unchanged; (b) for queries whose target event is in the TrainSet (training and
  validation targets, asked as test-like queries: earlier history, target item and time),
  the model does not return the target's own rating (the synthetic ratings are continuous,
  so a model reproducing more than half of them exactly is reading them, not predicting).

Comparisons between two predictions of one fitted model (order, chunking, future) allow
``ATOL`` for float rounding (a batched matmul may sum in another order when the batch
changes); determinism across two fits is exact.

The quick subset (``QUICK_CHECKS``, ``quick=True``): ``capabilities``, ``config_json``,
``config_roundtrip`` and ``predict_before_fit``, the checks that never fit the model. They
cost a few constructor calls and one predict on an unfitted model, well under a second for
any model, so ``bench run`` can run them on a plugin before spending a benchmark's time on
it. Every other check fits the model at least once (a torch model's fit may take seconds),
and is reported as SKIP in a quick report.

What the suite cannot see: that a model uses future events *of the TrainSet* (e.g. a user's
later training events when predicting an earlier target). A model is allowed to learn from
every event of the TrainSet (user factors do exactly that), and the harness's split never
puts a test query's target or later events into the TrainSet; so only the target's own
rating (b) and the batch (a) are checked.

The package: ``check_predictor`` lives here; ``report`` holds ``CHECKS``, ``QUICK_CHECKS``,
``CheckResult`` and ``CheckReport``; ``world`` the synthetic data (``synthetic_world``,
``SyntheticWorld``, ``SCALE``); ``suite`` the state the checks of one call share; ``checks``
the checks themselves (and ``ATOL``). Every public name is importable from
``predictors.testing``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

import numpy as np

from predictors.contract import capabilities_of
from predictors.testing.checks import _RUN, ATOL
from predictors.testing.report import CHECKS, QUICK_CHECKS, CheckReport, CheckResult
from predictors.testing.suite import _CheckFailed, _err, _Suite
from predictors.testing.world import SCALE, SyntheticWorld, synthetic_world

__all__ = [
    "ATOL",
    "CHECKS",
    "QUICK_CHECKS",
    "SCALE",
    "CheckReport",
    "CheckResult",
    "SyntheticWorld",
    "check_predictor",
    "synthetic_world",
]


def check_predictor(
    factory: type | Callable[[], Any],
    options: Mapping[str, Any] | None = None,
    *,
    embeddings: bool | Literal["auto"] | None = "auto",
    seed: int = 0,
    quick: bool = False,
    checks: Iterable[str] | None = None,
    device: str = "cpu",
) -> CheckReport:
    """Run the conformance checks on a model and return the report (it never raises for a
    failing model; call ``.raise_for_failures()`` in a test).

    ``factory``: a predictor class (built as ``cls(**options)``) or a zero-argument callable
    returning a fresh, unfitted model on every call. ``embeddings``: give the TrainSet
    item embeddings; ``"auto"`` (or None) follows the class's ``Capabilities(embeddings=...)``.
    ``seed``: the data's seed and the fits' ``context.seed``. ``quick``: run only
    ``QUICK_CHECKS`` (the others are reported as SKIP). ``checks``: run only these names of
    ``CHECKS``. ``device``: the fits' ``context.device``.

    Raises ``TypeError`` when ``factory`` is neither a class nor a callable, or ``options``
    are given for a non-class; ``ValueError`` for an unknown check name.
    """
    if isinstance(factory, type):
        cls: type | None = factory
        opts = dict(options or {})

        def make() -> Any:
            return factory(**opts)

    elif callable(factory) and not hasattr(factory, "fit"):
        if options:
            raise TypeError("check_predictor: options are for a class; the factory takes none")
        make = factory  # type: ignore[assignment]
        cls = None
    else:
        raise TypeError(
            "check_predictor: pass the predictor class (and its options) or a zero-argument "
            f"callable returning a fresh model, not {type(factory).__name__}"
        )
    selected = CHECKS if checks is None else tuple(checks)
    unknown = [c for c in selected if c not in _RUN]
    if unknown:
        raise ValueError(f"unknown check(s) {unknown}; checks: {', '.join(CHECKS)}")

    name = getattr(cls, "name", "") if cls is not None else ""
    build_error: str | None = None
    if cls is None:  # learn the class from one instance
        try:
            cls = type(make())
            name = getattr(cls, "name", "")
        except Exception as e:
            build_error = _err(e)
            name = getattr(factory, "__name__", "") or type(factory).__name__
    name = str(name or (cls.__name__ if cls is not None else "model"))
    if embeddings is None or embeddings == "auto":
        try:
            use_emb = cls is not None and capabilities_of(cls).embeddings
        except TypeError:
            use_emb = False  # the capabilities check reports it
    else:
        use_emb = bool(embeddings)

    suite = _Suite(make, name, cls, use_emb, seed, device)
    results: list[CheckResult] = []
    saved = np.random.get_state()  # noqa: NPY002 - a model that draws from it leaves it as it was
    try:
        _run_checks(suite, selected, quick, build_error, results)
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    return CheckReport(name, results)


def _run_checks(
    suite: _Suite,
    selected: tuple[str, ...],
    quick: bool,
    build_error: str | None,
    results: list[CheckResult],
) -> None:
    name = suite.name
    for check in CHECKS:
        if check not in selected:
            continue
        if quick and check not in QUICK_CHECKS:
            results.append(CheckResult(check, True, "not in the quick subset", 0.0, True))
            continue
        t0 = time.perf_counter()
        try:
            if build_error is not None and check != "capabilities":
                raise _CheckFailed(f"{name}: building the model raised {build_error}")
            reason, ok = _RUN[check](suite), True
        except _CheckFailed as e:
            reason, ok = str(e), False
        except Exception as e:  # a bug of the model that escaped the check's own handling
            reason, ok = f"{name}: check raised {_err(e)}", False
        reason = " ".join(reason.split())  # one line
        results.append(CheckResult(check, ok, reason, time.perf_counter() - t0))
