"""Cornac's rating-prediction models on the harness's split: ``cornac:MF:k=20``.

``adapter_class(model)`` is what the registry calls for ``cornac:<Model>``; the models are
``MODELS`` (Cornac's models that predict ratings rather than rank items). Cornac is imported
only there and in the adapters, never when this module is imported; without it the error
names ``pip install ratingbench[cornac]``.

**Options** are the library class's own constructor parameters, read from its signature
(``cornac:MF:k=20:max_iter=50:lambda_reg=0.05``); unknown keys fail with the accepted ones.
``seed`` defaults to the run's seed (``train.context.seed``; ``none`` means the same): with a
seed, Cornac's MF, BaselineOnly and SVD also train on one thread, which makes them
deterministic (their multi-threaded SGD is not). ``verbose`` is the library's (False).

**Fit rule: refit, always**, as for the Surprise adapters and for the same reasons (see
``predictors.adapters.surprise``): nothing is tuned, so the fit uses ``train.val_events()``
(training events + validation targets) and reports ``FitReport(refit=True)``. The training
frame is one (user code, item code, rating) triple per event in store order, given to
``cornac.data.Dataset.from_uir(..., seed=seed)``; the dataset's ``min_rating`` and
``max_rating`` are then set to the data's declared scale (``train.scale``) rather than the
extremes observed (PMF maps ratings to [0, 1] with them). Cornac drops repeated
(user, item) pairs, keeping one (a warning; MovieLens has none).

**Predict**: the library's ``score(user_idx, item_idx)`` once per query (a Python loop;
measured on ml-latest-small, 2 shared cores: 320k queries/s for MF, 200k/s for PMF), never
its clipping ``rate``. The fallback is the mean of the training ratings
(``Dataset.global_mean``: Cornac's ``default_score()`` is that too, except
for MF/NMF without biases, where it is 0): a ``ScoreException`` becomes the fallback with
its flag set, and a query whose user or item Cornac does not know is not sent to the library
at all (Cornac's own evaluation never scores unknown users, and its BaselineOnly indexes out
of range on one): it gets the fallback and the flag.
"""

from __future__ import annotations

import copy
import time
from typing import Any, ClassVar

import numpy as np
from numpy.typing import NDArray

from predictors.adapters._library import Library, check_json, lookup, unknown_option
from predictors.base import BasePredictor
from predictors.contract import FitReport
from predictors.types import HistoryBatch, TrainSet

__all__ = ["INSTALL", "MODELS", "CornacAdapter", "adapter_class"]

INSTALL = "pip install ratingbench[cornac]"

MODELS: dict[str, str] = {
    "MF": "Cornac's MF: biased matrix factorisation by SGD",
    "PMF": "Cornac's PMF: probabilistic MF (Mnih & Salakhutdinov 2008)",
    "BaselineOnly": "Cornac's baseline estimates mu + b_u + b_i by SGD",
    "SVD": "Cornac's SVD: biased MF by SGD (Koren 2009)",
    "NMF": "Cornac's non-negative MF (Luo et al. 2014)",
}


LIBRARY = Library(
    prefix="cornac",
    title="Cornac",
    module="cornac",
    package="cornac",
    install=INSTALL,
    models=MODELS,
    classes_in="models",
)


def adapter_class(model: str) -> type:
    """The predictor class of Cornac's ``model`` (``"MF"``...). Raises ``PluginError`` for an
    unknown model (listing ``MODELS``) or when cornac cannot be imported (naming
    ``pip install ratingbench[cornac]``)."""
    return LIBRARY.adapter(model, _CLASSES)


def accepted_options(model: str) -> list[str]:
    """The option keys ``cornac:<model>`` accepts: its library constructor's parameters."""
    return LIBRARY.named_options(model)


