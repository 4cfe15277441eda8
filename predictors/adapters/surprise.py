"""Surprise (scikit-surprise) models on the harness's split: ``surprise:SVD:n_factors=50``.

``adapter_class(model)`` is what the registry calls for ``surprise:<Model>``; the models are
``MODELS``. Surprise is imported only there and in the adapters (never when this module is
imported), so the base install never needs it; without it the error names
``pip install ratingbench[surprise]``.

**Options** are the library class's own constructor parameters (read from its signature),
nothing else: ``surprise:SVD:n_factors=50:random_state=3``. ``random_state``, where the
algorithm has one, defaults to the run's seed (``train.context.seed``; ``none`` means the
same), so that the library never draws from numpy's global RNG. ``verbose`` defaults to
False (the library's KNN and BaselineOnly print by default). The dict options of Surprise
(``sim_options``, ``bsl_options``) are written one key at a time with a dot:
``surprise:KNNBaseline:sim_options.name=pearson_baseline:sim_options.user_based=false:
bsl_options.method=sgd``; from Python a dict works too (``sim_options={"name": "cosine"}``).
Values are checked by the library's constructor when the adapter is built; some (an unknown
similarity name) are only rejected by the library's fit, which the run records as that
model's failure.

**Fit rule: refit, always.** None of these adapters tunes anything on validation (the
library's defaults or the given parameters are used as they are), so there is nothing for
the validation targets to choose; they are better spent as training data, exactly as the
built-ins do after tuning: every adapter fits the library on ``train.val_events()`` (the
training events plus each user's validation target, i.e. everything before the test
targets) and reports ``FitReport(refit=True)`` with no validation RMSE (its validation
queries are in its training data). This keeps the comparison with the built-ins (``bias``,
``svdpp``, which refit on the same events) fair, and it makes a user's Surprise profile equal
to the test query's history (SVD++'s implicit set ``N(u)`` is then the history itself). The
report's settings record ``fit_on``, the library's version and every parameter passed.

**The training frame**: one Surprise rating per event, user and item raw ids being the
harness's integer codes, inner ids in order of first appearance, each user's and item's
ratings in event order: the ``Trainset`` that ``Dataset.load_from_df(...)
.build_full_trainset()`` builds from the same frame (the tests check the predictions are
equal), built from the arrays directly. Its rating scale is the data's (``train.scale``).

**Predict**: a query is (user code, target item); its history is not read (a Surprise model
knows a user only through its training ratings). SVD, SVDpp, BaselineOnly and NMF are
computed in numpy from the learned arrays (``bu``, ``bi``, ``pu``, ``qi``, ``yj``), in chunks
of ``_CHUNK`` queries, equal to the library's ``estimate`` to float rounding; KNNBaseline,
KNNWithMeans, SlopeOne and CoClustering call the library's ``estimate`` once per query (a
Python loop: the neighbourhood search has no array form in Surprise; measured on
ml-latest-small, 20k queries, 2 shared cores: KNNBaseline 13k queries/s, KNNWithMeans 17k/s,
SlopeOne 9.5k/s, CoClustering 180k/s, against 1.2M/s for the vectorised SVD).
A ``PredictionImpossible`` becomes the library's ``default_prediction()`` (the
global mean) with the fallback flag set; a query whose user or item is unknown to the
trainset is flagged too, whatever the library estimates for it (the global mean plus the
known bias, for the biased models). Clipping is the harness's (``estimate``, never the
library's clipping ``predict``).
"""

from __future__ import annotations

import copy
import time
from collections import defaultdict
from collections.abc import Mapping
from types import ModuleType
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from predictors.adapters._library import Library, check_json, lookup, unknown_option
from predictors.base import BasePredictor
from predictors.contract import FitReport
from predictors.types import EventStore, HistoryBatch, RatingScale, TrainSet

__all__ = ["INSTALL", "MODELS", "SurpriseAdapter", "adapter_class", "build_trainset"]

INSTALL = "pip install ratingbench[surprise]"

