"""`bench predict`: ratings from a model saved with a run (``bench run --save-models``).

``bench predict RUN.json --model KEY --user ID --movie ID`` predicts one rating from the
user's whole history in the run's data (the target time is one second after the user's last
event); ``--queries FILE`` (CSV or parquet: ``user_id, movie_id[, timestamp]``) predicts
many, each from the user's events before its timestamp (integer seconds, or date-times),
or from the whole history without one. The run's data is loaded again from the source its
results record and must have the run's dataset hash. Every prediction comes with the
model's fallback flag (e.g. a movie the model never saw in training).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from bench.cli.common import CONTEXT, _console, _fail, _out, _writing
from bench.data.types import Interactions
from bench.errors import BenchError, ConfigError, DataError
from bench.text import shown
from predictors.types import HistoryBatch, gather_ranges

__all__ = ["history_queries", "predict_cmd"]

QUERY_COLUMNS = ("user_id", "movie_id")


def _id_codes(
    ids: NDArray[np.int64], known: NDArray[np.int64], what: str, where: str
) -> NDArray[np.int64]:
    """Dense codes of original ``ids`` (``known``: the id of every code). Raises
    ``DataError`` naming the first id that is not in the data."""
    order = np.argsort(known, kind="stable")
    ordered = known[order]
    pos = np.clip(np.searchsorted(ordered, ids), 0, max(ordered.shape[0] - 1, 0))
    bad = ordered[pos] != ids if ordered.shape[0] else np.ones(ids.shape, dtype=bool)
    if bad.any():
        first = int(ids[np.flatnonzero(bad)[0]])
        more = f" ({int(bad.sum())} unknown ids in all)" if bad.sum() > 1 else ""
        raise DataError(f"{where}: {what} id {first} is not in the run's data{more}")
    return order[pos].astype(np.int64)


def history_queries(
    inter: Interactions,
    user_id: NDArray[np.int64],
    movie_id: NDArray[np.int64],
    timestamp: NDArray[np.int64] | None,
    where: str,
) -> HistoryBatch:
    """The queries (original ids) as a ``HistoryBatch`` on the run's data: the history is the
    user's events strictly before ``timestamp`` (seconds), or all of them (target time: one
    second after the last) when it is None. Vectorised: the queries are merged into the
    (user, time)-sorted events. Raises ``DataError`` naming the first user or movie id that
    is not in the data (``where`` names the option)."""
    user = _id_codes(user_id, inter.user_ids, "user", where)
    item = _id_codes(movie_id, inter.item_ids, "movie", where)
    starts = inter.user_offsets[user]
    if timestamp is None:
        ends = inter.user_offsets[user + 1]
        target = inter.timestamp[ends - 1] + 1
    else:
        n_ev, n_q = len(inter), user.shape[0]
        all_user = np.concatenate([inter.user.astype(np.int64), user])
        all_ts = np.concatenate([inter.timestamp, timestamp])
        is_event = np.concatenate([np.ones(n_ev, np.int64), np.zeros(n_q, np.int64)])
        # a query sorts before its user's events of the same second: history strictly before
        order = np.lexsort((is_event, all_ts, all_user))
        ahead = np.cumsum(is_event[order]) - is_event[order]  # (N + Q,) events before each
        is_query = order >= n_ev
        ends = np.empty(n_q, dtype=np.int64)
        ends[order[is_query] - n_ev] = ahead[is_query]
        target = timestamp
    idx, hist_offsets = gather_ranges(starts, ends)
    target_time = np.asarray(target, dtype=np.int64)
    return HistoryBatch.of_rows(
        user.astype(np.int32), item.astype(np.int32), target_time, inter.store(), idx, hist_offsets
    )


def _read_queries(
    path: Path,
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64] | None]:
    if not path.is_file():
        raise ConfigError(f"--queries {path}: file not found")
    try:
        frame = (
            pd.read_parquet(path)
            if path.suffix.lower() in (".parquet", ".pq")
            else pd.read_csv(path)
        )
    except Exception as e:
        raise DataError(
            f"--queries {path}: cannot read it as CSV or parquet ({type(e).__name__}: {e})"
        ) from None
    missing = [c for c in QUERY_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(
            f"--queries {path}: no column {missing[0]!r} (expected user_id, movie_id and "
            f"optionally timestamp; found {', '.join(map(str, frame.columns))})"
        )
    if len(frame) == 0:
        raise DataError(f"--queries {path}: no queries in it")
    out: list[NDArray[np.int64]] = []
    for name in QUERY_COLUMNS:
        v = pd.Series(pd.to_numeric(frame[name], errors="coerce"), dtype="float64")
        bad = v.isna().to_numpy() | (np.mod(v.fillna(0).to_numpy(), 1) != 0)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"--queries {path}: column {name} row {row + 1} is not an integer id")
        out.append(v.to_numpy(np.int64))
    ts: NDArray[np.int64] | None = None
    if "timestamp" in frame.columns:
        raw = frame["timestamp"]
        num = pd.Series(pd.to_numeric(raw, errors="coerce"), dtype="float64")
        if num.isna().any():
            when = pd.Series(pd.to_datetime(raw, errors="coerce", utc=True))
            if when.isna().any():
                row = int(np.flatnonzero(when.isna().to_numpy())[0])
                raise DataError(
                    f"--queries {path}: timestamp row {row + 1} is neither integer seconds nor "
                    "a date-time"
                )
            ts = np.asarray(when.astype("int64").to_numpy(np.int64) // 10**9, dtype=np.int64)
        else:
            ts = np.floor(num.to_numpy(np.float64)).astype(np.int64)
    return out[0], out[1], ts


def _write(frame: pd.DataFrame, out: Path) -> None:
    from bench.fileio import atomic_write, check_output_file

    check_output_file(out)
    if out.suffix.lower() in (".parquet", ".pq"):
        atomic_write(out, lambda tmp: frame.to_parquet(tmp, index=False))
    else:
        atomic_write(out, lambda tmp: frame.to_csv(tmp, index=False))


@click.command("predict", context_settings=CONTEXT)
@click.argument("results", type=click.Path(path_type=Path))
@click.option(
    "--model",
    "key",
    required=True,
    help="The model run's key as in the run's table (e.g. bias, mf@1).",
)
@click.option(
    "--user", "user_id", type=int, default=None, help="User id (original, as in the data)."
)
@click.option(
    "--movie", "movie_id", type=int, default=None, help="Movie id (original, as in the data)."
)
@click.option(
    "--queries",
    type=click.Path(path_type=Path),
    default=None,
    help="CSV or parquet of user_id, movie_id[, timestamp]: one prediction per row.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the predictions here (.csv or .parquet) instead of printing them.",
)
@click.option(
    "--device", default=None, help="Device for a torch model (default: where it was, or cpu)."
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the run's dataset is, when not where the run found it (the hash is checked).",
)
def predict_cmd(
    results: Path,
    key: str,
    user_id: int | None,
    movie_id: int | None,
    queries: Path | None,
    out: Path | None,
    device: str | None,
    data_dir: Path | None,
) -> None:
    """Predict ratings with a model saved by `bench run --save-models` (RESULTS: its JSON)."""
    from bench.checkpoints import load_checkpoint, run_data
    from bench.results import read_results
    from predictors.contract import Harnessed
    from predictors.types import RatingScale

    try:
        one = user_id is not None or movie_id is not None
        if one == (queries is not None):
            raise ConfigError("give either --user ID --movie ID or --queries FILE")
        if one and (user_id is None or movie_id is None):
            raise ConfigError("--user and --movie go together")
        doc = read_results(results, predictions=False)
        model, meta = load_checkpoint(results, key, device=device)  # before the data: cheap
        with _console().status("loading the run's data"):
            loaded = run_data(doc, data_dir=data_dir)
        inter = loaded.interactions
        if queries is not None:
            uid, mid, ts = _read_queries(queries)
            where = f"--queries {queries}"
        else:
            assert user_id is not None and movie_id is not None
            uid, mid, ts = np.array([user_id]), np.array([movie_id]), None
            where = f"--user {user_id} --movie {movie_id}"
        batch = history_queries(inter, uid, mid, ts, where)
        handle = Harnessed(model)
        handle.scale = RatingScale(*doc.scale)
        pred = handle.predict(batch)
    except BenchError as e:
        _fail(str(e))
        return
    except ValueError as e:  # a model's own refusal (e.g. a bad device): one line
        _fail(f"{key}: {e}")
        return
    frame = pd.DataFrame(
        {
            "user_id": uid,
            "movie_id": mid,
            "target_time": batch.target_time,
            "history": batch.hist_lengths(),
            "prediction": pred.values,
            "fallback": pred.fallback,
        }
    )
    label = str(meta.get("key_text") or key)
    if out is not None:
        _writing(f"--out {out}", lambda: _write(frame, out))
        _console().print(f"wrote {len(frame)} prediction(s) of {shown(label)} to {shown(out)}")
        return
    _out().print(f"[bold]{shown(label)}[/] ({shown(doc.path.name)}, dataset {shown(inter.name)})")
    _out().print(frame.to_string(index=False), markup=False, highlight=False)