class CornacAdapter(BasePredictor):
    """A Cornac rating model as a predictor; the subclasses name the model (module
    docstring). ``__init__(**params)`` takes the library constructor's parameters; unknown
    keys raise ValueError listing the accepted ones. ``get_config()`` returns them."""

    library_model: ClassVar[str] = ""

    def __init__(self, **params: Any) -> None:
        accepted = accepted_options(self.library_model)
        for key, value in params.items():
            if key not in accepted:
                raise unknown_option(self.name, key, accepted, ", ".join(accepted))
            check_json(self.name, key, value)
        self._params = copy.deepcopy(dict(params))
        self._library_kwargs(seed=0)  # the library's constructor checks the values now

    def get_config(self) -> dict[str, Any]:
        return copy.deepcopy(self._params)

    def _library_kwargs(self, seed: int) -> dict[str, Any]:
        kwargs = copy.deepcopy(self._params)
        if "seed" in accepted_options(self.library_model) and kwargs.get("seed") is None:
            kwargs["seed"] = int(seed)
        LIBRARY.check_constructs(self.library_model, self.name, kwargs)
        return kwargs

    def _fit(self, train: TrainSet) -> FitReport:
        cornac = LIBRARY.load(self.library_model)
        t0 = time.perf_counter()
        store = train.val_events()
        seed = train.context.seed
        kwargs = self._library_kwargs(seed=seed)
        triples = list(
            zip(
                store.user().tolist(),
                store.item.tolist(),
                store.rating.astype(np.float64).tolist(),
                strict=True,
            )
        )
        data = cornac.data.Dataset.from_uir(triples, seed=kwargs.get("seed", seed))
        data.min_rating, data.max_rating = train.scale.low, train.scale.high
        t1 = time.perf_counter()
        algo = LIBRARY.model_class(self.library_model)(**copy.deepcopy(kwargs))
        algo.fit(data)
        t2 = time.perf_counter()
        self.algo_ = algo
        self.score_exception_ = cornac.exception.ScoreException
        self.mu_ = float(data.global_mean)
        self.user_index_ = _index(data.uid_map, train.n_users)
        self.item_index_ = _index(data.iid_map, train.n_items)
        settings = {
            "library": "cornac",
            "version": str(getattr(cornac, "__version__", "?")),
            "model": self.library_model,
            "params": kwargs,
            "fit_on": "training events + validation targets (no tuning)",
            "events": store.n_events,
            "users": int(data.num_users),
            "items": int(data.num_items),
            "predict": "loop over queries",
            "timings": {"dataset_s": round(t1 - t0, 3), "fit_s": round(t2 - t1, 3)},
        }
        return FitReport(settings=settings, refit=True)

    def _predict(self, batch: HistoryBatch) -> tuple[NDArray[np.floating], NDArray[np.bool_]]:
        u = lookup(self.user_index_, batch.user)
        i = lookup(self.item_index_, batch.target_item)
        n = len(batch)
        algo, exc = self.algo_, self.score_exception_
        default = self.mu_
        pred = np.full(n, default, dtype=np.float64)
        fallback = (u < 0) | (i < 0)
        users, items = u.tolist(), i.tolist()
        for b in np.flatnonzero(~fallback).tolist():
            try:
                pred[b] = float(algo.score(users[b], items[b]))
            except exc:
                fallback[b] = True
        return pred, fallback


def _index(id_map: dict[Any, int], size: int) -> NDArray[np.int64]:
    """(size,) int64 Cornac index of every harness code (-1: not in Cornac's data)."""
    codes = np.fromiter(id_map.keys(), dtype=np.int64, count=len(id_map))
    idx = np.fromiter(id_map.values(), dtype=np.int64, count=len(id_map))
    out = np.full(max(size, int(codes.max()) + 1 if codes.size else 0), -1, dtype=np.int64)
    out[codes] = idx
    return out


def _adapter(model: str) -> type[CornacAdapter]:
    cls: type[CornacAdapter] = LIBRARY.adapter_class(CornacAdapter, model, seeded=True)
    return cls  # seeded: every one initialises at random


CornacMF = _adapter("MF")
CornacPMF = _adapter("PMF")
CornacBaselineOnly = _adapter("BaselineOnly")
CornacSVD = _adapter("SVD")
CornacNMF = _adapter("NMF")

_CLASSES: dict[str, type[CornacAdapter]] = {
    "MF": CornacMF,
    "PMF": CornacPMF,
    "BaselineOnly": CornacBaselineOnly,
    "SVD": CornacSVD,
    "NMF": CornacNMF,
}
assert list(_CLASSES) == list(MODELS)