# model -> one line for `bench list`. The order is the display order.
MODELS: dict[str, str] = {
    "SVD": "Surprise's SVD: biased MF by SGD (Funk; Koren 2009)",
    "SVDpp": "Surprise's SVD++: SVD + implicit feedback of the rated items (Koren 2008)",
    "KNNBaseline": "Surprise's kNN on baseline residuals (Koren 2010)",
    "KNNWithMeans": "Surprise's kNN on mean-centred ratings",
    "BaselineOnly": "Surprise's baseline estimates mu + b_u + b_i (ALS by default)",
    "NMF": "Surprise's non-negative MF (Luo et al. 2014)",
    "SlopeOne": "Surprise's Slope One (Lemire & Maclachlan 2005)",
    "CoClustering": "Surprise's co-clustering (George & Merugu 2005)",
}

# Surprise's dict options and the keys the library reads in them.
DICT_OPTIONS: dict[str, tuple[str, ...]] = {
    "sim_options": ("name", "user_based", "min_support", "shrinkage"),
    "bsl_options": ("method", "n_epochs", "reg", "reg_u", "reg_i", "learning_rate"),
}
# options the library takes through **kwargs (AlgoBase) rather than by name
_EXTRA: dict[str, tuple[str, ...]] = {"KNNWithMeans": ("bsl_options",)}
_VECTORISED = frozenset({"SVD", "SVDpp", "BaselineOnly", "NMF"})
_CHUNK = 16_384  # queries per numpy step: (chunk, n_factors) float64 gathers stay small


LIBRARY = Library(
    prefix="surprise",
    title="Surprise",
    module="surprise",
    package="scikit-surprise",
    install=INSTALL,
    models=MODELS,
)


def adapter_class(model: str) -> type:
    """The predictor class of Surprise's ``model`` (``"SVD"``...). Raises ``PluginError``
    for an unknown model (listing ``MODELS``) or when scikit-surprise cannot be imported
    (naming ``pip install ratingbench[surprise]``)."""
    return LIBRARY.adapter(model, _CLASSES)


def accepted_options(model: str) -> list[str]:
    """The option keys ``surprise:<model>`` accepts: its library constructor's parameters
    (plus ``bsl_options`` where the library takes it through ``**kwargs``)."""
    named = LIBRARY.named_options(model)
    return named + [k for k in _EXTRA.get(model, ()) if k not in named]


def _describe_accepted(accepted: list[str]) -> str:
    out = []
    for k in accepted:
        out.append(f"{k} (or {k}.<{'|'.join(DICT_OPTIONS[k])}>)" if k in DICT_OPTIONS else k)
    return ", ".join(out) or "(none)"


# -- the training frame ------------------------------------------------------------------------
def _first_seen_codes(codes: NDArray[np.integer], size: int) -> tuple[NDArray[np.int64], int]:
    """(size,) int64 inner id of every code in order of first appearance (-1: absent), and
    the number of distinct codes."""
    uniq, first = np.unique(codes, return_index=True)
    in_order = uniq[np.argsort(first, kind="stable")]
    inner = np.full(max(size, int(uniq[-1]) + 1 if uniq.size else 0), -1, dtype=np.int64)
    inner[in_order] = np.arange(in_order.size, dtype=np.int64)
    return inner, int(in_order.size)


def _grouped(
    key: NDArray[np.int64], other: NDArray[np.int64], rating: list[float], n: int
) -> defaultdict[int, list[tuple[int, float]]]:
    """Inner id ``0..n-1`` of ``key`` -> its ``(other, rating)`` pairs in event order (a stable
    sort groups the events by key; one slice per key, not per rating)."""
    order = np.argsort(key, kind="stable")
    pairs = list(zip(other[order].tolist(), [rating[k] for k in order.tolist()], strict=True))
    off = np.concatenate([[0], np.cumsum(np.bincount(key, minlength=n))]).tolist()
    out: defaultdict[int, list[tuple[int, float]]] = defaultdict(list)
    for g in range(n):
        out[g] = pairs[off[g] : off[g + 1]]
    return out


