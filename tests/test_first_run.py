"""A first run anywhere: the ml-latest-small copy shipped inside the package (verified like a
download, recorded as used), and reports that find the data a run read without flags."""

from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path

import pandas as pd
import pytest

import tests.conftest as conftest
from bench.data import download, locate, manifest
from bench.data.loading import DataSource, load_source
from bench.data.split import SplitParams
from bench.errors import DataError
from bench.report import write_report
from bench.results import load_results
from bench.runner import execute
from bench.spec import Output, RunSpec, Statistics
from predictors.registry import parse_models

MANIFEST = manifest.get_manifest("ml-latest-small")


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No local copy, a fresh cache, and no network: every download fails."""
    monkeypatch.delenv("RATINGBENCH_DATA_DIR", raising=False)
    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path / "cache"))

    def offline(*a: object, **k: object) -> None:
        raise OSError("Name or service not known")

    monkeypatch.setattr(download, "_fetch", offline)
    return tmp_path / "cache" / "datasets"


def test_the_shipped_copy_is_in_the_package_with_its_licence() -> None:
    archive = manifest.shipped_archive(MANIFEST)
    assert archive is not None and archive.stat().st_size < 1_200_000
    assert download.sha256_file(archive) == MANIFEST.shipped_sha256
    with zipfile.ZipFile(archive) as zf:
        names = sorted(zf.namelist())
        readme = zf.read("ml-latest-small/README.txt").decode()
    assert names == [
        f"ml-latest-small/{n}"
        for n in ("README.txt", "links.csv", "movies.csv", "ratings.csv", "tags.csv")
    ]
    beside = (manifest.SHIPPED_DIR / "ml-latest-small.README.txt").read_text(encoding="utf-8")
    assert beside == readme
    assert "may redistribute the data set" in readme


@pytest.mark.parametrize("download", [True, False])  # default run, and --offline
def test_no_copy_and_no_network_uses_the_shipped_copy(nowhere: Path, download: bool) -> None:
    loc = locate.locate_dataset(MANIFEST, download=download)
    assert loc.origin == "shipped" and loc.folder == nowhere / "shipped" / "ml-latest-small"
    assert loc.verified == ("movies.csv", "ratings.csv", "tags.csv")  # after decompression
    again = locate.locate_dataset(MANIFEST, download=download)  # found, verified, not re-extracted
    assert again == loc
    loaded = load_source(DataSource(offline=not download))  # the default source
    assert len(loaded.interactions) == 100_836 == MANIFEST.n_ratings
    assert loaded.catalog is not None and len(loaded.catalog.item_id) == 9_742
    assert loaded.info["origin"]["kind"] == "shipped"  # recorded in the results' dataset
    assert "the copy shipped with ratingbench" in loaded.info["notes"][0]


def test_a_local_copy_wins_over_the_shipped_one(nowhere: Path, data_dir: Path) -> None:
    loc = locate.locate_dataset(MANIFEST, data_dir)
    assert loc.origin == "data_dir" and loc.folder == (data_dir / "ml-latest-small").absolute()
    assert not (nowhere / "shipped").exists()


def test_a_damaged_shipped_copy_is_refused(
    nowhere: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = manifest.shipped_archive(MANIFEST)
    assert src is not None
    fake = tmp_path / "shipped"
    fake.mkdir()
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(fake / src.name, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith("ratings.csv"):
                data = data.replace(b"1,1,4.0,", b"1,1,5.0,", 1)
            zout.writestr(info, data)
    monkeypatch.setattr(manifest, "SHIPPED_DIR", fake)
    with pytest.raises(DataError, match=r"shipped with ratingbench.*sha256 checksum mismatch"):
        locate.locate_dataset(MANIFEST)
    unpinned = manifest.DatasetManifest(**{**MANIFEST.__dict__, "shipped_sha256": None})
    with pytest.raises(DataError, match=r"ratings\.csv: sha256 checksum mismatch"):
        locate.locate_dataset(unpinned)  # the per-file checksums, as for a download
    assert not (nowhere / "shipped" / "ml-latest-small").exists()  # nothing left behind


def test_the_test_data_fixture_falls_back_to_the_shipped_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RATINGBENCH_DATA_DIR", raising=False)
    monkeypatch.setattr(conftest, "REPO", tmp_path / "clone")  # no ../shared/data beside it
    d = conftest.shared_data_dir()
    assert d is not None and d == Path(tempfile.gettempdir()) / "ratingbench-tests/datasets/shipped"
    assert download.verify_files(MANIFEST, d / "ml-latest-small") == [
        "movies.csv",
        "ratings.csv",
        "tags.csv",
    ]


# --------------------------------------------------------------------------- reports


def _small_run(out: Path, source: DataSource) -> Path:
    spec = RunSpec(
        source=source,
        split=SplitParams(min_history=10, samples_per_user=2, sample_users=80, split_seed=1),
        models=tuple(parse_models("global-mean,user-mean")),
        stats=Statistics(resamples=100),
        output=Output(out=out),
    )
    return execute(spec).path


def _missing(md: Path) -> str:
    return md.read_text(encoding="utf-8").split("## What's missing", 1)[1]


def test_report_finds_a_data_dir_run_without_flags_and_notes_a_move(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RATINGBENCH_DATA_DIR", raising=False)
    mine = tmp_path / "mydata"
    shutil.copytree(data_dir / "ml-latest-small", mine / "ml-latest-small")
    path = _small_run(tmp_path / "results", DataSource(data_dir=mine, offline=True))
    doc = load_results(path)
    assert doc["dataset"]["origin"]["kind"] == "data_dir"
    assert doc["dataset"]["origin"]["folder"] == str(mine / "ml-latest-small")
    md = write_report(path)  # no data_dir
    text = md.read_text(encoding="utf-8")
    assert "data not reloadable" not in text
    assert (md.parent / "buckets.png").is_file() and "### Example" in text
    # the folder moves: the report reads another copy with the same hash, and says so
    mine.rename(tmp_path / "elsewhere")
    md2 = write_report(path, tmp_path / "r2")
    assert (md2.parent / "buckets.png").is_file()
    assert f"the data moved: the run read {mine / 'ml-latest-small'}" in _missing(md2)


def test_report_notes_a_moved_and_a_changed_ratings_file(tmp_path: Path) -> None:
    ratings = tmp_path / "data" / "ratings.csv"
    ratings.parent.mkdir()
    shutil.copy(conftest.shared_data_dir() / "ml-latest-small" / "ratings.csv", ratings)  # type: ignore[operator]
    path = _small_run(tmp_path / "results", DataSource(ratings=ratings))
    assert load_results(path)["run_spec"]["source"]["ratings"] == str(ratings)  # absolute
    assert "data not reloadable" not in write_report(path).read_text(encoding="utf-8")
    moved = tmp_path / "moved.csv"
    ratings.rename(moved)
    gone = _missing(write_report(path, tmp_path / "r-gone"))
    assert f"the ratings file {ratings} the run read is not there any more" in gone
    assert "pass --data-dir DIR holding ratings.csv" in gone
    # beside the results: found, and the move noted
    shutil.copy(moved, path.parent / "ratings.csv")
    md = write_report(path, tmp_path / "r-beside")
    assert (md.parent / "buckets.png").is_file()
    assert "the ratings file moved" in _missing(md)
    df = pd.read_csv(path.parent / "ratings.csv")
    df.loc[0, "rating"] = 5.0 if df.loc[0, "rating"] != 5.0 else 4.0
    df.to_csv(path.parent / "ratings.csv", index=False)
    changed = _missing(write_report(path, tmp_path / "r-changed"))
    assert "has changed since the run: the copy read" in changed
