"""Dataset catalog: manifests, name lookup, resolution order, one-time download, real data."""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bench.data import download
from bench.data.download import verify_files
from bench.data.locate import load_dataset, resolve_dataset_dir
from bench.data.manifest import DatasetManifest, get_manifest, list_datasets, load_manifest
from bench.data.types import build_interactions
from bench.errors import ConfigError, DataError
from predictors.types import RatingScale

REPO = Path(__file__).resolve().parents[1]
RATINGS = "userId,movieId,rating,timestamp\r\n1,10,4.0,100\r\n1,20,3.5,200\r\n2,10,5.0,150\r\n"
MOVIES = 'movieId,title,genres\r\n10,"Heat, The (1995)",Action|Crime\r\n20,Up (2009),Animation\r\n'
TAGS = "userId,movieId,tag,timestamp\r\n1,10,gritty,5\r\n"


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_toml(
    name: str = "toy",
    url: str = "file:///nonexistent/toy.zip",
    archive_sha256: str | None = None,
    ratings_sha256: str | None = None,
) -> str:
    lines = [
        f'name = "{name}"',
        'description = "A three-rating toy."',
        f'url = "{url}"',
        'folder = "toy-1"',
    ]
    if archive_sha256:
        lines.append(f'archive_sha256 = "{archive_sha256}"')
    lines += [
        "[scale]",
        "low = 0.5",
        "high = 5.0",
        "step = 0.5",
        "[files.ratings]",
        'path = "ratings.csv"',
        'format = "csv"',
    ]
    if ratings_sha256:
        lines.append(f'sha256 = "{ratings_sha256}"')
    lines += [
        "[files.movies]",
        'path = "movies.csv"',
        'format = "csv"',
        "[files.tags]",
        'path = "tags.csv"',
        'format = "csv"',
    ]
    return "\n".join(lines) + "\n"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the user's data dir or writes the user's cache."""
    monkeypatch.delenv("RATINGBENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("RATINGBENCH_MANIFESTS", raising=False)
    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path / "cache-root"))


def toy_manifest(tmp_path: Path, **kw: str | None) -> DatasetManifest:
    p = tmp_path / "manifests" / f"{kw.get('name') or 'toy'}.toml"
    p.parent.mkdir(exist_ok=True)
    p.write_text(manifest_toml(**kw))  # type: ignore[arg-type]
    return load_manifest(p)


def toy_folder(root: Path, ratings: str = RATINGS) -> Path:
    d = root / "toy-1"
    d.mkdir(parents=True)
    (d / "ratings.csv").write_bytes(ratings.encode())
    (d / "movies.csv").write_bytes(MOVIES.encode())
    (d / "tags.csv").write_bytes(TAGS.encode())
    return root


def toy_zip(path: Path, ratings: str = RATINGS) -> bytes:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("toy-1/ratings.csv", ratings)
        zf.writestr("toy-1/movies.csv", MOVIES)
        zf.writestr("toy-1/tags.csv", TAGS)
        zf.writestr("toy-1/README.txt", "toy")
    return path.read_bytes()


# --------------------------------------------------------------------------- manifests


EXPECTED = {
    "ml-100k": ((1.0, 5.0, 1.0), "tsv", "u.data"),
    "ml-1m": ((1.0, 5.0, 1.0), "dat", "ratings.dat"),
    "ml-25m": ((0.5, 5.0, 0.5), "csv", "ratings.csv"),
    "ml-32m": ((0.5, 5.0, 0.5), "csv", "ratings.csv"),
    "ml-latest-small": ((0.5, 5.0, 0.5), "csv", "ratings.csv"),
}


def test_all_manifests_parse_with_required_fields() -> None:
    manifests = list_datasets()
    assert [m.name for m in manifests] == sorted(EXPECTED)
    for m in manifests:
        scale, fmt, ratings_path = EXPECTED[m.name]
        assert m.url == f"https://files.grouplens.org/datasets/movielens/{m.name}.zip"
        assert m.folder == m.name
        assert m.description and "\n" not in m.description
        assert (m.scale.low, m.scale.high, m.scale.step) == scale
        assert (m.ratings.format, m.ratings.path) == (fmt, ratings_path)
        assert {"ratings", "movies"} <= set(m.files)
        # every role maps to a column the file has (named in the header or in `names`)
        assert set(m.ratings.columns) == {"user", "item", "rating", "timestamp"}
        for spec in m.files.values():
            if spec.names is not None:
                assert set(spec.columns.values()) <= set(spec.names)
                assert not spec.header
        assert m.archive_sha256 or m.archive_md5  # every archive has a published checksum


def test_ml_100k_genre_flags_and_encodings() -> None:
    m = get_manifest("ml-100k")
    movies = m.files["movies"]
    assert movies.genre_flags is not None and len(movies.genre_flags) == 19
    assert movies.names is not None and tuple(movies.names[-19:]) == movies.genre_flags
    assert (movies.sep, movies.encoding, movies.quoting) == ("|", "latin-1", False)
    assert get_manifest("ml-1m").files["movies"].sep == "::"


def test_ml_latest_small_checksums_match_the_data_readme() -> None:
    m = get_manifest("ml-latest-small")
    assert m.ratings.sha256 == "aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646"
    assert m.files["movies"].sha256 == (
        "5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07"
    )
    assert m.known_checksums()["ratings.csv"] == ["sha256"]


def test_unknown_dataset_suggests_nearest_and_mentions_synthetic() -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown dataset 'ml-1mm'; did you mean 'ml-1m'\?.*"
        r"Known datasets: ml-100k, ml-1m, ml-25m, ml-32m, ml-latest-small, "
        r"synthetic",
    ):
        get_manifest("ml-1mm")
    with pytest.raises(ConfigError, match=r"did you mean 'synthetic'"):
        get_manifest("synthetc")
    with pytest.raises(ConfigError, match=r"unknown dataset 'zzz'\. Known"):
        get_manifest("zzz")


def test_manifest_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy_manifest(tmp_path)
    monkeypatch.setenv("RATINGBENCH_MANIFESTS", str(tmp_path / "manifests"))
    assert [m.name for m in list_datasets()] == ["toy"]
    assert get_manifest("toy").scale == RatingScale(0.5, 5.0, 0.5)


def test_manifest_rejects_unknown_keys_and_bad_checksums(tmp_path: Path) -> None:
    p = tmp_path / "bad.toml"
    p.write_text("colour = 'red'\n" + manifest_toml(name="bad"))
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key\(s\) \['colour'\]"):
        load_manifest(p)
    p.write_text(manifest_toml(name="bad", archive_sha256="abc"))
    with pytest.raises(ConfigError, match="archive_sha256 must be 64 hex digits"):
        load_manifest(p)


def test_manifest_name_must_match_file_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = tmp_path / "m"
    d.mkdir()
    (d / "other.toml").write_text(manifest_toml(name="toy"))
    monkeypatch.setenv("RATINGBENCH_MANIFESTS", str(d))
    with pytest.raises(ConfigError, match="name 'toy' must match the file name 'other'"):
        list_datasets()


# --------------------------------------------------------------------------- resolution


def test_resolution_order_data_dir_env_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    m = toy_manifest(tmp_path)
    given, env, cache = (toy_folder(tmp_path / n) for n in ("given", "env", "cache"))
    monkeypatch.setenv("RATINGBENCH_DATA_DIR", str(env))

    def no_download(*a: object, **k: object) -> None:
        raise AssertionError("must not download")

    monkeypatch.setattr(download, "_fetch", no_download)
    assert resolve_dataset_dir(m, given, cache) == given / "toy-1"
    assert resolve_dataset_dir(m, None, cache) == env / "toy-1"
    assert resolve_dataset_dir(m, tmp_path / "empty", cache) == env / "toy-1"  # falls through
    monkeypatch.delenv("RATINGBENCH_DATA_DIR")
    assert resolve_dataset_dir(m, None, cache) == cache / "toy-1"
    # default cache: $RATINGBENCH_CACHE/datasets
    default = toy_folder(tmp_path / "cache-root" / "datasets")
    assert resolve_dataset_dir(m) == default / "toy-1"


def test_not_found_without_download_says_what_to_do(tmp_path: Path) -> None:
    m = toy_manifest(tmp_path)
    with pytest.raises(
        DataError,
        match=r"dataset 'toy' not found .*downloading is off; point at "
        r"an extracted copy with --data-dir DIR or RATINGBENCH_DATA_DIR=DIR \(the "
        r"folder that contains 'toy-1/'\), or use --dataset synthetic",
    ):
        resolve_dataset_dir(m, tmp_path / "nothing", download=False)


def test_local_folder_checksum_is_verified(tmp_path: Path) -> None:
    good = sha256(RATINGS.encode())
    m = toy_manifest(tmp_path, ratings_sha256=good)
    root = toy_folder(tmp_path / "data")
    assert resolve_dataset_dir(m, root, download=False) == root / "toy-1"
    tampered = toy_folder(tmp_path / "data2", ratings=RATINGS.replace("5.0", "4.5"))
    actual = sha256(RATINGS.replace("5.0", "4.5").encode())
    with pytest.raises(
        DataError,
        match=rf"toy-1/ratings\.csv: sha256 checksum mismatch: "
        rf"expected {good}, got {actual}",
    ):
        resolve_dataset_dir(m, tampered, download=False)
    # verification is optional
    assert resolve_dataset_dir(m, tampered, download=False, verify=False) == tampered / "toy-1"


# --------------------------------------------------------------------------- download


def test_download_once_then_cached(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    z = tmp_path / "toy.zip"
    data = toy_zip(z)
    m = toy_manifest(
        tmp_path,
        url=z.as_uri(),
        archive_sha256=sha256(data),
        ratings_sha256=sha256(RATINGS.encode()),
    )
    cache = tmp_path / "c"
    calls: list[str] = []
    real_fetch = download._fetch

    def counting_fetch(url: str, dest: Path, label: str) -> tuple[str, str]:
        calls.append(url)
        return real_fetch(url, dest, label)

    monkeypatch.setattr(download, "_fetch", counting_fetch)
    folder = resolve_dataset_dir(m, cache_dir=cache)
    assert folder == cache / "toy-1"
    assert calls == [z.as_uri()]
    assert (folder / "ratings.csv").read_bytes() == RATINGS.encode()
    assert sorted(os.listdir(cache)) == ["toy-1"]  # no temp archive or temp folder left
    # second call: found in the cache, no download
    monkeypatch.setattr(download, "_fetch", lambda *a: pytest.fail("downloaded twice"))
    assert resolve_dataset_dir(m, cache_dir=cache) == folder


@pytest.mark.parametrize("what", ["archive", "file"])
def test_download_checksum_mismatch_leaves_nothing(tmp_path: Path, what: str) -> None:
    z = tmp_path / "toy.zip"
    data = toy_zip(z)
    wrong = "0" * 64
    kw = {"archive_sha256": wrong} if what == "archive" else {"ratings_sha256": wrong}
    m = toy_manifest(tmp_path, url=z.as_uri(), **kw)
    cache = tmp_path / "c"
    actual = sha256(data) if what == "archive" else sha256(RATINGS.encode())
    named = r"toy\.zip \(from file://.*\)" if what == "archive" else r"toy-1/ratings\.csv"
    with pytest.raises(
        DataError,
        match=rf"{named}: sha256 checksum mismatch: expected {wrong}, "
        rf"got {actual}",
    ):
        resolve_dataset_dir(m, cache_dir=cache)
    assert os.listdir(cache) == []


def test_download_impossible_says_what_to_do(tmp_path: Path) -> None:
    url = (tmp_path / "missing.zip").as_uri()
    m = toy_manifest(tmp_path, url=url)
    cache = tmp_path / "c"
    with pytest.raises(
        DataError,
        match=rf"dataset 'toy' could not be downloaded from {url} .*"
        r"--data-dir DIR or RATINGBENCH_DATA_DIR=DIR \(the folder that contains "
        r"'toy-1/'\), or use --dataset synthetic",
    ):
        resolve_dataset_dir(m, cache_dir=cache)
    assert os.listdir(cache) == []
    m = toy_manifest(tmp_path, url="http://127.0.0.1:9/toy.zip")  # nothing listens on port 9
    with pytest.raises(DataError, match=r"could not be downloaded from http://127\.0\.0\.1:9/"):
        resolve_dataset_dir(m, cache_dir=cache)
    assert os.listdir(cache) == []


def test_download_of_a_non_zip(tmp_path: Path) -> None:
    z = tmp_path / "toy.zip"
    z.write_text("<html>not found</html>")
    m = toy_manifest(tmp_path, url=z.as_uri())
    with pytest.raises(DataError, match=r"toy\.zip \(from file://.*\): not a zip archive"):
        resolve_dataset_dir(m, cache_dir=tmp_path / "c")
    assert os.listdir(tmp_path / "c") == []


def test_load_dataset_reads_all_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    toy_manifest(tmp_path)
    monkeypatch.setenv("RATINGBENCH_MANIFESTS", str(tmp_path / "manifests"))
    root = toy_folder(tmp_path / "data")
    raw, catalog = load_dataset("toy", data_dir=root, download=False)
    assert raw.source == "toy"
    assert raw.scale == RatingScale(0.5, 5.0, 0.5)  # the manifest's, not inferred (3.5-5)
    np.testing.assert_array_equal(raw.rating, [4.0, 3.5, 5.0])
    assert catalog is not None
    assert catalog.title.tolist() == ["Heat, The (1995)", "Up (2009)"]
    assert catalog.tags is not None and catalog.tags["tag"].tolist() == ["gritty"]
    (root / "toy-1" / "movies.csv").unlink()
    assert load_dataset("toy", data_dir=root, download=False)[1] is None


# --------------------------------------------------------------------------- real data


def real_data_dir() -> Path | None:
    """$RATINGBENCH_DATA_DIR, ../shared/data, or the shipped copy (conftest)."""
    from tests.conftest import shared_data_dir

    return shared_data_dir()


def test_ml_latest_small_real_data(monkeypatch: pytest.MonkeyPatch) -> None:
    data_dir = real_data_dir()
    if data_dir is None:
        pytest.skip("ml-latest-small not found in ../shared/data or $RATINGBENCH_DATA_DIR")
    m = get_manifest("ml-latest-small")
    folder = data_dir / "ml-latest-small"
    assert verify_files(m, folder) == ["movies.csv", "ratings.csv", "tags.csv"]
    monkeypatch.setattr(download, "_fetch", lambda *a: pytest.fail("must not download"))
    raw, catalog = load_dataset("ml-latest-small", data_dir=data_dir, download=False)
    assert len(raw) == 100_836 == m.n_ratings
    assert np.unique(raw.user_id).size == 610
    assert np.unique(raw.item_id).size == 9_724
    assert (float(raw.rating.min()), float(raw.rating.max())) == (0.5, 5.0)
    assert raw.scale == RatingScale(0.5, 5.0, 0.5)
    assert np.all(raw.rating * 2 == np.round(raw.rating * 2))
    assert raw.timestamp.min() == 828124615  # 1996-03-29
    assert catalog is not None and len(catalog.item_id) == 9_742
    assert catalog.titles_by_id()[11] == "American President, The (1995)"
    assert catalog.tags is not None and len(catalog.tags) == 3_683
    inter = build_interactions(raw)
    assert (inter.n_users, inter.n_items, len(inter)) == (610, 9_724, 100_836)