def build_trainset(
    surprise: ModuleType, store: EventStore, n_items: int, scale: RatingScale
) -> tuple[Any, NDArray[np.int64], NDArray[np.int64]]:
    """Surprise's ``Trainset`` of ``store`` (raw ids: the harness's user and item codes),
    the same as ``Dataset.load_from_df`` + ``build_full_trainset`` build from a frame of
    (user, item, rating) rows in store order; with the (n_users,) and (n_items,) int64 maps
    from codes to inner ids (-1: not in the trainset).

    The ``ur``/``ir`` dicts of lists are the library's structure; they are filled from
    grouped arrays (one slice per user and per item), not per rating."""
    user = store.user()
    inner_u, n_u = _first_seen_codes(user, store.n_users)
    inner_i, n_i = _first_seen_codes(store.item, n_items)
    ev_u = inner_u[user]
    ev_i = inner_i[store.item]
    rating = store.rating.astype(np.float64).tolist()
    ur = _grouped(ev_u, ev_i, rating, n_u)  # each user's (inner item, rating)
    ir = _grouped(ev_i, ev_u, rating, n_i)  # each item's (inner user, rating)
    u_codes = np.flatnonzero(inner_u >= 0)
    i_codes = np.flatnonzero(inner_i >= 0)
    trainset = surprise.Trainset(
        ur,
        ir,
        n_u,
        n_i,
        store.n_events,
        (scale.low, scale.high),
        dict(zip(u_codes.tolist(), inner_u[u_codes].tolist(), strict=True)),
        dict(zip(i_codes.tolist(), inner_i[i_codes].tolist(), strict=True)),
    )
    return trainset, inner_u, inner_i


