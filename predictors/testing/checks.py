"""The conformance checks, one function per name of ``CHECKS`` (``_RUN``, in that order;
the ones on randomness are in ``predictors.testing.randomness``); each returns its one-line
reason for passing or raises ``_CheckFailed`` with the reason for failing (``_KnockOn`` when
the failure follows from another check's rule). The package docstring
(``predictors.testing``) says what each one checks."""

from __future__ import annotations

import copy
import itertools
import json
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.contract import capabilities_of
from predictors.testing.randomness import (
    _check_deterministic,
    _check_global_rng,
    _check_rng_seeds,
    _check_seed_declared,
)
from predictors.testing.report import CHECKS
from predictors.testing.suite import _CheckFailed, _diff_reason, _err, _KnockOn, _Suite
from predictors.testing.world import _N_COLD, _N_ITEMS, SCALE, _inputs, _split
from predictors.types import EventStore, HistoryBatch

ATOL = 1e-5  # tolerance of order/chunking/future comparisons (float rounding), rating units


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


def _bytes(obj: Any) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in _inputs(obj)}


def _knock_on(
    s: _Suite,
    e: _CheckFailed,
    model: Any,
    inputs: list[tuple[Any, dict[str, bytes]]],
    fresh: HistoryBatch,
    ref: NDArray[np.float64],
) -> _CheckFailed:
    """What to raise for the failed comparison ``e``: a knock-on when the cause is another
    check's rule (``model`` wrote into one of the ``inputs``, worlds given with their bytes
    beforehand; or it predicts ``fresh``, a copy of the batch that gave ``ref``, otherwise
    the second time), else ``e`` itself."""
    seen = str(e).removeprefix(f"{s.name}: ").split("; expected")[0]
    for world, before in inputs:
        changed = [k for k, v in _inputs(world) if v.tobytes() != before[k]]
        if changed:
            return _KnockOn(
                "no_mutation", f"{s.name}: {seen}, after fit/predict wrote into {changed[0]}"
            )
    if _diff_reason(s.values(model, fresh), ref, 0.0) is not None:
        return _KnockOn(
            "deterministic",
            f"{s.name}: {seen}, but predicting the same batch twice already differs",
        )
    return e


def _require_agree_or_knock_on(
    s: _Suite,
    model: Any,
    inputs: list[tuple[Any, dict[str, bytes]]],
    fresh: HistoryBatch,
    ref: NDArray[np.float64],
    got: NDArray[np.float64],
    want: NDArray[np.float64],
    *,
    context: str,
    expected: str,
) -> None:
    """``s.require_agree(got, want, ATOL, ...)``, its failure raised as ``_knock_on`` names it
    (``inputs``, ``fresh`` and ``ref`` as there)."""
    try:
        s.require_agree(got, want, ATOL, context=context, expected=expected)
    except _CheckFailed as e:
        raise _knock_on(s, e, model, inputs, fresh, ref) from None


def _check_batch_order(s: _Suite) -> str:
    model = s.fresh_fitted()
    w = s.world()
    before, batch, fresh = _bytes(w), w.test, s.world().test
    perm = np.random.default_rng([s.seed, 14]).permutation(len(batch))
    shuffled = batch.take(perm)
    whole = s.values(model, batch)
    permuted = s.values(model, shuffled)
    _require_agree_or_knock_on(
        s,
        model,
        [(w, before)],
        fresh,
        whole,
        permuted,
        whole[perm],
        context="on a permuted batch",
        expected="each query's prediction to follow it (no dependence on batch order)",
    )
    return f"permuted batch of {len(batch)} gives permuted predictions"


def _check_chunking(s: _Suite) -> str:
    model = s.fresh_fitted()
    w = s.world()
    before, batch, fresh = _bytes(w), w.test, s.world().test
    n = len(batch)
    cuts = [c for c in (1, 3, 16, n // 2, n - 1) if 0 < c < n]
    bounds = [0, *sorted(set(cuts)), n]
    chunks = [batch.take(np.arange(a, b)) for a, b in itertools.pairwise(bounds)]
    whole = s.values(model, batch)
    parts = np.concatenate([s.values(model, c) for c in chunks])
    sizes = [len(c) for c in chunks]
    _require_agree_or_knock_on(
        s,
        model,
        [(w, before)],
        fresh,
        whole,
        parts,
        whole,
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
    inputs = [(a, _bytes(a)), (b, _bytes(b))]
    fresh = s.world(n_test=2).test
    model = s.new()
    s.fit(model, a.train)
    pa = s.values(model, a.test)
    pb = s.values(model, b.test)
    _require_agree_or_knock_on(
        s,
        model,
        inputs,
        fresh,
        pa,
        pa[first],
        pb[first],
        context="changing the ratings and items at or after a query's target (the target "
        "and the later one in the same batch) changed the prediction:",
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
    "no_mutation": _check_no_mutation,
    "global_rng": _check_global_rng,
    "rng_seeds": _check_rng_seeds,
    "deterministic": _check_deterministic,
    "seed_declared": _check_seed_declared,
    "batch_order": _check_batch_order,
    "chunking": _check_chunking,
    "future": _check_future,
}
assert tuple(_RUN) == CHECKS
