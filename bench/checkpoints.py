"""Saved models of a run (``bench run --save-models``): where they live, saving one after its
predictions are made, loading one back with every check that makes its predictions trusted.

A run's checkpoints live beside its results: ``<results stem>.models/<key>/``, one folder
per model run (``key`` is the run key's text, made safe as a folder name), each written by
``predictors.persist.save_model`` (``checkpoint.json``, ``state.json``, ``arrays.npz``; see
that module for the format and for what is not saved). The checkpoint records the run it
belongs to (run id, results file, key, seed, embedding name and hash), the data (dataset and
split hashes), the model's code identity (the sha256 of its class files, the package version,
a plugin's ``PluginSource``) and its learning curve.

``load_checkpoint`` refuses, with a one-line ``CheckpointError``: a run saved without
``--save-models``, a key that is not in the run or has no checkpoint (listing the keys that
have one), a checkpoint of another run, one whose model code changed since (a class file's
sha256, the package version where files have no hash, a plugin's file or version), one whose
dataset hash differs from the run's or from the data it is asked to predict for, and a
corrupt one (missing files, arrays that do not match, a config the class rejects).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import ResultsError
from bench.results import ResultsDoc, read_results
from bench.runkey import RunKey
from predictors import persist
from predictors.contract import Harnessed
from predictors.plugins import PluginError, PluginSource

if TYPE_CHECKING:
    from bench.data.loading import Loaded
    from bench.jobs import FitResult
    from bench.plan import Prepared
    from predictors.types import ItemEmbeddings

__all__ = [
    "CheckpointError",
    "CheckpointTarget",
    "checkpoint_dir",
    "checkpoint_keys",
    "key_folder",
    "load_checkpoint",
    "models_dir",
    "run_data",
    "save_checkpoint",
]

_SAFE = re.compile(r"[^A-Za-z0-9._=@+-]")


class CheckpointError(ResultsError):
    """A saved model cannot be used: missing, of another run or data, of changed code, or
    corrupt. The message is one line and names the file or key."""


def models_dir(results_json: Path) -> Path:
    """``<results stem>.models/`` beside the results JSON."""
    results_json = Path(results_json)
    return results_json.with_name(results_json.stem + ".models")


def key_folder(key: RunKey) -> str:
    """The folder name of a run key: its text with every character other than letters,
    digits and ``. _ = @ + -`` made ``_``, plus 8 hex of the text's sha256 when anything
    was replaced (so that two keys never share a folder)."""
    text = str(key)
    safe = _SAFE.sub("_", text)
    if safe != text or safe.startswith("."):
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return safe


def checkpoint_dir(results_json: Path, key: RunKey) -> Path:
    return models_dir(results_json) / key_folder(key)


@dataclass(frozen=True)
class CheckpointTarget:
    """Where the jobs of a run save their models, and what every checkpoint records of the
    run. Small and picklable: it travels with the jobs' inputs to wherever they run (a
    worker process, a Ray task: the results folder must then be on a filesystem they share).
    ``results`` is the results JSON whose name the run has already claimed."""

    results: Path
    run_id: str
    dataset: dict[str, Any]  # {"name", "hash"} of the data the models are fitted on
    split_hash: str
    device: str  # the run's resolved --device

    @classmethod
    def of(cls, results: Path, run_id: str, prep: Prepared, device: str) -> CheckpointTarget:
        inter = prep.loaded.interactions
        return cls(
            results=Path(results),
            run_id=run_id,
            dataset={"name": inter.name, "hash": inter.hash},
            split_hash=prep.split.hash,
            device=device,
        )

    @property
    def folder(self) -> Path:
        return models_dir(self.results)


def checkpoint_meta(
    run: FitResult, target: CheckpointTarget, embedding: ItemEmbeddings | None
) -> dict[str, Any]:
    """What a checkpoint records besides the model (``embedding``: the one in the job's
    TrainSet)."""
    return {
        "run_id": target.run_id,
        "results": target.results.name,
        "key": run.run_key.to_dict(),
        "key_text": run.key,
        "label": run.spec.label,
        "plugin": None if run.spec.source is None else run.spec.source.to_dict(),
        "seed": run.seed,
        "device": target.device,
        "dataset": dict(target.dataset),
        "split": {"hash": target.split_hash},
        "embedding": None
        if embedding is None
        else {"name": embedding.name, "hash": embedding.hash},
        "config": run.config,
        "fit_info": run.fit_info,
        "val_rmse": run.val_rmse,
        "refit": run.refit,
        "learning_curve": None if run.learning_curve is None else list(run.learning_curve),
        "saved": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def save_checkpoint(
    run: FitResult,
    model: Any,
    target: CheckpointTarget,
    *,
    embedding: ItemEmbeddings | None = None,
) -> str | None:
    """Save the fitted ``model`` of the job of result ``run`` (the model or its
    ``Harnessed`` handle), once its test predictions are made, into
    ``checkpoint_dir(target.results, run.run_key)``.
    ``embedding``: the one the job's TrainSet carried. Returns None when saved, else the
    note to record on the run (``"model not saved: ..."``); it never raises for the model's
    sake, so that a model without a safe saved form does not fail the run."""
    if isinstance(model, Harnessed):
        model = model.model
    try:
        folder = checkpoint_dir(target.results, run.run_key)
        folder.parent.mkdir(parents=True, exist_ok=True)
        persist.save_model(model, folder, meta=checkpoint_meta(run, target, embedding))
    except KeyboardInterrupt:
        raise
    except persist.PersistError as e:
        return f"model not saved: {e}"
    except OSError as e:
        return f"model not saved: {e.strerror or e}"
    except Exception as e:  # a model's own state that breaks the encoder: recorded, not fatal
        return f"model not saved: {type(e).__name__}: {e}"
    return None


def checkpoint_keys(results_json: Path) -> list[str]:
    """The text keys of the model runs that have a checkpoint, in folder order."""
    folder = models_dir(results_json)
    if not folder.is_dir():
        return []
    keys = []
    for sub in sorted(folder.iterdir()):
        if sub.is_dir() and not sub.name.startswith("."):
            try:
                meta = persist.read_checkpoint(sub)
            except persist.CheckpointError:
                continue
            key = meta.get("key")
            try:
                keys.append(str(RunKey.from_dict(key)) if isinstance(key, dict) else sub.name)
            except (KeyError, TypeError, ValueError):
                keys.append(sub.name)
    return keys


def _listing(results_json: Path) -> str:
    keys = checkpoint_keys(results_json)
    return f"models with a checkpoint: {', '.join(keys) if keys else '(none)'}"


def _model_class(doc: ResultsDoc, record: Mapping[str, Any]) -> tuple[type, str | None]:
    """The class of a recorded model run as it loads now, and how a plugin's code differs
    from what the run recorded (None: unchanged, or a built-in)."""
    from predictors.registry import class_of, parse_spec, spec_from_record

    label = str(record.get("label") or record.get("key"))
    source = record.get("source")
    try:
        if source:
            spec = spec_from_record({"spec": label, "source": source})
            cls = class_of(spec)
            assert spec.source is not None
            return cls, PluginSource.from_dict(source).changed(spec.source)
        return class_of(parse_spec(label)), None
    except (PluginError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(
            f"{doc.path.name}: model {label} cannot be loaded now: {first}"
        ) from None


#: the fields of ``checkpoint.json`` this module reads, and the JSON types each may have
_META_FIELDS: dict[str, tuple[type, ...]] = {
    "run_id": (str,),
    "key": (dict,),
    "key_text": (str, type(None)),
    "dataset": (dict,),
    "split": (dict, type(None)),
    "embedding": (dict, type(None)),
}


def _read_meta(where: Path) -> dict[str, Any]:
    """``checkpoint.json`` of the folder ``where``, with the fields a loader reads of the
    right JSON types. Raises ``CheckpointError`` (one line, naming the file and field)."""
    try:
        meta = persist.read_checkpoint(where)
    except persist.CheckpointError as e:
        raise CheckpointError(f"corrupt checkpoint: {e}") from None
    path = where / persist.CHECKPOINT_FILE
    for name, kinds in _META_FIELDS.items():
        if not isinstance(meta.get(name), kinds):
            want = " or ".join("null" if k is type(None) else f"a {k.__name__}" for k in kinds)
            got = "missing" if name not in meta else f"a {type(meta[name]).__name__}"
            raise CheckpointError(f"corrupt checkpoint: {path}: '{name}' must be {want}, {got}")
    dataset_hash = meta["dataset"].get("hash")
    if not isinstance(dataset_hash, str | None):
        raise CheckpointError(
            f"corrupt checkpoint: {path}: 'dataset.hash' must be a string, "
            f"got a {type(dataset_hash).__name__}"
        )
    return meta


def load_checkpoint(
    results_json: Path,
    key: RunKey | str,
    *,
    dataset_hash: str | None = None,
    device: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The fitted model of ``key`` (a ``RunKey`` or its text as in the run's table, e.g.
    ``mf@1``) saved with the results ``results_json``, and its ``checkpoint.json``.
    ``dataset_hash``: the hash of the data the model is about to predict for (checked
    against the checkpoint's). ``device``: where a torch model goes (default: where it
    was, or the CPU). Raises ``CheckpointError`` (one line) as the module docstring lists,
    and ``ResultsError`` for an unreadable results file."""
    results_json = Path(results_json)
    doc = read_results(results_json, predictions=False)
    rec = doc.model(key)
    folder = models_dir(results_json)
    if rec is None:
        known = ", ".join(str(m.key) for m in doc.models) or "(none)"
        raise CheckpointError(
            f"{results_json.name} has no model run {str(key)!r} (its runs: {known}; "
            f"{_listing(results_json)})"
        )
    if not folder.is_dir():
        raise CheckpointError(
            f"{results_json.name} was run without --save-models: no saved models "
            f"({folder.name}/ does not exist)"
        )
    where = checkpoint_dir(results_json, rec.key)
    if not where.is_dir():
        why = next((n for n in rec.record.get("notes") or [] if "not saved" in n), None)
        because = f" ({why})" if why else f" (status {rec.status})" if not rec.finished else ""
        raise CheckpointError(
            f"model run {rec.key} of {results_json.name} has no checkpoint{because}; "
            f"{_listing(results_json)}"
        )
    meta = _read_meta(where)
    run_id = doc.raw.get("run_id")
    if meta.get("run_id") != run_id or meta.get("key") != rec.key.to_dict():
        raise CheckpointError(
            f"{where}: this checkpoint belongs to another run or model run (run id "
            f"{meta.get('run_id')}, key {meta.get('key_text')}), not to {results_json.name}'s "
            f"{rec.key} (run id {run_id})"
        )
    saved_hash = meta["dataset"].get("hash")
    for what, want in (("the run's", doc.dataset_hash), ("the data given", dataset_hash)):
        if want is not None and saved_hash != want:
            raise CheckpointError(
                f"{where}: the model was fitted on dataset {saved_hash}, {what} is {want}; "
                "it cannot predict for other data"
            )
    cls, plugin_change = _model_class(doc, rec.record)
    try:
        source = str(where / persist.CHECKPOINT_FILE)
        why = plugin_change or persist.code_changes(meta.get("code") or {}, cls, source=source)
    except persist.CheckpointError as e:
        raise CheckpointError(f"corrupt checkpoint: {e}") from None
    if why is not None:
        raise CheckpointError(
            f"{where}: the model's code changed since it was saved ({why}); refit it "
            f"(`bench rerun {results_json.name}` fits and saves it again)"
        )
    try:
        model = persist.load_model(where, cls, device=device)
    except persist.CheckpointError as e:
        raise CheckpointError(f"corrupt checkpoint: {e}") from None
    return model, meta