# -- the adapter ---------------------------------------------------------------------------------
class SurpriseAdapter(BasePredictor):
    """A Surprise algorithm as a predictor; the subclasses name the model (module docstring).

    ``__init__(**params)`` takes the library constructor's parameters (dict options also as
    ``sim_options.name=...``); unknown keys raise ValueError listing the accepted ones, bad
    values the library's own error. ``get_config()`` returns the given parameters."""

    library_model: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        self._params = self._checked(params)
        self._library_kwargs(seed=0)  # the library's constructor checks the values now

    def _checked(self, params: Mapping[str, Any]) -> dict[str, Any]:
        accepted = accepted_options(self.library_model)
        out: dict[str, Any] = {}
        for key, value in params.items():
            head, dot, sub = key.partition(".")
            ok = head in accepted and (
                not dot or (head in DICT_OPTIONS and sub in DICT_OPTIONS[head])
            )
            if not ok:
                cands = accepted + [
                    f"{d}.{s}" for d in accepted if d in DICT_OPTIONS for s in DICT_OPTIONS[d]
                ]
                raise unknown_option(self.name, key, cands, _describe_accepted(accepted))
            if head in DICT_OPTIONS and not dot:
                if not isinstance(value, Mapping):
                    raise ValueError(
                        f"{self.name}: option {key} must be a dict (or write it as "
                        f"{key}.<{'|'.join(DICT_OPTIONS[key])}>=value), got {value!r}"
                    )
                bad = [k for k in value if k not in DICT_OPTIONS[key]]
                if bad:
                    raise ValueError(
                        f"{self.name}: unknown key {bad[0]!r} in {key}. "
                        f"Accepted: {', '.join(DICT_OPTIONS[key])}"
                    )
            check_json(self.name, key, value)
            out[key] = copy.deepcopy(value)
        return out

    def get_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._params)

    def _library_kwargs(self, seed: int) -> dict[str, Any]:
        """The keyword arguments for the library's constructor: dotted keys merged into their
        dicts, ``random_state`` the run's seed unless given, ``verbose`` False unless given.
        Builds (and discards) one library instance, so that its constructor checks them."""
        accepted = accepted_options(self.library_model)
        kwargs: dict[str, Any] = {}
        for key, value in self._params.items():
            head, dot, sub = key.partition(".")
            if dot:
                kwargs.setdefault(head, {})[sub] = copy.deepcopy(value)
            elif head in DICT_OPTIONS:
                kwargs[head] = {**copy.deepcopy(value), **kwargs.get(head, {})}
            else:
                kwargs[key] = copy.deepcopy(value)
        if "random_state" in accepted and kwargs.get("random_state") is None:
            kwargs["random_state"] = int(seed)
        if "verbose" in accepted and "verbose" not in kwargs:
            kwargs["verbose"] = False
        LIBRARY.check_constructs(self.library_model, self.name, kwargs)
        return kwargs

    def _fit(self, train: TrainSet) -> FitReport:
        surprise = LIBRARY.load(self.library_model)
        t0 = time.perf_counter()
        store = train.val_events()
        trainset, self.user_inner_, self.item_inner_ = build_trainset(
            surprise, store, train.n_items, train.scale
        )
        t1 = time.perf_counter()
        kwargs = self._library_kwargs(seed=train.context.seed)
        algo = LIBRARY.model_class(self.library_model)(**copy.deepcopy(kwargs))
        algo.fit(trainset)
        t2 = time.perf_counter()
        self.algo_ = algo
        self.impossible_ = surprise.PredictionImpossible
        self.mu_ = float(trainset.global_mean)
        if self.library_model in _VECTORISED:
            self._arrays(algo, trainset)
        settings = {
            "library": "scikit-surprise",
            "version": str(getattr(surprise, "__version__", "?")),
            "model": self.library_model,
            "params": kwargs,
            "fit_on": "training events + validation targets (no tuning)",
            "events": store.n_events,
            "users": int(trainset.n_users),
            "items": int(trainset.n_items),
            "predict": "vectorised" if self.library_model in _VECTORISED else "loop over queries",
            "timings": {"trainset_s": round(t1 - t0, 3), "fit_s": round(t2 - t1, 3)},
        }
        return FitReport(settings=settings, refit=True)

    def _arrays(self, algo: Any, trainset: Any) -> None:
        """The learned arrays the vectorised estimate reads (float64, as the library's)."""
        model = self.library_model
        self.bu_ = np.asarray(algo.bu, dtype=np.float64) if algo.bu is not None else None
        self.bi_ = np.asarray(algo.bi, dtype=np.float64) if algo.bi is not None else None
        self.biased_ = bool(getattr(algo, "biased", True))
        if model == "BaselineOnly":
            return
        self.pu_ = np.asarray(algo.pu, dtype=np.float64)  # (n_users, k)
        self.qi_ = np.asarray(algo.qi, dtype=np.float64)  # (n_items, k)
        if model == "SVDpp":
            # p_u + |N(u)|^-1/2 sum_{j in N(u)} y_j, N(u) = the user's trainset ratings
            # (duplicates counted, as the library's sum over ur[u] does)
            yj = np.asarray(algo.yj, dtype=np.float64)  # (n_items, k)
            n_u = trainset.n_users
            lens = np.array([len(trainset.ur[u]) for u in range(n_u)], dtype=np.int64)
            items = np.fromiter(
                (j for u in range(n_u) for (j, _) in trainset.ur[u]), dtype=np.int64
            )
            owner = np.repeat(np.arange(n_u, dtype=np.int64), lens)
            z = np.zeros_like(self.pu_)
            step = max(1, (1 << 22) // max(1, yj.shape[1]))  # bounded (events, k) gathers
            for s in range(0, items.shape[0], step):
                np.add.at(z, owner[s : s + step], yj[items[s : s + step]])
            self.pu_ = self.pu_ + z / np.sqrt(np.maximum(lens, 1))[:, None]

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        u = lookup(self.user_inner_, batch.user)
        i = lookup(self.item_inner_, batch.target_item)
        if self.library_model in _VECTORISED:
            pred, impossible = self._estimate_arrays(u, i)
        else:
            pred, impossible = self._estimate_loop(u, i, batch)
        return pred, impossible | (u < 0) | (i < 0)

    def _estimate_arrays(
        self, u: NDArray[np.int64], i: NDArray[np.int64]
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The library's ``estimate`` for SVD, SVDpp, NMF and BaselineOnly, in chunks."""
        n = u.shape[0]
        pred = np.empty(n, dtype=np.float64)
        impossible = np.zeros(n, dtype=bool)
        for s in range(0, n, _CHUNK):
            uu, ii = u[s : s + _CHUNK], i[s : s + _CHUNK]
            ku, ki = uu >= 0, ii >= 0
            both = ku & ki
            us, is_ = np.where(ku, uu, 0), np.where(ki, ii, 0)
            if self.library_model == "BaselineOnly" or self.biased_:
                assert self.bu_ is not None and self.bi_ is not None
                est = self.mu_ + np.where(ku, self.bu_[us], 0.0) + np.where(ki, self.bi_[is_], 0.0)
            else:
                est = np.zeros(uu.shape[0], dtype=np.float64)
                impossible[s : s + _CHUNK] = ~both
            if self.library_model != "BaselineOnly":
                dot = np.einsum("bk,bk->b", self.qi_[is_], self.pu_[us])  # (chunk,)
                est = est + np.where(both, dot, 0.0)
            # an impossible estimate is the library's default prediction (the global mean)
            pred[s : s + _CHUNK] = np.where(impossible[s : s + _CHUNK], self.mu_, est)
        return pred, impossible

    def _estimate_loop(
        self, u: NDArray[np.int64], i: NDArray[np.int64], batch: HistoryBatch
    ) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
        """The library's ``estimate`` once per query (unknown ids as the library's own
        ``predict`` passes them: ``"UKN__<raw id>"``)."""
        n = u.shape[0]
        pred = np.empty(n, dtype=np.float64)
        impossible = np.zeros(n, dtype=bool)
        algo, exc = self.algo_, self.impossible_
        users, items = u.tolist(), i.tolist()
        raw_u, raw_i = batch.user.tolist(), batch.target_item.tolist()
        for b in range(n):
            iu: Any = users[b] if users[b] >= 0 else f"UKN__{raw_u[b]}"
            ii: Any = items[b] if items[b] >= 0 else f"UKN__{raw_i[b]}"
            try:
                est = algo.estimate(iu, ii)
                pred[b] = est[0] if isinstance(est, tuple) else est
            except exc:
                pred[b] = algo.default_prediction()
                impossible[b] = True
        return pred, impossible


def _adapter(model: str, seeded: bool) -> type[SurpriseAdapter]:
    cls: type[SurpriseAdapter] = LIBRARY.adapter_class(SurpriseAdapter, model, seeded=seeded)
    return cls


# one module-level class per model (picklable by reference, for worker processes)
SurpriseSVD = _adapter("SVD", seeded=True)
SurpriseSVDpp = _adapter("SVDpp", seeded=True)
SurpriseKNNBaseline = _adapter("KNNBaseline", seeded=False)
SurpriseKNNWithMeans = _adapter("KNNWithMeans", seeded=False)
SurpriseBaselineOnly = _adapter("BaselineOnly", seeded=False)
SurpriseNMF = _adapter("NMF", seeded=True)
SurpriseSlopeOne = _adapter("SlopeOne", seeded=False)
SurpriseCoClustering = _adapter("CoClustering", seeded=True)

_CLASSES: dict[str, type[SurpriseAdapter]] = {
    "SVD": SurpriseSVD,
    "SVDpp": SurpriseSVDpp,
    "KNNBaseline": SurpriseKNNBaseline,
    "KNNWithMeans": SurpriseKNNWithMeans,
    "BaselineOnly": SurpriseBaselineOnly,
    "NMF": SurpriseNMF,
    "SlopeOne": SurpriseSlopeOne,
    "CoClustering": SurpriseCoClustering,
}
assert list(_CLASSES) == list(MODELS)
