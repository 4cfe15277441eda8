"""``DataSource``'s serialised form (``run_spec.source`` in a results file) round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.data.loading import DataSource


@pytest.mark.parametrize(
    "src",
    [
        DataSource(),
        DataSource(dataset=None, ratings=Path("/x/r.csv"), catalog=Path("c.csv"), sep=";"),
        DataSource(dataset=None, ratings=Path("r.dat"), rating_scale=(1.0, 5.0, None)),
        DataSource(dataset="synthetic", users=30, cache=False),
        DataSource(data_dir=Path("~/d"), offline=True, time_unit="ms"),
    ],
)
def test_to_dict_from_dict_round_trip_through_json(src: DataSource) -> None:
    d = json.loads(json.dumps(src.to_dict()))
    assert DataSource.from_dict(d) == src


def test_from_dict_of_an_older_file_drops_the_default_dataset_beside_a_file() -> None:
    d = {**DataSource(dataset=None, ratings=Path("r.csv")).to_dict(), "dataset": "ml-latest-small"}
    assert DataSource.from_dict(d) == DataSource(dataset=None, ratings=Path("r.csv"))
