"""Tests of bench.embeddings.prepare: a run's embedding step and its missing-embedding policy,
on the tiny hand-made log (counts worked out by hand) and on synthetic data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import embeddings as E
from bench.data.loading import DataSource, Loaded, load_source
from bench.data.split import SplitParams, make_split
from bench.data.types import Catalog, Interactions, drop_items
from bench.errors import ConfigError, DataError
from predictors.types import ItemEmbeddings

# tiny (tests/conftest.py): user 7 rates items 100..113 (14 events, in item order), user 3
# items 100..111 (12 events), user 5 items 200..203 (4 events). 18 items.
ALL_ITEMS = [*range(100, 114), *range(200, 204)]


def write_file(path: Path, ids: list[int]) -> None:
    """An embedding file in the notebook's format: a 2-d vector (id, 1) per movie of ``ids``."""
    pd.DataFrame(
        {"movieId": np.array(ids, np.int64), "embedding": [[float(i), 1.0] for i in ids]}
    ).to_parquet(path)


@pytest.fixture
def edir(tmp_path: Path) -> Path:
    """``emb_e.parquet`` lacks 111 (user 7's 12th and user 3's last rating), 113 (user 7's
    last) and 200 (user 5's first); ``emb_f.parquet`` lacks 105 (users 7 and 3)."""
    write_file(tmp_path / "emb_e.parquet", [i for i in ALL_ITEMS if i not in (111, 113, 200)])
    write_file(tmp_path / "emb_f.parquet", [i for i in ALL_ITEMS if i != 105])
    return tmp_path


def run(loaded: Loaded, names: list[str], policy: str, edir: Path | None, **kw):
    lines: list[str] = []
    out = E.prepare(
        loaded,
        names,
        policy=policy,
        embedding_dir=edir,
        split_params=kw.pop("split_params", SplitParams()),
        need=kw.pop("need", True),
        notify=lines.append,
        **kw,
    )
    return (*out, lines)


def test_drop_removes_the_ratings_of_movies_without_a_vector(tiny: Interactions, edir: Path):
    loaded = Loaded(tiny, None, None, {})
    out, embs, info, lines = run(loaded, ["e"], "drop", edir)
    assert info["names"] == ["e"] and info["policy"] == "drop" and info["default"] is False
    assert set(info["build_s"]) == {"e"}
    # 3 movies, 4 ratings (111 twice, 113, 200), all 3 users; test targets: user 7's last
    # (113) and user 3's last (111)
    assert info["missing"] == {"items": 3, "ratings": 4, "users": 3, "test_targets": 2}
    assert lines == [
        "embedding e ...",
        "dropped 4 ratings of 3 movies without an embedding (3 users affected)",
    ]
    inter = out.interactions
    missing = np.isin(tiny.item_ids, [111, 113, 200])
    assert inter.hash == drop_items(tiny, missing).hash and len(inter) == len(tiny) - 4
    assert out.catalog is loaded.catalog and out.info is loaded.info
    # the kept rows, hashed as if the embedding had been built for the dropped data
    direct = E.build_embeddings("e", catalog=None, item_ids=inter.item_ids, embedding_dir=edir)
    assert embs["e"].present.all() and embs["e"].hash == direct.hash
    np.testing.assert_array_equal(embs["e"].vectors, direct.vectors)


def test_drop_takes_the_union_over_embeddings_and_counts_test_targets_per_split(
    tiny: Interactions, edir: Path
):
    loaded = Loaded(tiny, None, None, {})
    _, embs, info, lines = run(loaded, ["e", "f"], "drop", edir)
    assert list(embs) == ["e", "f"]
    assert info["missing"] == {"items": 4, "ratings": 6, "users": 3, "test_targets": 2}
    assert lines[-1] == "dropped 6 ratings of 4 movies without an embedding (3 users affected)"
    # three test targets per user: only user 7 has min_history + 3 = 13 events; its last
    # three are 111, 112, 113, of which two lack a vector
    _, _, info3, _ = run(loaded, ["e"], "drop", edir, split_params=SplitParams(test_targets=3))
    assert info3["missing"]["test_targets"] == 2
    # with min_history 1 user 5 (whose last rating, 203, has a vector) counts too
    _, _, info1, _ = run(loaded, ["e"], "drop", edir, split_params=SplitParams(min_history=1))
    assert info1["missing"]["test_targets"] == 2


def test_drop_without_missing_items_keeps_the_data(tiny: Interactions, tmp_path: Path):
    write_file(tmp_path / "emb_all.parquet", ALL_ITEMS)
    loaded = Loaded(tiny, None, None, {})
    out, _, info, lines = run(loaded, ["all"], "drop", tmp_path)
    assert out is loaded
    assert info["missing"] == {"items": 0, "ratings": 0, "users": 0}
    assert lines == ["embedding all ..."]


