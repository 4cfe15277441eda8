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
- ``no_mutation``: fit and predict leave every array of the TrainSet and the HistoryBatch
  unchanged (compared with copies), and they also work when every input array is read-only
  (the harness may hand over shared-memory arrays, as Ray's object store does).
- ``global_rng``: neither fit nor predict draws from or reseeds a global RNG: Python's
  ``random`` module, numpy's legacy global RNG (``np.random.seed``, ``np.random.normal``),
  torch's default CPU generator (``torch.manual_seed``, ``torch.rand``; watched when torch
  is imported). Their states are compared before and after.
- ``rng_seeds``: every generator fit and predict build (``np.random.default_rng``,
  ``np.random.RandomState`` and the bit generators, ``random.Random``, ``torch.Generator``)
  has a seed that follows the run's: the suite fits three times (twice under the run's seed,
  once under another) and watches where generators are built and from what; a generator
  built from the same constant under both seeds (``default_rng(1234)``, a
  ``torch.Generator`` never seeded) ignores the run's seed, which two seeds' predictions
  cannot show; one built without a seed, or seeded differently under one run seed, is not
  reproducible. A constant that is the model's own ``seed`` option (set) is allowed.
- ``deterministic``: the two fits under the run's seed (fresh models, identically built
  TrainSets, every global RNG in the same state beforehand) predict bit-identically, and one
  fitted model predicts a batch twice alike. When the cause is another check's rule (a
  generator without a seed, a write into the inputs, predict drawing from a global RNG) the
  failure is that check's knock-on.
- ``seed_declared``: a model whose predictions move with the run's seed, or that builds a
  generator from ``train.context.seed``, declares ``Capabilities(seeded=True)`` (a run fits
  it once per ``--seeds`` value; an undeclared one once, under whichever seed). Reading
  ``train.context.seed`` with nothing depending on it is allowed (and said).
- ``batch_order``: predicting a permuted batch gives the permuted predictions.
- ``chunking``: predicting the batch in chunks (of 1, 2, 13, ... queries) gives the same
  predictions as predicting it at once.
- ``future``: a query's prediction depends on nothing at or after its target: (a) each user
  has two test targets in one batch, so the second query's history holds the first target's
  rating; changing the ratings and items of both targets leaves every first-target
  prediction unchanged; (b) for queries whose target event is in the TrainSet (training and
  validation targets, asked as test-like queries: earlier history, target item and time),
  the model does not return the target's own rating (the synthetic ratings are continuous,
  so a model reproducing more than half of them exactly is reading them, not predicting).

One failure is reported once: a check whose failure follows from another check's rule says
so (``CheckResult.knock_on``, a reason starting "knock-on of <check>:"): a comparison that
fails because the model wrote into its inputs (``no_mutation``) or predicts a batch twice
differently (``deterministic``), a fit or predict that raises (``fit_returns_self``,
``output_shape``). A knock-on of a check that ran and passed is reported as this check's own
failure. ``CheckReport.root_failures`` are the ones to fix first.

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
the checks themselves (and ``ATOL``), ``randomness`` the ones on randomness and ``watch``
what they watch. Every public name is importable from
``predictors.testing``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal

from predictors.contract import capabilities_of
from predictors.testing.checks import _RUN, ATOL
from predictors.testing.report import CHECKS, QUICK_CHECKS, CheckReport, CheckResult
from predictors.testing.suite import _CheckFailed, _err, _KnockOn, _Suite
from predictors.testing.watch import globals_kept
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
    with globals_kept():  # a model that draws from a global RNG leaves it as it was
        _run_checks(suite, selected, quick, build_error, results)
    return CheckReport(name, _roots_kept(results))


def _roots_kept(results: list[CheckResult]) -> list[CheckResult]:
    """A knock-on of a check that ran and passed is no knock-on: this check's own failure."""
    passed = {r.name for r in results if r.passed}
    out = []
    for r in results:
        if r.knock_on is not None and r.knock_on in passed:
            prefix = f"knock-on of {r.knock_on}: "
            r = dataclasses.replace(r, knock_on=None, reason=r.reason.removeprefix(prefix))
        out.append(r)
    return out


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
        of: str | None = None
        try:
            if build_error is not None and check != "capabilities":
                raise _CheckFailed(f"{name}: building the model raised {build_error}")
            reason, ok = _RUN[check](suite), True
        except _KnockOn as e:
            reason, ok = str(e), False
            if e.of != check:
                of, reason = e.of, f"knock-on of {e.of}: {reason}"
        except _CheckFailed as e:
            reason, ok = str(e), False
        except Exception as e:  # a bug of the model that escaped the check's own handling
            reason, ok = f"{name}: check raised {_err(e)}", False
        reason = " ".join(reason.split())  # one line
        results.append(CheckResult(check, ok, reason, time.perf_counter() - t0, knock_on=of))
