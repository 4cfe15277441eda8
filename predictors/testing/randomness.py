"""The checks on a model's randomness (``global_rng``, ``rng_seeds``, ``deterministic``,
``seed_declared``), from three watched fits that they share: two under the run's seed and
one under another (``OTHER_SEED``), each on freshly built data, with every global RNG put
in the same known state before it (``predictors.testing.watch``)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from predictors.contract import capabilities_of
from predictors.testing.suite import _CheckFailed, _diff_reason, _KnockOn, _Suite
from predictors.testing.watch import (
    Built,
    Watch,
    WatchedContext,
    global_states,
    globals_kept,
    set_globals,
    touched,
)
from predictors.testing.world import _inputs, synthetic_world

OTHER_SEED = 100_003  # the second run seed is the run's seed plus this
_PROBE = 12345  # the state every global RNG is put in before a watched fit
_Site = tuple[str, str]  # (kind, site)


@dataclass(frozen=True)
class _Run:
    """One watched fit-and-predict under ``context_seed``."""

    context_seed: int
    pred: NDArray[np.float64]  # (B,) float64: predict on the standard test batch
    again: NDArray[np.float64]  # (B,) float64: the same model on a fresh copy of that batch
    built: tuple[Built, ...]  # the generators fit and predict built
    seed_reads: tuple[str, ...]  # where context.seed was read
    touched: tuple[tuple[str, str], ...]  # (phase, global RNG) whose state changed
    mutated: tuple[str, ...]  # input arrays fit/predict changed

    def seeds(self) -> dict[_Site, set[tuple[Any, ...] | None]]:
        out: dict[_Site, set[tuple[Any, ...] | None]] = defaultdict(set)
        for b in self.built:
            if not b.derived:
                out[(b.kind, b.site)].add(b.seed)
        return out


def _fit_under(s: _Suite, context_seed: int) -> _Run:
    w = Watch()
    ctx = WatchedContext(seed=context_seed, device=s.device, watch=w)
    world = synthetic_world(s.seed, embeddings=s.embeddings, context=ctx)
    fresh = s.world().test
    before = {k: v.tobytes() for k, v in _inputs(world)}
    model = s.new()
    with globals_kept():
        set_globals(_PROBE)
        g0 = global_states()
        with w.active():
            s.fit(model, world.train)
            g1 = global_states()
            w.phase = "predict"
            pred = s.values(model, world.test)
            again = s.values(model, fresh)
        g2 = global_states()
    hit = [("fit", g) for g in touched(g0, g1)] + [("predict", g) for g in touched(g1, g2)]
    mutated = tuple(k for k, v in _inputs(world) if v.tobytes() != before[k])
    return _Run(context_seed, pred, again, tuple(w.built), tuple(w.seed_reads), tuple(hit), mutated)


def _run(s: _Suite, key: str) -> _Run:
    """The watched fit ``key`` (``a`` and ``a2``: the run's seed; ``b``: the other seed),
    computed once per suite; a fit that failed fails every check that needs it."""
    got = s.cache.get(key)
    if got is None:
        seed = s.seed + (OTHER_SEED if key == "b" else 0)
        try:
            got = _fit_under(s, seed)
        except _CheckFailed as e:
            got = e
        s.cache[key] = got
    if isinstance(got, _CheckFailed):
        raise got
    return got


def _own_seed(s: _Suite) -> int | None:
    """The model's own ``seed`` option when set (it wins over the run's)."""
    try:
        seed = s.new().get_config().get("seed")
    except Exception:
        return None
    return seed if isinstance(seed, int) and not isinstance(seed, bool) else None


def _where(b: Built) -> str:
    return f"{b.call()} at {b.site} in {b.phase}"


def _first(runs: Iterable[_Run], site: _Site) -> Built:
    return next(b for r in runs for b in r.built if (b.kind, b.site) == site)


def _seed_problems(s: _Suite, a: _Run, a2: _Run, b: _Run) -> tuple[list[str], list[str], str]:
    """(reasons a generator makes results irreproducible, reasons it ignores the run's
    seed, a note on the model's own seed option)."""
    irreproducible: list[str] = []
    constant: list[str] = []
    own, note = _own_seed(s), ""
    sa, sa2, sb = a.seeds(), a2.seeds(), b.seeds()
    for site in sa.keys() | sa2.keys() | sb.keys():
        seeds = sa.get(site, set()) | sa2.get(site, set()) | sb.get(site, set())
        built = _first((a, a2, b), site)
        if None in seeds:
            why = (
                "never seeded (torch's fixed default seed, whatever the run's seed)"
                if built.kind == "torch.Generator"
                else "without a seed (OS entropy: no two runs alike)"
            )
            (constant if built.kind == "torch.Generator" else irreproducible).append(
                f"built {built.kind}() at {built.site} in {built.phase} {why}"
            )
        elif sa.get(site) != sa2.get(site):
            irreproducible.append(
                f"seeded {built.kind} at {built.site} differently in two fits with the same "
                f"run seed {s.seed} (from a clock or OS entropy?)"
            )
        elif sa.get(site, set()) & sb.get(site, set()):
            same = sorted(sa[site] & sb[site], key=repr)[0]
            if own is not None and own in (same or ()):
                note = f"; its own seed option ({own}) wins over the run's, as it should"
                continue
            shown = Built(built.kind, built.site, built.phase, same)
            constant.append(
                f"built {_where(shown)} from a constant seed: the same under run seeds "
                f"{a.context_seed} and {b.context_seed}"
            )
    return irreproducible, constant, note


def _check_global_rng(s: _Suite) -> str:
    a = _run(s, "a")
    if a.touched:
        by_phase: dict[str, list[str]] = defaultdict(list)
        for phase, g in a.touched:
            by_phase[phase].append(g)
        what = "; ".join(f"{p} drew from or reseeded {', '.join(gs)}" for p, gs in by_phase.items())
        raise _CheckFailed(
            f"{s.name}: {what}; expected a local generator seeded from train.context.seed "
            "(np.random.default_rng(seed), random.Random(seed), torch.Generator().manual_seed"
            "(seed)), never global state other models share"
        )
    names = ", ".join(global_states())
    return f"fit and predict leave the global RNGs alone ({names})"


def _check_rng_seeds(s: _Suite) -> str:
    a, a2, b = _run(s, "a"), _run(s, "a2"), _run(s, "b")
    irreproducible, constant, note = _seed_problems(s, a, a2, b)
    bad = irreproducible + constant
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise _CheckFailed(
            f"{s.name}: " + "; ".join(bad[:3]) + more + "; expected every generator seeded from "
            "train.context.seed (e.g. np.random.default_rng([train.context.seed, 1234]))"
        )
    n = sum(not x.derived for x in a.built)
    if n == 0:
        return "no generator built" + note
    return f"{n} generator(s) built in one fit, each seeded from the run's seed" + note


def _check_deterministic(s: _Suite) -> str:
    a, a2 = _run(s, "a"), _run(s, "a2")
    two = _diff_reason(a2.pred, a.pred, 0.0)
    twice = _diff_reason(a.again, a.pred, 0.0)
    if two is None and twice is None:
        return f"two fits with seed {s.seed} predict identically, and a batch twice alike"
    seen = (
        f"two fits with context seed {s.seed}: {two}"
        if two is not None
        else f"one fitted model predicting the same batch twice: {twice}"
    )
    mutated = sorted(set(a.mutated) | set(a2.mutated))
    if mutated:
        raise _KnockOn("no_mutation", f"{s.name}: {seen}; fit/predict wrote into {mutated[0]}")
    if twice is not None and any(p == "predict" for p, _ in a.touched):
        raise _KnockOn("global_rng", f"{s.name}: {seen}; predict draws from a global RNG")
    irreproducible, _, _ = _seed_problems(s, a, a2, _run(s, "b"))
    if irreproducible:
        raise _KnockOn("rng_seeds", f"{s.name}: {seen}; it {irreproducible[0]}")
    raise _CheckFailed(
        f"{s.name}: {seen}; expected identical predictions (derive all randomness from "
        "train.context.seed: no clock, no OS entropy, no state kept between calls)"
    )


def _check_seed_declared(s: _Suite) -> str:
    a, a2, b = _run(s, "a"), _run(s, "a2"), _run(s, "b")
    try:
        declared = s.cls is not None and capabilities_of(s.cls).seeded
    except TypeError:
        declared = False  # the capabilities check reports it
    moved = _diff_reason(b.pred, a.pred, 0.0)
    seeds = (a.context_seed, b.context_seed)
    if declared:
        how = f"predictions move with it ({moved})" if moved else "predictions do not move here"
        return f"declared seeded=True; {how}"
    reads = f" (it reads train.context.seed at {a.seed_reads[0]})" if a.seed_reads else ""
    fix = "expected Capabilities(seeded=True) on the class (a run then fits it once per seed)"
    if moved is not None:
        if _diff_reason(a2.pred, a.pred, 0.0) or _diff_reason(a.again, a.pred, 0.0):
            raise _KnockOn(
                "deterministic",
                f"{s.name}: under run seeds {seeds[0]} and {seeds[1]} {moved}, but they move "
                "under one seed as well",
            )
        raise _CheckFailed(
            f"{s.name}: predictions move with the run's seed: under run seeds {seeds[0]} and "
            f"{seeds[1]} {moved}{reads}; {fix}"
        )
    sa, sa2, sb = a.seeds(), a2.seeds(), b.seeds()
    follows = [k for k in sa if sa[k] == sa2.get(k) and sb.get(k) and not sa[k] & sb[k]]
    if follows:
        built = _first((a,), follows[0])
        raise _CheckFailed(
            f"{s.name}: builds {_where(built)} from train.context.seed without declaring it; {fix}"
        )
    if a.seed_reads:
        return f"reads train.context.seed (at {a.seed_reads[0]}) but nothing here depends on it"
    return "predictions do not move with the run's seed; not declared seeded"