def test_zero_and_mean_keep_the_data(tiny: Interactions, edir: Path):
    loaded = Loaded(tiny, None, None, {})
    out, zero, info, lines = run(loaded, ["e"], "zero", edir)
    assert out is loaded and info["policy"] == "zero"
    assert info["missing"] == {"items": 3, "ratings": 4, "users": 3}  # nothing dropped
    assert lines == ["embedding e ..."]
    gone = np.isin(tiny.item_ids, [111, 113, 200])
    np.testing.assert_array_equal(zero["e"].present, ~gone)
    np.testing.assert_array_equal(zero["e"].vectors[gone], 0)

    out, mean, info, _ = run(loaded, ["e"], "mean", edir)
    assert out is loaded and info["policy"] == "mean"
    expected = E.apply_missing_policy("mean", zero["e"])
    assert mean["e"].hash == expected.hash != zero["e"].hash
    np.testing.assert_array_equal(mean["e"].vectors, expected.vectors)
    np.testing.assert_allclose(np.linalg.norm(mean["e"].vectors[gone], axis=1), 1, rtol=1e-6)
    with pytest.raises(ConfigError, match="unknown missing-embedding policy 'nope'"):
        run(loaded, ["e"], "nope", edir)


def _catalog(ids: list[int]) -> Catalog:
    """Dramas of 1990, except movie 200: no genre, no year, so no kg_gnn vector."""
    return Catalog(
        item_id=np.array(ids, np.int64),
        title=np.array(["X" if i == 200 else f"M{i} (1990)" for i in ids], dtype=object),
        genres=np.array(["" if i == 200 else "Drama" for i in ids], dtype=object),
    )


def test_implicit_default_embedding_forces_zero(tiny: Interactions):
    loaded = Loaded(tiny, _catalog(ALL_ITEMS), None, {})
    out, embs, info, lines = run(loaded, [], "drop", None)
    assert out is loaded  # "drop" was asked for, but the data must not change
    assert list(embs) == [E.DEFAULT_EMBEDDING] == ["kg_gnn"]
    assert info["names"] == ["kg_gnn"] and info["policy"] == "zero" and info["default"] is True
    assert info["missing"] == {"items": 1, "ratings": 1, "users": 1}
    assert lines == [
        "no --embedding given: using 'kg_gnn' built from the catalog (movies without a vector "
        "keep their ratings and get a zero vector)",
        "embedding kg_gnn ...",
    ]
    # asked for by name, the same embedding drops movie 200's rating
    out2, _, info2, _ = run(loaded, ["kg_gnn"], "drop", None)
    assert info2["default"] is False and len(out2.interactions) == len(tiny) - 1


def test_no_names(tiny: Interactions):
    bare = Loaded(tiny, None, None, {})
    assert run(bare, [], "drop", None, need=False) == (bare, {}, {}, [])
    with pytest.raises(ConfigError, match=r"need item embeddings: pass --embedding NAME"):
        run(bare, [], "drop", None)
    n = tiny.n_items
    own = ItemEmbeddings("synthetic", np.ones((n, 2), np.float32), np.ones(n, bool), "h")
    with_own = Loaded(tiny, None, own, {})
    out, embs, info, lines = run(with_own, [], "drop", None, need=False)
    assert out is with_own and embs == {"synthetic": own} and lines == []
    assert info == {"names": ["synthetic"], "default": True}
    # by name, the data's own embedding is used as it is, without a build
    _, embs, info, lines = run(with_own, ["synthetic"], "drop", None)
    assert embs["synthetic"] is own and lines == [] and info["default"] is False


def test_a_name_given_twice_is_an_error(tiny: Interactions, edir: Path):
    loaded = Loaded(tiny, None, None, {})
    with pytest.raises(ConfigError, match=r"^--embedding: 'e' is given twice$"):
        run(loaded, ["e", "e"], "drop", edir)
    write_file(edir / "e.parquet", ALL_ITEMS)  # a file is named by its stem
    with pytest.raises(ConfigError, match=r"'e' is given twice"):
        run(loaded, ["e", str(edir / "e.parquet")], "zero", edir)


@pytest.fixture(scope="module")
def synthetic() -> Interactions:
    return load_source(DataSource(dataset="synthetic", users=400)).interactions


@pytest.mark.parametrize(
    "params",
    [
        SplitParams(),
        SplitParams(test_targets=3),
        SplitParams(test_targets=2, min_history=25, samples_per_user=None),
        SplitParams(min_history=1),
        SplitParams(sample_users=50, split_seed=3),
        SplitParams(sample_users=60, test_targets=4),
    ],
)
def test_removed_test_targets_match_the_split(synthetic: Interactions, params: SplitParams):
    missing = np.random.default_rng(0).random(synthetic.n_items) < 0.3
    split = make_split(synthetic, params)
    expected = int(missing[synthetic.item[split.test_pos]].sum())
    assert expected > 0
    assert E.removed_test_targets(synthetic, params, missing) == expected


def test_removed_test_targets_without_long_users_raise_the_split_error(tiny: Interactions):
    params = SplitParams(min_history=50)
    with pytest.raises(DataError) as want:
        make_split(tiny, params)
    with pytest.raises(DataError) as got:
        E.removed_test_targets(tiny, params, np.ones(tiny.n_items, bool))
    assert str(got.value) == str(want.value)
