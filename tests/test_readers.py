"""Readers: every format on tiny hand-written files, scale inference, and every DataError."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from numpy.typing import ArrayLike

from bench.data.readers import (
    infer_format,
    infer_scale,
    read_catalog,
    read_ratings,
    read_tags,
)
from bench.data.types import TIME_UNITS, RawRatings, build_interactions
from bench.errors import ConfigError, DataError
from predictors.types import RatingScale

HEADER = "userId,movieId,rating,timestamp"


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def csv_file(tmp_path: Path, rows: list[str], name: str = "ratings.csv") -> Path:
    return write(tmp_path / name, "\r\n".join([HEADER, *rows]) + "\r\n")


def assert_rows(
    r: RawRatings,
    user: ArrayLike,
    item: ArrayLike,
    rating: ArrayLike,
    timestamp: ArrayLike | None = None,
) -> None:
    """The columns `r` read hold these values in file order (timestamp: not checked if None)."""
    np.testing.assert_array_equal(r.user_id, user)
    np.testing.assert_array_equal(r.item_id, item)
    np.testing.assert_array_equal(r.rating, rating)
    if timestamp is not None:
        np.testing.assert_array_equal(r.timestamp, timestamp)


def refuses(
    path: Path, pattern: str, read: Callable[..., object] = read_ratings, **kw: Any
) -> None:
    """Reading `path` (with options `kw`) raises a DataError whose message matches `pattern`."""
    with pytest.raises(DataError, match=pattern):
        read(path, **kw)


# --------------------------------------------------------------------------- formats


def test_csv_with_crlf(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,4.0,100", "1,20,3.5,200", "2,10,5.0,150"])
    r = read_ratings(p)
    assert_rows(r, [1, 1, 2], [10, 20, 10], np.array([4.0, 3.5, 5.0], np.float32), [100, 200, 150])
    assert (r.user_id.dtype, r.item_id.dtype) == (np.int64, np.int64)
    assert (r.rating.dtype, r.timestamp.dtype) == (np.float32, np.int64)
    assert r.scale == RatingScale(3.5, 5.0, 0.5)
    assert r.source == str(p)
    assert len(r) == 3


def test_catalog_csv_with_quoted_commas_and_crlf(tmp_path: Path) -> None:
    p = write(
        tmp_path / "movies.csv",
        "movieId,title,genres\r\n"
        '11,"American President, The (1995)",Comedy|Drama|Romance\r\n'
        '12,"Say ""Hi"", Again (2000)",(no genres listed)\r\n'
        "13,Heat (1995),\r\n",
    )
    c = read_catalog(p)
    np.testing.assert_array_equal(c.item_id, [11, 12, 13])
    assert c.title.tolist() == [
        "American President, The (1995)",
        'Say "Hi", Again (2000)',
        "Heat (1995)",
    ]
    assert c.genres.tolist() == ["Comedy|Drama|Romance", "(no genres listed)", ""]
    assert c.tags is None
    assert c.titles_by_id()[12] == 'Say "Hi", Again (2000)'


def test_tsv_u_data_without_header(tmp_path: Path) -> None:
    p = write(
        tmp_path / "u.data",
        "196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n",
    )
    r = read_ratings(p, header=False)
    assert_rows(r, [196, 186, 22], [242, 302, 377], [3, 3, 1], [881250949, 891717742, 878887116])
    assert r.scale == RatingScale(1.0, 3.0, 1.0)


def test_dat_double_colon_ratings_and_latin1_movies(tmp_path: Path) -> None:
    rp = write(
        tmp_path / "ratings.dat",
        "1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978298413\n",
    )
    r = read_ratings(
        rp,
        header=False,
        names=["u", "m", "r", "t"],
        columns={"user": "u", "item": "m", "rating": "r", "timestamp": "t"},
    )
    assert_rows(r, [1, 1, 2], [1193, 661, 1193], [5, 3, 4], [978300760, 978302109, 978298413])
    # titles hold ':' and '"' and a latin-1 byte; genres are already pipe-separated
    mp = write(
        tmp_path / "movies.dat",
        "1::Toy Story (1995)::Animation|Comedy\n"
        "2::Star Wars: Episode IV (1977)::Action|Sci-Fi\n"
        '3::"Great Performances" Cats (1998)::Musical\n'
        "4::Café Society (1995)::Drama\n",
        encoding="latin-1",
    )
    c = read_catalog(
        mp, header=False, names=["movieId", "title", "genres"], encoding="latin-1", quoting=False
    )
    assert c.title.tolist() == [
        "Toy Story (1995)",
        "Star Wars: Episode IV (1977)",
        '"Great Performances" Cats (1998)',
        "Café Society (1995)",
    ]
    assert c.genres.tolist() == ["Animation|Comedy", "Action|Sci-Fi", "Musical", "Drama"]


def test_pipe_catalog_with_genre_flags(tmp_path: Path) -> None:
    # u.item style: id|title|date|flag A|flag B|flag C, latin-1, no header
    p = write(
        tmp_path / "u.item",
        "1|Toy Story (1995)|01-Jan-1995|1|0|1\n2|Unknown (1996)||0|0|0\n3|Café (1997)|x|0|1|0\n",
        encoding="latin-1",
    )
    c = read_catalog(
        p,
        format="csv",
        sep="|",
        header=False,
        quoting=False,
        encoding="latin-1",
        names=["movieId", "title", "date", "A", "B", "C"],
        columns={"item": "movieId"},
        genre_flags=["A", "B", "C"],
    )
    np.testing.assert_array_equal(c.item_id, [1, 2, 3])
    assert c.title.tolist() == ["Toy Story (1995)", "Unknown (1996)", "Café (1997)"]
    assert c.genres.tolist() == ["A|C", "", "B"]


def test_parquet_custom_columns_and_datetime(tmp_path: Path) -> None:
    p = tmp_path / "log.parquet"
    ts = pd.to_datetime(
        ["2020-01-01T00:00:00Z", "2020-01-01T00:00:01.9Z", "1970-01-02T00:00:00Z"],
        format="ISO8601",
    )
    pq.write_table(
        pa.table(
            {
                "who": pa.array([7, 7, 8], pa.int32()),
                "what": pa.array([3, 4, 3], pa.int64()),
                "stars": pa.array([1.0, 2.5, 10.0]),
                "when": pa.array(ts),
                "extra": ["a", "b", "c"],
            }
        ),
        p,
    )
    roles = {"user": "who", "item": "what", "rating": "stars", "timestamp": "when"}
    r = read_ratings(p, columns=roles)
    assert_rows(r, [7, 7, 8], [3, 4, 3], [1.0, 2.5, 10.0])  # the timestamps: below
    # datetimes keep their own unit until build_interactions floors them to seconds:
    # 2020-01-01 is 1577836800 s; sub-seconds floor; 1970-01-02 is 86400 s
    assert r.time_info["how"] == "datetime"
    per_s = TIME_UNITS[r.time_unit]  # the parquet column's own unit
    np.testing.assert_array_equal(r.timestamp // per_s, [1577836800, 1577836801, 86400])
    inter = build_interactions(r)
    np.testing.assert_array_equal(inter.timestamp, [1577836800, 1577836801, 86400])
    assert r.scale == RatingScale(1.0, 10.0, 0.5)


def test_csv_iso_timestamps_and_custom_names(tmp_path: Path) -> None:
    p = write(
        tmp_path / "r.csv",
        "u,i,score,time\n1,2,4,2020-01-01T00:00:00Z\n1,3,2,2020-01-02 00:00:00\n",
    )
    r = read_ratings(p, columns={"user": "u", "item": "i", "rating": "score", "timestamp": "time"})
    assert r.time_unit == "ns"
    np.testing.assert_array_equal(r.timestamp // 10**9, [1577836800, 1577836800 + 86400])


def test_float_ids_that_are_integers_are_accepted(tmp_path: Path) -> None:
    # the typed fast path fails on "1.0" as int64; the string path accepts integral values
    p = csv_file(tmp_path, ["1.0,10,4,100", "2,20.0,3,200"])
    r = read_ratings(p)
    np.testing.assert_array_equal(r.user_id, [1, 2])
    np.testing.assert_array_equal(r.item_id, [10, 20])


def test_same_user_item_at_different_times_is_not_a_duplicate(tmp_path: Path) -> None:
    r = read_ratings(csv_file(tmp_path, ["1,10,4,100", "1,10,5,101"]))
    assert len(r) == 2


def test_given_scale_is_kept_and_range_is_checked_by_build_interactions(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,0.5,100", "2,10,4,100"])
    r = read_ratings(p, scale=RatingScale(1, 5, 1), source="mine")
    assert r.scale == RatingScale(1, 5, 1) and r.source == "mine"
    with pytest.raises(DataError, match=r"mine: column 'rating' has 1 value\(s\) outside"):
        build_interactions(r)


def test_read_tags_drops_empty_tags(tmp_path: Path) -> None:
    p = write(
        tmp_path / "tags.csv",
        "userId,movieId,tag,timestamp\r\n2,60756,funny,1445714994\r\n"
        '2,89774,"Tom Hardy, again",1445715205\r\n3,5,,1\r\n',
    )
    t = read_tags(p)
    assert t["item_id"].tolist() == [60756, 89774]
    assert t["tag"].tolist() == ["funny", "Tom Hardy, again"]
    assert t["item_id"].dtype == np.int64


# --------------------------------------------------------------------------- scale inference


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 5], RatingScale(1, 5, 1.0)),
        ([0.5, 3.0, 5.0], RatingScale(0.5, 5, 0.5)),
        ([0.25, 1.0], RatingScale(0.25, 1.0, None)),
        ([-10, 10], RatingScale(-10, 10, 1.0)),
    ],
)
def test_infer_scale(values: list[float], expected: RatingScale) -> None:
    assert infer_scale(np.array(values, dtype=np.float32)) == expected


def test_infer_scale_needs_two_distinct_values() -> None:
    with pytest.raises(DataError, match=r"every rating equals 3\.0"):
        infer_scale(np.array([3.0, 3.0]))
    with pytest.raises(DataError, match="empty"):
        infer_scale(np.array([]))


# --------------------------------------------------------------------------- errors


def test_missing_file(tmp_path: Path) -> None:
    refuses(tmp_path / "nope.csv", r"nope\.csv: file not found")


def test_unknown_suffix_lists_supported(tmp_path: Path) -> None:
    p = write(tmp_path / "r.xlsx", "x")
    refuses(p, r"r\.xlsx: cannot tell the format .*'\.xlsx'.*\.csv \(csv\)")
    refuses(p, r"unknown format 'json'; supported: csv, tsv, dat, parquet", format="json")
    assert infer_format("a.data") == "tsv" and infer_format("a.PQ") == "parquet"


def test_parquet_that_is_not_parquet(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,4,100"], name="fake.parquet")
    refuses(p, r"fake\.parquet: not a readable parquet file")


def test_binary_file_claiming_csv(tmp_path: Path) -> None:
    p = tmp_path / "bin.csv"
    p.write_bytes(b"userId,movieId,rating,timestamp\n\xff\xfe\x00\x01,2,3,4\n")
    refuses(p, r"bin\.csv: ")


def test_missing_column_suggests_nearest(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "userId,movieId,ratings,timestamp\r\n1,2,3,4\r\n")
    refuses(
        p,
        r"r\.csv: missing column 'rating' \(role rating\); columns found: userId, movieId, "
        r"ratings, timestamp; did you mean 'ratings'\?",
    )


def test_missing_column_in_parquet(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    pq.write_table(pa.table({"userId": [1], "movieId": [2], "rating": [3.0]}), p)
    refuses(p, r"missing column 'timestamp'.*found: userId, movieId, rating")


def test_unknown_role_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown column role 'score'"):
        read_ratings(csv_file(tmp_path, ["1,2,3,4"]), columns={"score": "rating"})


@pytest.mark.parametrize(
    ("row", "pattern"),
    [
        ("1,10,abc,100", r"column 'rating' has a non-numeric value 'abc' at data row 2; exp"),
        ("x1,10,4,100", r"column 'userId' has a non-numeric value 'x1' at data row 2; expected"),
        ("1,m10,4,100", r"column 'movieId' has a non-numeric value 'm10' at data row 2"),
        ("1,10,4,yesterday", r"column 'timestamp' has a non-numeric value 'yesterday' at data"),
        ("1,10,nan,100", r"column 'rating' has 1 NaN/missing value\(s\) \(first at data row 2\)"),
        ("1,10,inf,100", r"column 'rating' has 1 NaN/inf value\(s\) \(first: inf at data row 2\)"),
        ("-3,10,4,100", r"column 'userId' has 1 negative value\(s\) \(first: -3 at data row 2\)"),
        ("1,10.5,4,100", r"column 'movieId' has a non-integer value 10.5 at data row 2"),
        ("1,10,4,100.5", r"column 'timestamp' has a non-integer value 100.5 at data row 2"),
        (",10,4,100", r"column 'userId' has 1 missing value\(s\) \(first at data row 2\)"),
    ],
)
def test_bad_values(tmp_path: Path, row: str, pattern: str) -> None:
    p = csv_file(tmp_path, ["7,70,3,50", row])
    refuses(p, r"ratings\.csv: " + pattern)


def test_duplicate_rows(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,4,100", "2,10,4,100", "1,10,5,100", "2,10,1,100", "3,1,1,1"])
    refuses(
        p,
        r"2 duplicate \(userId, movieId, timestamp\) row\(s\); first: userId=1, movieId=10, "
        r"timestamp=100 at data rows 1 and 3",
    )


def test_empty_table(tmp_path: Path) -> None:
    refuses(csv_file(tmp_path, []), r"ratings\.csv: no ratings \(the table is empty\)")
    p = tmp_path / "empty.parquet"
    pq.write_table(pa.table({c: pa.array([], pa.int64()) for c in HEADER.split(",")}), p)
    refuses(p, "no ratings")


def test_catalog_duplicate_ids(tmp_path: Path) -> None:
    p = write(tmp_path / "movies.csv", "movieId,title,genres\n1,A,x\n2,B,y\n1,C,z\n")
    refuses(
        p, r"column 'movieId' has 1 duplicate id\(s\) \(first: 1 at data row 3\)", read=read_catalog
    )


def test_headerless_file_defaults_to_role_names(tmp_path: Path) -> None:
    p = write(tmp_path / "m.dat", "1::A: the movie::x|y\n2::B::\n")
    c = read_catalog(p, header=False)  # columns movieId, title, genres in that order
    assert c.title.tolist() == ["A: the movie", "B"] and c.genres.tolist() == ["x|y", ""]
    wide = write(tmp_path / "w.dat", "1::A::x::extra\n")
    refuses(
        wide, r"w\.dat: not a valid dat file .*Expected 3 columns", read=read_catalog, header=False
    )


# --------------------------------------------------------------------------- exact ids

S = RatingScale(0.5, 5.0, 0.5)


def test_64_bit_ids_beside_a_float_written_column_stay_distinct(tmp_path: Path) -> None:
    # "1.0" in movieId sends the reader to its string path: the 64-bit user ids must not go
    # through float64 there (2**60 + k for k < 128 are one float64)
    users = [2**60 + k for k in range(50)]
    rows = [f"{u},{j % 3}.0,4,{100 + j}" for j, u in enumerate(users)]
    r = read_ratings(csv_file(tmp_path, rows), scale=S)
    assert r.user_id.tolist() == users
    assert r.item_id.tolist() == [j % 3 for j in range(50)]
    inter = build_interactions(r)
    assert inter.n_users == 50


def test_text_ids_and_times_are_parsed_exactly(tmp_path: Path) -> None:
    big = 2**62 + 1
    ts = 1_700_000_000_123_456_789  # nanoseconds, beyond 2**53
    p = csv_file(tmp_path, [f"{big},10,4,{ts}", f"{big - 1},10.000,3,{ts + 1}", "1,x,3,5"])
    refuses(p, r"column 'movieId' has a non-numeric value 'x' at data r", scale=S)
    p = csv_file(tmp_path, [f"{big},10,4,{ts}", f"{big - 1},10.000,3,{ts + 1}"])
    r = read_ratings(p, scale=S)
    assert r.user_id.tolist() == [big, big - 1] and r.timestamp.tolist() == [ts, ts + 1]
    assert r.time_unit == "ns"


def test_ids_stored_as_floats_beyond_2_53_are_an_error(tmp_path: Path) -> None:
    p = tmp_path / "r.parquet"
    pq.write_table(
        pa.table(
            {
                "userId": pa.array([1.0, 2.0**60], pa.float64()),
                "movieId": pa.array([1, 2], pa.int64()),
                "rating": pa.array([4.0, 3.0]),
                "timestamp": pa.array([100, 200], pa.int64()),
            }
        ),
        p,
    )
    refuses(p, r"r\.parquet: column 'userId' is stored as floating poi", scale=S)


def test_ids_beyond_int64_are_an_error(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10.0,4,100", f"{2**64},10,4,100"])
    refuses(p, r"column 'userId' has values beyond the 64-bit", scale=S)


# --------------------------------------------------------------------------- time units


@pytest.mark.parametrize(
    ("scale", "unit"),
    [(1, "s"), (1_000, "ms"), (1_000_000, "us"), (1_000_000_000, "ns")],
)
def test_time_unit_is_detected_and_converted_to_seconds(
    tmp_path: Path, scale: int, unit: str
) -> None:
    secs = [1_500_000_000 + 3600 * j for j in range(4)]
    rows = [f"1,{10 + j},4,{t * scale + (scale // 2)}" for j, t in enumerate(secs)]
    r = read_ratings(csv_file(tmp_path, rows), scale=S)
    assert r.time_unit == unit and r.time_info["how"] == "detected"
    inter = build_interactions(r)
    assert inter.timestamp.tolist() == secs  # floored to whole seconds
    assert inter.meta["time_unit"]["unit"] == unit


def test_given_time_unit_wins_and_is_recorded(tmp_path: Path) -> None:
    r = read_ratings(csv_file(tmp_path, ["1,10,4,5000", "1,11,4,7000"]), time_unit="ms", scale=S)
    inter = build_interactions(r)
    assert inter.timestamp.tolist() == [5, 7]
    assert inter.meta["time_unit"] == {"unit": "ms", "how": "given", "column": "timestamp"}
    with pytest.raises(ConfigError, match="--time-unit must be one of s, ms, us, ns, got 'h'"):
        read_ratings(csv_file(tmp_path, ["1,10,4,5000"]), time_unit="h", scale=S)


def test_mixed_time_units_are_an_error(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,4,1500000000", "1,11,4,1500000000000"])
    refuses(p, r"column 'timestamp' mixes time units .* --time-unit", scale=S)


def test_datetimes_refuse_another_unit(tmp_path: Path) -> None:
    p = csv_file(tmp_path, ["1,10,4,2020-01-01T00:00:00Z"])
    assert read_ratings(p, scale=S).time_info["how"] == "datetime"
    with pytest.raises(ConfigError, match="holds datetimes"):
        read_ratings(p, time_unit="ms", scale=S)


def test_sub_second_datetimes_keep_their_order(tmp_path: Path) -> None:
    p = csv_file(
        tmp_path,
        ["1,30,4,2020-01-01T00:00:00.700Z", "1,20,2,2020-01-01T00:00:00.100Z", "1,10,3,2020-01-01"],
    )
    inter = build_interactions(read_ratings(p, scale=S))
    assert inter.item_ids[inter.item].tolist() == [10, 20, 30]
    assert inter.timestamp.tolist() == [1577836800] * 3
    p = csv_file(
        tmp_path,
        ["1,10,4,2020-01-01T00:00:00.700Z", "1,20,2,2020-01-01T00:00:00.100Z", "1,30,3,2020-01-01"],
    )
    inter = build_interactions(read_ratings(p, scale=S))
    assert inter.item_ids[inter.item].tolist() == [30, 20, 10]  # time order, not item order


def test_sub_second_order_survives_the_conversion(tmp_path: Path) -> None:
    # two ratings in one second: the millisecond order decides, not the movie id
    rows = ["1,30,4,1500000000100", "1,20,2,1500000000900", "1,10,3,1500000000500"]
    inter = build_interactions(read_ratings(csv_file(tmp_path, rows), scale=S))
    assert inter.item_ids[inter.item].tolist() == [30, 10, 20]
    assert inter.timestamp.tolist() == [1_500_000_000] * 3
