"""Ratings tables and catalogs without a header line: MovieLens 1M's and MovieTweetings'
``::``-separated ``.dat`` files, detected from their first line or given by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.data.loading import DataSource, load_source
from bench.data.readers import read_catalog, read_ratings
from bench.data.readers.table import DEFAULT_RATING_COLUMNS, plan_table
from bench.errors import ConfigError, DataError

POSITIONS = {"user": "0", "item": "1", "rating": "2", "timestamp": "3"}

# MovieLens 1M: UserID::MovieID::Rating::Timestamp, no header; movies.dat is latin-1
ML1M_RATINGS = (
    "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n2::661::1::978299000\n"
)
ML1M_MOVIES = (
    "1193::One Flew Over the Cuckoo's Nest (1975)::Drama\n"
    "661::James and the Giant Peach (1996)::Animation|Children's|Musical\n"
    "3::Les Mis\xe9rables (1995)::Drama\n"
)
# MovieTweetings: user_id::movie_id::rating::rating_timestamp, 7-digit zero-padded IMDb ids,
# ratings 0-10, no header; movies.dat: movie_id::movie_title (movie_year)::genre|genre
MT_RATINGS = (
    "1::0114508::8::1381006850\n"
    "2::0208092::0::1586466072\n"
    "2::0358273::10::1579057827\n"
    "3::0000008::6::1400000000\n"
    "3::0114508::7::1400000100\n"
)
MT_MOVIES = (
    "0000008::Edison Kinetoscopic Record of a Sneeze (1894)::Documentary|Short\n"
    "0114508::Species (1995)::Action|Horror|Sci-Fi\n"
    "0208092::Snatch (2000)::\n"
    "0358273::Walk the Line (2005)::Biography|Drama|Music\n"
)


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_movielens_1m_ratings_and_latin1_catalog_are_detected(tmp_path: Path) -> None:
    r = write(tmp_path / "ratings.dat", ML1M_RATINGS)
    m = write(tmp_path / "movies.dat", ML1M_MOVIES, encoding="latin-1")
    loaded = load_source(DataSource(ratings=r, catalog=m, cache=False))
    raw = read_ratings(r)
    assert raw.user_id.tolist() == [1, 1, 2, 2]
    assert raw.item_id.tolist() == [1193, 661, 1193, 661]
    assert raw.rating.tolist() == [5.0, 3.0, 4.0, 1.0]
    assert raw.timestamp.tolist() == [978300760, 978302109, 978298413, 978299000]
    assert len(loaded.interactions) == 4  # the first line is a rating, not a header
    titles = loaded.catalog.titles_by_id()
    assert titles[3] == "Les Misérables (1995)"  # latin-1 decoded
    assert loaded.catalog.genres.tolist()[1] == "Animation|Children's|Musical"
    notes = " ".join(loaded.info["notes"])
    assert "ratings.dat: the first line (1::1193::5::978300760) is data" in notes
    assert "movies.dat: not valid UTF-8, read as latin-1" in notes
    assert loaded.info["reading"]["ratings"]["header"] == "none (detected)"


def test_movietweetings_zero_padded_ids_and_a_0_to_10_scale(tmp_path: Path) -> None:
    r = write(tmp_path / "ratings.dat", MT_RATINGS)
    m = write(tmp_path / "movies.dat", MT_MOVIES)
    loaded = load_source(DataSource(ratings=r, catalog=m, cache=False))
    inter = loaded.interactions
    # 7-digit zero-padded ids parse exactly (never through float): 0114508 is 114508
    assert inter.item_ids.tolist() == [8, 114508, 208092, 358273]
    s = inter.scale
    assert (s.low, s.high, s.step) == (0.0, 10.0, 1.0)  # inferred from 0 and 10
    cat = loaded.catalog
    assert cat.item_id.tolist() == [8, 114508, 208092, 358273]  # joins with the ratings
    assert cat.genres.tolist()[2] == ""
    # a 1-10 scale given where the data happen to miss the ends
    given = load_source(DataSource(ratings=r, rating_scale=(0.0, 10.0, 1.0), cache=False))
    assert given.interactions.scale.high == 10.0


def test_no_header_with_positional_columns_in_any_order(tmp_path: Path) -> None:
    # timestamp first, then item, user, rating: positions pick them out
    p = write(tmp_path / "r.tsv", "978300760\t1193\t1\t5\n978302109\t661\t1\t3\n")
    cols = {"user": "2", "item": "1", "rating": "3", "timestamp": "0"}
    raw = read_ratings(p, header=False, columns=cols)
    assert raw.user_id.tolist() == [1, 1] and raw.item_id.tolist() == [1193, 661]
    assert raw.rating.tolist() == [5.0, 3.0] and raw.timestamp.tolist() == [978300760, 978302109]
    src = DataSource(ratings=p, header=False, columns=cols, cache=False)
    assert len(load_source(src).interactions) == 2
    # the CLI's --columns user=0,... gives the same mapping as text
    dat = write(tmp_path / "r.dat", ML1M_RATINGS)
    assert len(read_ratings(dat, header=False, columns=POSITIONS)) == 4


def test_positions_also_select_columns_of_a_file_with_a_header(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "uid,mid,stars,ts,extra\n7,70,4.5,100,x\n8,80,2.0,200,y\n")
    raw = read_ratings(p, columns=POSITIONS)  # header detected: its line is not data
    assert raw.user_id.tolist() == [7, 8] and raw.rating.tolist() == [4.5, 2.0]
    assert len(read_ratings(p, header=True, columns=POSITIONS)) == 2


def test_a_header_line_is_still_found(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "userId,movieId,rating,timestamp\n1,2,3.5,10\n1,3,4,11\n")
    plan = plan_table(p, DEFAULT_RATING_COLUMNS, {})
    assert plan.options.get("header") is None and plan.info["header"] == "found"
    assert plan.notes == ()
    assert len(read_ratings(p)) == 2


@pytest.mark.parametrize(
    "text, kw, pattern",
    [
        # string ids on the first line: neither the named columns nor data
        ("u1::m1::5::100\n", {}, r"missing column 'userId'.*pass --no-header with the columns"),
        # a headerless file whose columns are given by name
        (
            ML1M_RATINGS,
            {"columns": {"user": "uid", "item": "mid", "rating": "r", "timestamp": "t"}},
            r"looks like data, not column names.*--no-header.*user=0,item=1",
        ),
        # headerless with more columns than roles and no positions
        ("1::2::3::4::5\n", {"header": False}, r"Expected 4 columns.*--columns user=0"),
    ],
)
def test_a_headerless_file_that_cannot_be_read_names_no_header(
    tmp_path: Path, text: str, kw: dict, pattern: str
) -> None:
    p = write(tmp_path / "ratings.dat", text)
    with pytest.raises(DataError, match=pattern):
        read_ratings(p, **kw)


@pytest.mark.parametrize(
    "kw, pattern",
    [
        (
            {"header": False, "columns": {"user": "uid", "item": "mid"}},
            r"no column names: give the columns by position",
        ),
        ({"columns": {"user": "0", "item": "1"}}, r"by position and rating, timestamp by name"),
        ({"header": False, "columns": {**POSITIONS, "rating": "9"}}, r"position 9 .*beyond"),
    ],
)
def test_bad_positional_columns_are_config_errors(tmp_path: Path, kw: dict, pattern: str) -> None:
    p = write(tmp_path / "ratings.dat", ML1M_RATINGS)
    with pytest.raises(ConfigError, match=pattern):
        read_ratings(p, **kw)


def test_catalog_reader_detects_a_headerless_movies_file(tmp_path: Path) -> None:
    m = write(tmp_path / "movies.dat", MT_MOVIES)
    cat = read_catalog(m)
    assert cat.title.tolist()[1] == "Species (1995)"
    assert np.array_equal(cat.item_id, [8, 114508, 208092, 358273])


def test_header_choice_is_recorded_and_round_trips() -> None:
    src = DataSource(ratings=Path("r.dat"), header=False, columns=POSITIONS)
    assert src.ratings is not None and src.ratings.is_absolute()  # read from any folder
    assert DataSource.from_dict(src.to_dict()) == src
    assert src.describe()["header"] is False
