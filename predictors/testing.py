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
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import itertools
import json
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from predictors.contract import RunContext, capabilities_of
from predictors.types import (
    EventStore,
    HistoryBatch,
    ItemEmbeddings,
    Queries,
    RatingScale,
    TrainSet,
)

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

CHECKS: tuple[str, ...] = (
    "capabilities",
    "config_json",
    "config_roundtrip",
    "predict_before_fit",
    "fit_returns_self",
    "output_shape",
    "output_finite",
    "output_in_scale",
    "deterministic",
    "batch_order",
    "chunking",
    "no_mutation",
    "future",
)
QUICK_CHECKS: tuple[str, ...] = (
    "capabilities",
    "config_json",
    "config_roundtrip",
    "predict_before_fit",
)
ATOL = 1e-5  # tolerance of order/chunking/future comparisons (float rounding), rating units

# The synthetic data: continuous ratings on MovieLens's range, so that an exact match with
# a target's rating is evidence of reading it.
SCALE = RatingScale(0.5, 5.0, None)
_N_USERS = 240
_N_ITEMS = 160
_N_COLD = 3  # the last item codes: never in the TrainSet, only asked as test targets
_EMB_DIM = 16


# -- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: ``passed`` (a skipped check counts as passed), a one-line
    ``reason`` and the wall-clock ``seconds`` it took."""

    name: str
    passed: bool
    reason: str
    seconds: float = 0.0
    skipped: bool = False

    @property
    def status(self) -> Literal["PASS", "FAIL", "SKIP"]:
        if self.skipped:
            return "SKIP"
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class CheckReport:
    """All check results for one model (``model`` is its display name)."""

    model: str
    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def __getitem__(self, name: str) -> CheckResult:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no check named {name!r}; checks: {', '.join(CHECKS)}")

    def table(self) -> str:
        """A plain-text table: check, status (PASS/FAIL/SKIP), seconds, reason."""
        rows = [(r.name, r.status, f"{r.seconds:.2f}", r.reason) for r in self.results]
        head = ("check", "status", "s", "reason")
        widths = [max(len(x[i]) for x in [head, *rows]) for i in range(3)]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row[:3], widths, strict=True)) + "  " + row[3]
            for row in [head, *rows]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths) + "  " + "-" * 6)
        return "\n".join(line.rstrip() for line in lines)

    def __str__(self) -> str:
        return f"{self.model}: {len(self.failures)} of {len(self.results)} checks failed\n" + (
            self.table()
        )

    def raise_for_failures(self) -> None:
        """Raise ``AssertionError`` listing every failed check (nothing when all passed)."""
        bad = self.failures
        if bad:
            lines = [f"  {r.name}: {r.reason}" for r in bad]
            raise AssertionError(
                f"{self.model} failed {len(bad)} of {len(self.results)} conformance "
                "check(s):\n" + "\n".join(lines)
            )


class _CheckFailed(Exception):
    """A check's verdict: the message is the one-line reason."""


# -- synthetic data ------------------------------------------------------------------------
@dataclass(frozen=True)
class SyntheticWorld:
    """A leave-last-out split of a synthetic log.

    ``log`` holds every event (users' events oldest first, strictly increasing times, each
    user rates an item at most once). Each user's last ``n_test`` events are test targets
    (``test``, one query per target, in (user, time) order, ``test_pos`` their rows in
    ``log``, ``first`` marks each user's earliest test target); the event before them is the
    validation target when the user has at least one earlier event; ``train`` holds the rest.
    Some users have a single event (a test query with an empty history), and the last
    ``_N_COLD`` item codes appear only as test targets (items never seen in training)."""

    log: EventStore
    train: TrainSet
    test: HistoryBatch
    test_pos: NDArray[np.int64]  # (B,) int64 rows of ``log``
    first: NDArray[np.bool_]  # (B,) bool: the user's first test target