def run_data(doc: ResultsDoc, *, data_dir: Path | None = None) -> Loaded:
    """The data a run was scored on, loaded again from the source its results record (with
    ``data_dir`` instead of the recorded one when given), with the run's missing-embedding
    ``drop`` applied again when it changed the data. Raises ``CheckpointError`` when the
    results record no source, or when the data's hash is not the run's."""
    from bench.data.loading import DataSource, load_source

    rec = doc.source_record
    if rec is None:
        raise CheckpointError(f"{doc.path.name}: the results record no data source")
    src = DataSource.from_dict(rec)
    if data_dir is not None:
        src = dataclasses.replace(src, data_dir=Path(data_dir))
    loaded = load_source(src)
    from bench.declare import section_from_record
    from bench.spec import RunSpec

    recorded = doc.run_spec or {}
    emb = section_from_record(RunSpec, recorded, "embedding")
    names = list(emb.embeddings)
    if loaded.interactions.hash != doc.dataset_hash and names:
        if emb.missing_embedding == "drop":
            from bench import embeddings as E

            loaded, _, _ = E.prepare(
                loaded,
                names,
                policy="drop",
                embedding_dir=emb.embedding_dir,
                split_params=section_from_record(RunSpec, recorded, "split"),
                need=True,
                notify=lambda line: None,
            )
    now = loaded.interactions.hash
    if now != doc.dataset_hash:
        raise CheckpointError(
            f"{doc.path.name}: the run's data changed since (dataset hash {doc.dataset_hash} "
            f"recorded, {now} now)"
        )
    return loaded
