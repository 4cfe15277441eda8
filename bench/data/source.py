"""Where a run's ratings come from: ``DataSource``, the data section of the run spec
(``bench.spec``), each field a declared run option (``bench.declare``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import parsing
from bench.declare import check_section, from_record, run_option, to_record
from bench.errors import ConfigError
from predictors.options import Integer, OneOf

__all__ = ["DEFAULT_DATASET", "DataSource"]

DEFAULT_DATASET = "ml-latest-small"  # what a run reads when given neither dataset nor ratings

_PATH_FIELDS = ("ratings", "catalog", "data_dir")


@dataclass(frozen=True, kw_only=True)
class DataSource:
    """Where the ratings come from: exactly one of ``dataset`` or ``ratings`` (neither:
    the default dataset, ml-latest-small). Both given is a ``ConfigError``. Paths are made
    absolute (``~`` expanded), so that a recorded source reads the same files from any
    folder.

    ``header``: whether the ratings file's first line names its columns; None (default):
    decided from that line (a line of numbers where ids and ratings are expected is data).
    ``columns`` maps roles to column names, or to positions (``{"user": "0", ...}``)."""

    dataset: str | None = run_option(
        None,
        flags=("--dataset", "-d"),
        help="A catalog dataset (see `bench list`) or 'synthetic'. "
        "Default: ml-latest-small (unless --ratings is given).",
    )
    ratings: Path | None = run_option(
        None,
        convert=Path,
        help="Any ratings table: .csv, .tsv, '::'-separated .dat, or .parquet.",
    )
    catalog: Path | None = run_option(
        None, convert=Path, help="Optional movie catalog for --ratings (movieId,title,genres)."
    )
    columns: dict[str, str] = run_option(
        factory=dict,
        parse=parsing.columns,
        convert=dict,
        help="Column names of --ratings, e.g. 'user=uid,item=movie,rating=stars,"
        "timestamp=ts' (default userId,movieId,rating,timestamp), or positions for a file "
        "without a header: 'user=0,item=1,rating=2,timestamp=3'.",
    )
    sep: str | None = run_option(
        None,
        help="Field separator of --ratings (default: the format's, or detected from the first "
        "lines).",
    )
    header: bool | None = run_option(
        None,
        help="Whether the first line of --ratings names its columns (default: told from that "
        "line, and announced). With --no-header, --columns gives positions: "
        "user=0,item=1,rating=2,timestamp=3.",
    )
    time_unit: str | None = run_option(
        None,
        None,
        OneOf("s", "ms", "us", "ns"),
        help="Unit of integer timestamps (default: told from their magnitude, and announced).",
    )
    rating_scale: tuple[float, float, float | None] | None = run_option(
        None,
        parse=parsing.rating_scale,
        convert=parsing.scale_value,
        metavar="LOW,HIGH[,STEP]",
        help="LOW,HIGH[,STEP] (default: from the dataset manifest or the data).",
    )
    data_dir: Path | None = run_option(
        None,
        convert=Path,
        envvar="RATINGBENCH_DATA_DIR",
        resume=True,
        help="Folder holding extracted datasets (e.g. DIR/ml-latest-small/); env "
        "RATINGBENCH_DATA_DIR.",
    )
    offline: bool = run_option(
        False, resume=True, help="Never download; use local copies only."
    )
    cache: bool = run_option(
        True,
        resume=True,
        help="Reuse the verified binary cache of the parsed ratings (--no-cache: parse them "
        "again).",
    )
    users: int = run_option(
        2000,
        Integer(10),
        help="Synthetic dataset: number of users (200000 = the notebook's full scale).",
    )
    data_seed: int = run_option(0, Integer(), help="Synthetic dataset: generator seed.")

    def __post_init__(self) -> None:
        check_section(self)
        if self.ratings is not None and self.dataset is not None:
            raise ConfigError("give either --dataset or --ratings, not both")
        if self.ratings is None and self.dataset is None:
            object.__setattr__(self, "dataset", DEFAULT_DATASET)
        for k in _PATH_FIELDS:
            v = getattr(self, k)
            if v is not None:
                object.__setattr__(self, k, Path(os.path.abspath(Path(v).expanduser())))

    @classmethod
    def upgrade(cls, d: Mapping[str, Any]) -> dict[str, Any]:
        """An earlier version's record (``download``, ``synthetic: {n_users, seed}``) in
        today's keys; a record with a ``ratings`` file gets ``dataset = None`` (older files
        recorded the default dataset beside a file)."""
        out = dict(d)
        if "download" in out:
            out.setdefault("offline", not out.pop("download"))
        synthetic = out.pop("synthetic", None)
        if isinstance(synthetic, Mapping):
            if "n_users" in synthetic:
                out.setdefault("users", synthetic["n_users"])
            if "seed" in synthetic:
                out.setdefault("data_seed", synthetic["seed"])
        if out.get("ratings") is not None:
            out["dataset"] = None
        return out

    @property
    def download(self) -> bool:
        """Whether a missing catalog dataset may be downloaded (not ``offline``)."""
        return not self.offline

    @property
    def synthetic(self) -> dict[str, Any]:
        """The generator's options (``bench.data.synthetic.make_synthetic``)."""
        return {"n_users": self.users, "seed": self.data_seed}

    def to_dict(self) -> dict[str, Any]:
        """JSON-able, every field (paths as text): the one serialised form of a source, as
        runs record it in ``run_spec.source``; ``from_dict`` rebuilds the identical source."""
        return to_record(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DataSource:
        """The source ``to_dict`` (or an earlier version) wrote."""
        return from_record(cls, d)

    def describe(self) -> dict[str, Any]:
        scale = None if self.rating_scale is None else list(self.rating_scale)
        if self.ratings is not None:
            return {
                "kind": "file",
                "ratings": str(self.ratings),
                "catalog": None if self.catalog is None else str(self.catalog),
                "columns": dict(self.columns),
                "sep": self.sep,
                "rating_scale": scale,
                "time_unit": self.time_unit,
                "header": self.header,
            }
        if self.dataset == "synthetic":
            return {"kind": "synthetic", "options": dict(self.synthetic)}
        return {
            "kind": "catalog",
            "dataset": self.dataset,
            "data_dir": None if self.data_dir is None else str(self.data_dir),
            "rating_scale": scale,
            "time_unit": self.time_unit,
        }