def _make_log(seed: int) -> EventStore:
    """The synthetic log: ratings = mean + user and item biases + a rank-3 taste match +
    noise, continuous, clipped to ``SCALE``. Vectorised."""
    rng = np.random.default_rng([seed, 12])
    n_users, n_warm = _N_USERS, _N_ITEMS - _N_COLD
    lengths = rng.integers(4, 31, size=n_users)
    lengths[:3] = 1  # users with nothing but a test target
    lengths[3:6] = 2
    offsets = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    n = int(offsets[-1])
    user = np.repeat(np.arange(n_users), lengths)
    pos = np.arange(n) - offsets[user]
    # distinct items per user: the first `length` columns of a random permutation of items
    order = np.argsort(rng.random((n_users, n_warm)), axis=1)
    item = order[user, pos].astype(np.int32)
    last = offsets[1:] - 1
    cold = rng.integers(0, 3, size=n_users) == 0
    cold[:6] = False
    item[last[cold]] = rng.integers(n_warm, _N_ITEMS, size=int(cold.sum()))
    u_bias = rng.normal(0.0, 0.4, n_users)
    i_bias = rng.normal(0.0, 0.4, _N_ITEMS)
    u_f = rng.normal(0.0, 0.4, (n_users, 3))
    i_f = rng.normal(0.0, 0.4, (_N_ITEMS, 3))
    r = 3.4 + u_bias[user] + i_bias[item] + np.sum(u_f[user] * i_f[item], axis=1)
    r += rng.normal(0.0, 0.3, n)
    rating = np.clip(r, SCALE.low, SCALE.high).astype(np.float32)
    start = rng.integers(1_000_000_000, 1_100_000_000, size=n_users)
    gaps = rng.integers(60, 5 * 86_400, size=n)
    gaps[offsets[:-1]] = 0
    t = np.cumsum(gaps)
    t = t - np.repeat(t[offsets[:-1]], lengths) + start[user]
    return EventStore(user_offsets=offsets, item=item, rating=rating, timestamp=t.astype(np.int64))


def _embeddings(seed: int) -> ItemEmbeddings:
    rng = np.random.default_rng([seed, 13])
    vectors = rng.normal(0.0, 1.0, (_N_ITEMS, _EMB_DIM)).astype(np.float32)
    present = np.ones(_N_ITEMS, dtype=bool)
    present[-1] = False  # one item without a vector (its row is zero)
    vectors[~present] = 0.0
    digest = hashlib.sha256(vectors.tobytes()).hexdigest()[:16]
    return ItemEmbeddings(name="synthetic", vectors=vectors, present=present, hash=digest)


def _split(
    log: EventStore,
    *,
    n_test: int,
    embeddings: ItemEmbeddings | None,
    context: RunContext,
) -> SyntheticWorld:
    lengths = log.lengths()
    n_users = log.n_users
    start = log.user_offsets[:-1]
    k_test = np.minimum(lengths, n_test)
    has_val = lengths - k_test >= 2  # a validation target with a non-empty history
    n_train = lengths - k_test - has_val  # events before the validation (or test) target
    user = log.user()
    pos = np.arange(log.n_events) - start[user]
    keep = pos < n_train[user]
    t_off = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(n_train, out=t_off[1:])
    events = EventStore(
        user_offsets=t_off,
        item=log.item[keep],
        rating=log.rating[keep],
        timestamp=log.timestamp[keep],
    )
    t_user = events.user()
    t_pos = np.arange(events.n_events, dtype=np.int64)
    target = t_pos - t_off[t_user] >= 1  # training targets have at least one earlier event
    val_user = np.flatnonzero(has_val).astype(np.int32)
    val_pos = start[val_user] + n_train[val_user]
    val_batch = HistoryBatch.from_store(log, val_user, val_pos)
    train = TrainSet(
        events=events,
        train_user=t_user[target],
        train_pos=t_pos[target],
        val=Queries(batch=val_batch, rating=log.rating[val_pos]),
        n_items=_N_ITEMS,
        scale=SCALE,
        embeddings=embeddings,
        context=context,
        meta={"source": "predictors.testing"},
    )
    q_user = np.repeat(np.arange(n_users, dtype=np.int32), k_test)
    q_rank = np.arange(q_user.shape[0]) - np.repeat(np.cumsum(k_test) - k_test, k_test)
    test_pos = (start[q_user] + lengths[q_user] - k_test[q_user] + q_rank).astype(np.int64)
    test = HistoryBatch.from_store(log, q_user, test_pos)
    return SyntheticWorld(log=log, train=train, test=test, test_pos=test_pos, first=q_rank == 0)


def synthetic_world(
    seed: int = 0,
    *,
    n_test: int = 1,
    embeddings: bool = False,
    context: RunContext | None = None,
) -> SyntheticWorld:
    """The suite's data: 240 users (a few with one or two events), 160 items (3 only ever
    asked as test targets), 1 to 30 events per user, ``SCALE`` = [0.5, 5] continuous.
    Built fresh on every call (cheap); ``context`` defaults to ``RunContext(seed=seed)``."""
    ctx = context if context is not None else RunContext(seed=seed, device="cpu")
    emb = _embeddings(seed) if embeddings else None
    return _split(_make_log(seed), n_test=n_test, embeddings=emb, context=ctx)


def _arrays(obj: Any, prefix: str) -> Iterator[tuple[str, NDArray[Any]]]:
    """Every numpy array reachable through dataclass fields of ``obj``, with a dotted name."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        name = f"{prefix}.{f.name}"
        if isinstance(v, np.ndarray):
            yield name, v
        elif dataclasses.is_dataclass(v) and not isinstance(v, type | RunContext):
            yield from _arrays(v, name)


def _inputs(world: SyntheticWorld) -> Iterator[tuple[str, NDArray[Any]]]:
    yield from _arrays(world.train, "train")
    yield from _arrays(world.test, "batch")


# -- running -------------------------------------------------------------------------------
class _Suite:
    """State shared by the checks of one ``check_predictor`` call: the factory, the data
    settings and a lazily fitted model that checks copy before use."""

    def __init__(
        self,
        make: Callable[[], Any],
        name: str,
        cls: type | None,
        embeddings: bool,
        seed: int,
        device: str,
    ) -> None:
        self.make = make
        self.name = name
        self.cls = cls
        self.embeddings = embeddings
        self.seed = seed
        self.device = device
        self._fitted: tuple[Any, Any] | None = None  # (model, what fit returned)
        self._fit_error: BaseException | None = None
        self._pred: Any = None

    # data and models
    def world(self, n_test: int = 1) -> SyntheticWorld:
        ctx = RunContext(seed=self.seed, device=self.device)
        return synthetic_world(self.seed, n_test=n_test, embeddings=self.embeddings, context=ctx)

    def new(self) -> Any:
        try:
            return self.make()
        except Exception as e:
            raise _CheckFailed(f"{self.name}: building the model raised {_err(e)}") from e

    def fit(self, model: Any, train: TrainSet) -> Any:
        try:
            return model.fit(train)
        except _CheckFailed:
            raise
        except Exception as e:
            raise _CheckFailed(f"{self.name}: fit() raised {_err(e)}") from e

    def predict(self, model: Any, batch: HistoryBatch) -> Any:
        try:
            return model.predict(batch)
        except Exception as e:
            raise _CheckFailed(
                f"{self.name}: predict() on {len(batch)} queries raised {_err(e)}"
            ) from e

    def values(self, model: Any, batch: HistoryBatch) -> NDArray[np.float64]:
        """``predict`` as (B,) float64 for comparisons; shape problems are output_shape's."""
        raw = self.predict(model, batch)
        try:
            out = np.asarray(raw, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as e:
            raise _CheckFailed(
                f"{self.name}: predict() output is not numeric ({type(raw).__name__}); "
                "cannot compare (see output_shape)"
            ) from e
        if out.shape[0] != len(batch):
            raise _CheckFailed(
                f"{self.name}: predict() returned {out.shape[0]} values for {len(batch)} "
                "queries; cannot compare (see output_shape)"
            )
        return out

    def require_agree(
        self,
        got: NDArray[np.float64],
        want: NDArray[np.float64],
        tol: float,
        *,
        context: str,
        expected: str,
        after: str = "",
    ) -> None:
        """Raise ``_CheckFailed("{name}: {context} {how they differ}{after}; expected
        {expected}")`` unless ``got`` and ``want`` agree within ``tol`` (``_diff_reason``)."""
        diff = _diff_reason(got, want, tol)
        if diff is not None:
            raise _CheckFailed(f"{self.name}: {context} {diff}{after}; expected {expected}")

    def fitted(self) -> tuple[Any, Any]:
        """The model fitted once on the standard world, and what its fit returned."""
        if self._fit_error is not None:
            raise _CheckFailed(str(self._fit_error))
        if self._fitted is None:
            try:
                model = self.new()
                self._fitted = (model, self.fit(model, self.world().train))
            except _CheckFailed as e:
                self._fit_error = e
                raise
        return self._fitted

    def fresh_fitted(self) -> Any:
        """A copy of the fitted model (so that checks do not share state), or a new fit."""
        model, _ = self.fitted()
        try:
            return copy.deepcopy(model)
        except Exception:
            m = self.new()
            self.fit(m, self.world().train)
            return m

    def prediction(self) -> Any:
        """The fitted model's raw ``predict`` output on the standard test batch (once)."""
        if self._pred is None:
            self._pred = (self.predict(self.fresh_fitted(), self.world().test),)
        return self._pred[0]


def _err(e: BaseException) -> str:
    msg = str(e).strip().splitlines()
    return f"{type(e).__name__}: {msg[0]}" if msg else type(e).__name__


def _diff_reason(a: NDArray[np.float64], b: NDArray[np.float64], tol: float) -> str | None:
    """None when ``a`` and ``b`` agree within ``tol`` (NaN equals NaN), else how they differ."""
    same = (np.abs(a - b) <= tol) | (np.isnan(a) & np.isnan(b)) | (a == b)
    if same.all():
        return None
    d = np.abs(a - b)[~same]
    worst = float(np.nanmax(d)) if np.isfinite(d).any() else float("nan")
    return f"{int((~same).sum())} of {a.shape[0]} predictions differ (max |diff| {worst:.3g})"


# -- the checks ----------------------------------------------------------------------------
def _check_capabilities(s: _Suite) -> str:
    if s.cls is None:
        return "no class to read (the factory built no model)"
    try:
        caps = capabilities_of(s.cls)
    except TypeError as e:
        raise _CheckFailed(f"{s.name}: {e}") from e
    declared = "declared" if "capabilities" in dir(s.cls) else "none declared, defaults"
    return f"{declared}: " + ", ".join(f"{k}={v}" for k, v in caps.to_dict().items())


def _config(s: _Suite, model: Any) -> dict[str, Any]:
    try:
        cfg = model.get_config()
    except Exception as e:
        raise _CheckFailed(f"{s.name}: get_config() raised {_err(e)}") from e
    if not isinstance(cfg, Mapping):
        raise _CheckFailed(f"{s.name}: get_config() returned {type(cfg).__name__}, expected dict")
    return dict(cfg)


def _check_config_json(s: _Suite) -> str:
    cfg = _config(s, s.new())
    bad_keys = [k for k in cfg if not isinstance(k, str)]
    if bad_keys:
        raise _CheckFailed(f"{s.name}: get_config() keys must be strings, got {bad_keys!r}")
    bad = []
    for k, v in cfg.items():
        try:
            json.dumps(v, allow_nan=False)
        except (TypeError, ValueError) as e:
            bad.append(f"{k}={v!r} ({type(v).__name__}: {e})")
    if bad:
        raise _CheckFailed(
            f"{s.name}: get_config() must be JSON-able (json.dumps), not: " + "; ".join(bad)
        )
    return f"{len(cfg)} option(s), JSON-able"


def _check_config_roundtrip(s: _Suite) -> str:
    model = s.new()
    cfg = _config(s, model)
    try:
        again = type(model)(**cfg)
    except Exception as e:
        raise _CheckFailed(
            f"{s.name}: {type(model).__name__}(**get_config()) raised {_err(e)}; expected the "
            "constructor to accept its own config"
        ) from e
    cfg2 = _config(s, again)
    if cfg2 != cfg:
        changed = sorted(k for k in set(cfg) | set(cfg2) if cfg.get(k) != cfg2.get(k))
        raise _CheckFailed(
            f"{s.name}: {type(model).__name__}(**get_config()) has a different config "
            f"(keys {changed}); expected the same"
        )
    return f"{type(model).__name__}(**get_config()) has the same config"


def _check_predict_before_fit(s: _Suite) -> str:
    from predictors.base import BasePredictor, NotFittedError

    model = s.new()
    batch = s.world().test
    try:
        model.predict(batch)
    except NotFittedError as e:
        return f"raised NotFittedError ({_err(e)})"
    except Exception as e:
        if isinstance(model, BasePredictor):
            raise _CheckFailed(
                f"{s.name}: predict() before fit() raised {_err(e)}; expected NotFittedError"
            ) from e
        return f"raised {_err(e)}"
    raise _CheckFailed(f"{s.name}: predict() before fit() returned; expected it to raise")


def _check_fit_returns_self(s: _Suite) -> str:
    model, out = s.fitted()
    if out is not model:
        raise _CheckFailed(f"{s.name}: fit() returned {type(out).__name__}, expected self")
    return "fit(train) is the model"


def _check_output_shape(s: _Suite) -> str:
    raw = s.prediction()
    n = len(s.world().test)
    if not isinstance(raw, np.ndarray):
        raise _CheckFailed(
            f"{s.name}: predict() returned {type(raw).__name__}, expected a numpy array "
            f"of shape ({n},)"
        )
    if raw.shape != (n,):
        raise _CheckFailed(f"{s.name}: predict() returned shape {raw.shape}, expected ({n},)")
    if not np.issubdtype(raw.dtype, np.floating):
        raise _CheckFailed(
            f"{s.name}: predict() returned dtype {raw.dtype}, expected a float dtype (float32)"
        )
    note = "" if raw.dtype == np.float32 else f" (the harness casts {raw.dtype} to float32)"
    return f"({n},) {raw.dtype}{note}"


def _as_float(s: _Suite, raw: Any) -> NDArray[np.float64]:
    try:
        return np.asarray(raw, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise _CheckFailed(
            f"{s.name}: predict() returned {type(raw).__name__}, not numbers: {_err(e)}"
        ) from e


def _check_output_finite(s: _Suite) -> str:
    pred = _as_float(s, s.prediction())
    w = s.world()
    bad = ~np.isfinite(pred)
    if bad.any():
        detail = ""
        if pred.shape[0] == len(w.test):
            empty = int((bad & (w.test.hist_lengths() == 0)).sum())
            cold = int((bad & (w.test.target_item >= _N_ITEMS - _N_COLD)).sum())
            detail = f" ({empty} with an empty history, {cold} with an item unseen in training)"
        raise _CheckFailed(
            f"{s.name}: predict() returned {int(bad.sum())} non-finite value(s) of "
            f"{pred.shape[0]}{detail}; expected a finite rating (or a fallback) for every query"
        )
    return f"{pred.shape[0]} finite predictions (empty histories and unseen items included)"


def _check_output_in_scale(s: _Suite) -> str:
    pred = _as_float(s, s.prediction())
    tol = 1e-6 * SCALE.width
    out = (pred < SCALE.low - tol) | (pred > SCALE.high + tol)
    if out.any():
        raise _CheckFailed(
            f"{s.name}: {int(out.sum())} of {pred.shape[0]} raw predictions outside the rating "
            f"scale [{SCALE.low}, {SCALE.high}] (range {np.nanmin(pred):.3g} to "
            f"{np.nanmax(pred):.3g}); expected every prediction inside it"
        )
    note = ""
    model, _ = s.fitted()
    detailed = getattr(model, "predict_detailed", None)
    if callable(detailed):
        try:
            clipped = int(copy.deepcopy(model).predict_detailed(s.world().test).n_clipped)
            note = f"; the base class clipped {clipped} raw value(s)"
        except Exception:
            note = ""
    return f"all inside [{SCALE.low}, {SCALE.high}]{note}"


def _global_rng_state() -> tuple[Any, ...]:
    st = np.random.get_state(legacy=False)  # noqa: NPY002 - probing the global RNG on purpose
    return (st["state"]["key"].tobytes(), st["state"]["pos"], st["has_gauss"], st["gauss"])


def _check_deterministic(s: _Suite) -> str:
    saved = np.random.get_state()  # noqa: NPY002 - restored below
    try:
        np.random.seed(12345)  # noqa: NPY002 - a known state, to see whether the model draws
        probe = _global_rng_state()
        a, b = s.new(), s.new()
        s.fit(a, s.world().train)
        s.fit(b, s.world().train)
        batch = s.world().test
        pa, pb = s.values(a, batch), s.values(b, batch)
        used_global = _global_rng_state() != probe
    finally:
        np.random.set_state(saved)  # noqa: NPY002
    s.require_agree(
        pa,
        pb,
        0.0,
        context=f"two fits with context seed {s.seed}:",
        after=" (it drew from numpy's global RNG)" if used_global else "",
        expected="identical predictions (derive randomness from train.context.seed)",
    )
    if used_global:
        raise _CheckFailed(
            f"{s.name}: fit/predict drew from or reseeded numpy's global RNG; expected a local "
            "np.random.default_rng(train.context.seed)"
        )
    return f"two fits with seed {s.seed} predict identically"


def _check_batch_order(s: _Suite) -> str:
    model = s.fresh_fitted()
    batch = s.world().test
    perm = np.random.default_rng([s.seed, 14]).permutation(len(batch))
    shuffled = batch.take(perm)
    whole = s.values(model, batch)
    permuted = s.values(model, shuffled)
    s.require_agree(
        permuted,
        whole[perm],
        ATOL,
        context="on a permuted batch",
        expected="each query's prediction to follow it (no dependence on batch order)",
    )
    return f"permuted batch of {len(batch)} gives permuted predictions"


def _check_chunking(s: _Suite) -> str:
    model = s.fresh_fitted()
    batch = s.world().test
    n = len(batch)
    cuts = [c for c in (1, 3, 16, n // 2, n - 1) if 0 < c < n]
    bounds = [0, *sorted(set(cuts)), n]
    chunks = [batch.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]
    whole = s.values(model, batch)
    parts = np.concatenate([s.values(model, c) for c in chunks])
    sizes = [len(c) for c in chunks]
    s.require_agree(
        parts,
        whole,
        ATOL,
        context=f"predicted in chunks of {sizes},",
        expected="the same predictions as for the whole batch",
    )
    return f"chunks of {sizes} match the whole batch"


def _check_no_mutation(s: _Suite) -> str:
    w = s.world()
    before = {k: (v.dtype, v.shape, v.tobytes()) for k, v in _inputs(w)}
    model = s.new()
    s.fit(model, w.train)
    s.predict(model, w.test)
    changed = [k for k, v in _inputs(w) if (v.dtype, v.shape, v.tobytes()) != before.get(k, None)]
    if changed:
        raise _CheckFailed(
            f"{s.name}: fit/predict changed its input array(s) {', '.join(changed)}; expected "
            "inputs left untouched (copy before writing)"
        )
    ro = s.world()
    for _, v in _inputs(ro):
        v.setflags(write=False)
    model = s.new()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*not writ.*")
        try:
            model.fit(ro.train)
            model.predict(ro.test)
        except Exception as e:
            raise _CheckFailed(
                f"{s.name}: fit/predict on read-only input arrays raised {_err(e)}; expected "
                "no writes into inputs (the harness may pass shared, read-only arrays)"
            ) from e
    return f"{len(before)} input arrays unchanged; works on read-only inputs"


def _mirror(log: EventStore, rows: NDArray[np.int64], n_items: int) -> EventStore:
    """``log`` with the ratings of ``rows`` mirrored in the scale (always a change of at
    least 0.25 here) and their items replaced by other codes."""
    rating = log.rating.copy()
    r = rating[rows]
    new = np.where(np.abs(r - SCALE.mid) < 0.125, r + 1.5, SCALE.low + SCALE.high - r)
    rating[rows] = np.clip(new, SCALE.low, SCALE.high)
    item = log.item.copy()
    item[rows] = (item[rows] + 1 + n_items // 2) % n_items
    return EventStore(
        user_offsets=log.user_offsets.copy(),
        item=item,
        rating=rating,
        timestamp=log.timestamp.copy(),
    )


def _check_future(s: _Suite) -> str:
    # (a) the batch: users' first test targets, with their own and later events changed
    a = s.world(n_test=2)
    first = a.first
    # both targets' ratings and the later target's item change; the first target's item is
    # part of its query and stays
    log_b = _mirror(a.log, a.test_pos, _N_ITEMS)
    log_b.item[a.test_pos[first]] = a.log.item[a.test_pos[first]]
    b = _split(log_b, n_test=2, embeddings=a.train.embeddings, context=a.train.context)
    for (k, va), (_, vb) in zip(_inputs(a), _inputs(b), strict=True):
        if k.startswith("train.") and not np.array_equal(va, vb):  # pragma: no cover
            raise AssertionError(f"predictors.testing: the two worlds differ in {k}")
    model = s.new()
    s.fit(model, a.train)
    pa = s.values(model, a.test)
    pb = s.values(model, b.test)
    s.require_agree(
        pa[first],
        pb[first],
        ATOL,
        context="changing the ratings and items at or after a query's target (the target and "
        "the later one in the same batch) changed the prediction:",
        expected="a prediction from its own history only",
    )
    # (b) the target's own rating through the TrainSet, for test-like queries
    tq = a.train.train_queries()
    rows = np.linspace(0, len(tq.batch) - 1, num=min(300, len(tq.batch))).astype(np.int64)
    probe = [(tq.batch.take(rows), tq.rating[rows]), (a.train.val.batch, a.train.val.rating)]
    hits = total = 0
    for batch, truth in probe:
        p = s.values(model, batch)
        hits += int((np.abs(p - truth) <= 1e-4 * SCALE.width).sum())
        total += len(batch)
    if hits > total // 2:
        raise _CheckFailed(
            f"{s.name}: for {hits} of {total} training/validation targets asked as test-like "
            "queries, predict() returned the target's own rating (read from the TrainSet); "
            "expected a prediction from the history"
        )
    return (
        f"{int(first.sum())} first-target predictions unchanged by the future; "
        f"{hits} of {total} in-train targets reproduced exactly"
    )


_RUN: dict[str, Callable[[_Suite], str]] = {
    "capabilities": _check_capabilities,
    "config_json": _check_config_json,
    "config_roundtrip": _check_config_roundtrip,
    "predict_before_fit": _check_predict_before_fit,
    "fit_returns_self": _check_fit_returns_self,
    "output_shape": _check_output_shape,
    "output_finite": _check_output_finite,
    "output_in_scale": _check_output_in_scale,
    "deterministic": _check_deterministic,
    "batch_order": _check_batch_order,
    "chunking": _check_chunking,
    "no_mutation": _check_no_mutation,
    "future": _check_future,
}
assert tuple(_RUN) == CHECKS


# -- entry point ---------------------------------------------------------------------------
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
