"""Ratings files as people have them: compressed (gzip, bz2, xz, zstd, lz4; told by suffix and by
magic bytes), separated by something other than the format's separator, or not text at all."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.data import cache
from bench.data.loading import DataSource, load_source
from bench.data.readers import infer_format, read_catalog, read_ratings
from bench.data.readers.table import DEFAULT_RATING_COLUMNS, TableOptions, plan_table
from bench.errors import DataError


def _arrow(codec: str) -> Callable[[bytes], bytes]:
    def pack(data: bytes) -> bytes:
        sink = pa.BufferOutputStream()
        with pa.CompressedOutputStream(sink, codec) as out:
            out.write(data)
        return bytes(sink.getvalue())

    return pack


#: compression -> (suffix, how to compress bytes; the fastest levels)
PACKERS: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    "gzip": (".gz", lambda b: gzip.compress(b, compresslevel=1)),
    "bz2": (".bz2", lambda b: bz2.compress(b, compresslevel=1)),
    "xz": (".xz", lambda b: lzma.compress(b, format=lzma.FORMAT_XZ, preset=0)),
    "zstd": (".zst", _arrow("zstd")),
    "lz4": (".lz4", _arrow("lz4")),
}
TINY = b"userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,200\n2,10,5.0,150\n"


def packed(path: Path, data: bytes, comp: str, name: str | None = None) -> Path:
    """``data`` compressed with ``comp`` into ``path``'s folder, as ``name`` (default: the
    path's name plus the compression's suffix)."""
    suffix, pack = PACKERS[comp]
    out = path.parent / (name or path.name + suffix)
    out.write_bytes(pack(data))
    return out


def loaded_hash(path: Path, use_cache: bool = False) -> str:
    return load_source(DataSource(ratings=path, cache=use_cache)).interactions.hash


def assert_printable(message: str) -> None:
    """A message holds no control characters and no undecodable bytes."""
    assert message.isprintable(), repr(message)
    assert "\ufffd" not in message and "\\x" not in message, message


# --------------------------------------------------------------------------- real data


@pytest.fixture(scope="module")
def plain_copy(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of ml-latest-small's ratings.csv in a temp folder (the original is read-only)."""
    dst = tmp_path_factory.mktemp("ml") / "ratings.csv"
    shutil.copyfile(data_dir / "ml-latest-small" / "ratings.csv", dst)
    return dst


@pytest.mark.parametrize("comp", list(PACKERS))
def test_a_compressed_copy_of_the_real_ratings_has_the_plain_files_hash(
    plain_copy: Path, comp: str
) -> None:
    data = plain_copy.read_bytes()
    by_suffix = packed(plain_copy, data, comp)  # ratings.csv.gz, ...
    by_magic = packed(plain_copy, data, comp, name=f"{comp}-inside.csv")  # named as if plain
    plain = loaded_hash(plain_copy)
    assert loaded_hash(by_suffix) == plain
    assert loaded_hash(by_magic) == plain
    loaded = load_source(DataSource(ratings=by_magic, cache=False))
    assert loaded.info["reading"]["ratings"]["compression"] == comp
    assert any("told from its first bytes" in n for n in loaded.info["notes"])
    assert len(loaded.interactions) == 100836


def test_the_cache_serves_a_compressed_file_and_keys_on_its_bytes(
    plain_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gz = packed(tmp_path / "ratings.csv", plain_copy.read_bytes(), "gzip")
    first = loaded_hash(gz, use_cache=True)
    assert first == loaded_hash(plain_copy)

    def no_parse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again: the cache entry was not used")

    monkeypatch.setattr("bench.data.readers.read_ratings", no_parse)
    assert loaded_hash(gz, use_cache=True) == first  # from the cache, not parsed
    # the key covers the compressed file's bytes: same rows, other bytes, other entry
    again = gz.parent / "again.csv.gz"
    again.write_bytes(gzip.compress(plain_copy.read_bytes(), compresslevel=9))
    assert cache.source_key(again, {}) != cache.source_key(gz, {})
    with pytest.raises(AssertionError, match="parsed again"):
        loaded_hash(again, use_cache=True)


def test_a_semicolon_copy_of_the_real_ratings_is_read_with_the_separator_announced(
    plain_copy: Path, tmp_path: Path
) -> None:
    semi = tmp_path / "ratings.csv"
    semi.write_bytes(plain_copy.read_bytes().replace(b",", b";"))
    loaded = load_source(DataSource(ratings=semi, cache=False))
    assert loaded.interactions.hash == loaded_hash(plain_copy)
    assert loaded.info["reading"]["ratings"]["sep"] == ";"
    assert "fields separated by ';' (detected; --sep ';' sets it)" in " ".join(loaded.info["notes"])


def test_compressed_real_ratings_and_catalog_load_together(
    plain_copy: Path, data_dir: Path, tmp_path: Path
) -> None:
    movies = (data_dir / "ml-latest-small" / "movies.csv").read_bytes()
    ratings = packed(tmp_path / "ratings.csv", plain_copy.read_bytes(), "zstd")
    catalog = packed(tmp_path / "movies.csv", movies, "xz")
    loaded = load_source(DataSource(ratings=ratings, catalog=catalog, cache=False))
    plain = read_catalog(data_dir / "ml-latest-small" / "movies.csv")
    assert loaded.catalog is not None
    np.testing.assert_array_equal(loaded.catalog.item_id, plain.item_id)
    assert loaded.catalog.title.tolist() == plain.title.tolist()
    assert loaded.info["reading"]["catalog"]["compression"] == "xz"
    assert loaded.interactions.hash == loaded_hash(plain_copy)


# --------------------------------------------------------------------------- compressed files


@pytest.mark.parametrize("comp", list(PACKERS))
def test_every_compression_by_suffix_and_by_magic(tmp_path: Path, comp: str) -> None:
    for p in (
        packed(tmp_path / "r.csv", TINY, comp),
        packed(tmp_path / "r.csv", TINY, comp, name=f"plain-looking-{comp}.csv"),
    ):
        r = read_ratings(p)
        np.testing.assert_array_equal(r.user_id, [1, 1, 2])
        np.testing.assert_array_equal(r.rating, np.array([4.0, 3.5, 5.0], np.float32))


def test_format_is_told_from_the_suffix_before_the_compression() -> None:
    assert infer_format("ratings.csv.gz") == "csv"
    assert infer_format("u.data.bz2") == "tsv"
    assert infer_format("ratings.dat.xz") == "dat"
    assert infer_format("r.tsv.ZST") == "tsv"
    with pytest.raises(DataError, match=r"suffix ''.*optionally compressed.*ratings\.csv\.gz"):
        infer_format("ratings.gz")


def test_a_plain_file_named_gz_is_read_as_it_is(tmp_path: Path) -> None:
    p = tmp_path / "r.csv.gz"
    p.write_bytes(TINY)
    assert len(read_ratings(p)) == 3


def test_a_headerless_dat_and_a_tsv_compressed(tmp_path: Path) -> None:
    dat = packed(tmp_path / "ratings.dat", b"1::1193::5::978300760\n2::661::3::978302109\n", "bz2")
    plan = plan_table(dat, DEFAULT_RATING_COLUMNS, {})
    assert plan.info["header"] == "none (detected)" and plan.info["compression"] == "bz2"
    assert read_ratings(dat, **plan.options).item_id.tolist() == [1193, 661]
    tsv = packed(tmp_path / "u.data", b"196\t242\t3\t881250949\n186\t302\t5\t891717742\n", "xz")
    assert read_ratings(tsv).user_id.tolist() == [196, 186]


def test_a_latin1_compressed_catalog_is_detected(tmp_path: Path) -> None:
    movies = "1::Les Mis\xe9rables (1995)::Drama\n2::Am\xe9lie (2001)::Comedy\n".encode("latin-1")
    p = packed(tmp_path / "movies.dat", movies, "zstd")
    plan = plan_table(p, {"item": "movieId", "title": "title", "genres": "genres"}, {})
    assert any("latin-1" in n for n in plan.notes)
    assert read_catalog(p, **plan.options).title.tolist()[0] == "Les Mis\xe9rables (1995)"


def test_a_compressed_parquet_file(tmp_path: Path) -> None:
    raw = tmp_path / "r.parquet"
    table = pa.table({"userId": [1, 2], "movieId": [10, 20], "rating": [4.0, 2.0]})
    pq.write_table(table.append_column("timestamp", pa.array([100, 200])), raw)
    gz = packed(raw, raw.read_bytes(), "gzip")
    assert read_ratings(gz).item_id.tolist() == [10, 20]


@pytest.mark.parametrize("comp", list(PACKERS))
def test_cut_short_compressed_data_is_one_line_naming_the_compression(
    tmp_path: Path, comp: str
) -> None:
    # large enough that the cut falls beyond the first megabyte the plan reads
    rows = b"".join(b"%d,%d,4.0,%d\n" % (u, i, u * 7 + i) for u in range(400) for i in range(300))
    whole = packed(tmp_path / "r.csv", b"userId,movieId,rating,timestamp\n" + rows, comp)
    cut = tmp_path / ("cut" + whole.name)
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size * 2 // 3])
    ways: list[TableOptions] = [{}, {"header": True, "encoding": "utf-8"}]  # plan / reader
    for kw in ways:
        with pytest.raises(DataError) as err:
            read_ratings(cut, **kw)
        msg = str(err.value)
        assert msg.startswith(f"{cut}: the {comp} data is corrupt or cut short (")
        assert "\n" not in msg
        assert_printable(msg)


# --------------------------------------------------------------------------- separators


@pytest.mark.parametrize("sep", [";", "\t", "|", " ", "::"])
def test_the_separator_of_a_csv_is_detected(tmp_path: Path, sep: str) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(TINY.replace(b",", sep.encode()))
    plan = plan_table(p, DEFAULT_RATING_COLUMNS, {})
    assert plan.options.get("sep") == sep
    assert read_ratings(p).item_id.tolist() == [10, 20, 10]


def test_the_separator_of_a_headerless_compressed_file_is_detected(tmp_path: Path) -> None:
    p = packed(tmp_path / "r.csv", b"1;10;4.0;100\n2;20;3.5;200\n", "gzip")
    plan = plan_table(p, DEFAULT_RATING_COLUMNS, {})
    assert plan.options.get("sep") == ";" and plan.info["header"] == "none (detected)"
    assert read_ratings(p, **plan.options).user_id.tolist() == [1, 2]


def test_a_given_separator_is_kept_and_the_error_names_the_right_one(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(TINY.replace(b",", b";"))
    with pytest.raises(DataError, match=r"look separated by ';', not ',': pass --sep ';'"):
        read_ratings(p, sep=",")
    with pytest.raises(DataError, match=r"first line is one column.*pass the separator with --sep"):
        read_ratings(p, sep=",", header=True)


def test_a_tab_separated_csv_names_the_shell_form_of_a_tab(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(b"1\t10\t4.0\t100\n2\t20\t3.5\t200\n")
    with pytest.raises(DataError, match=r"pass --sep \$'\\t'"):
        read_ratings(p, sep=",")


def test_when_no_separator_fits_the_error_names_sep(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(b"userId#movieId#rating#timestamp\n1#10#4.0#100\n")
    with pytest.raises(DataError) as err:
        read_ratings(p)
    msg = str(err.value)
    assert "missing column 'userId'" in msg
    assert "if its fields are not separated by ',', pass the separator with --sep" in msg


def test_the_default_separator_wins_when_it_fits(tmp_path: Path) -> None:
    # a title with semicolons and pipes does not make the catalog's separator one of them
    p = tmp_path / "movies.csv"
    p.write_bytes(b'movieId,title,genres\n1,"A; B | C",Drama|Comedy\n2,D,Drama\n')
    assert (
        plan_table(p, {"item": "movieId", "title": "title", "genres": "genres"}, {}).options.get(
            "sep"
        )
        is None
    )
    assert read_catalog(p).title.tolist() == ["A; B | C", "D"]


# --------------------------------------------------------------------------- not text


@pytest.mark.parametrize(
    "content, pattern",
    [
        (bytes(range(256)) * 8, r"not a text file \(binary data in its first 2048 bytes\)"),
        (b"userId,movieId\n\x00\x01\x02,3\n", r"not a text file"),
        (b"PK\x03\x04" + bytes(200), r"it is a zip archive"),
        (b"7z\xbc\xaf\x27\x1c" + bytes(50), r"it is a 7z archive"),
        (b"PAR1" + bytes(50), r"it is a parquet file: give it the suffix \.parquet"),
        ("userId,movieId\n".encode("utf-16"), r"UTF-16 text.*save it as UTF-8"),
        (bytes(257) + b"ustar\x0000" + bytes(300), r"it is a tar archive: extract the table"),
        (b"", r"the file is empty; expected a csv table"),
    ],
)
def test_a_binary_file_is_refused_without_its_bytes(
    tmp_path: Path, content: bytes, pattern: str
) -> None:
    p = tmp_path / "ratings.csv"
    p.write_bytes(content)
    with pytest.raises(DataError, match=pattern) as err:
        read_ratings(p)
    assert_printable(str(err.value))


def test_gzip_inside_binary_garbage_is_not_printed(tmp_path: Path) -> None:
    # compressed random bytes: decompressed, then refused as binary, never shown
    p = packed(tmp_path / "r.csv", np.random.default_rng(0).bytes(5000), "gzip")
    with pytest.raises(DataError, match=r"not a text file") as err:
        read_ratings(p)
    assert_printable(str(err.value))


def test_control_characters_of_a_text_header_are_shown_escaped(tmp_path: Path) -> None:
    p = tmp_path / "r.csv"
    p.write_bytes(b"user\x1b[31mId,movieId,rating,timestamp\n" + b"1,10,4.0,100\n" * 200)
    with pytest.raises(DataError, match=r"columns found: user\\x1b\[31mId, movieId") as err:
        read_ratings(p)
    assert str(err.value).isprintable()
    with pytest.raises(DataError, match=r"columns found: user\\x1b\[31mId,movieId") as err:
        read_ratings(p, header=True, sep=";")
    assert str(err.value).isprintable()


def test_an_empty_or_tarred_compressed_file_says_what_it_is(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"empty\.csv\.gz: the file is empty"):
        read_ratings(packed(tmp_path / "empty.csv", b"", "gzip"))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("ratings.csv")
        info.size = len(TINY)
        tar.addfile(info, io.BytesIO(TINY))
    tgz = packed(tmp_path / "ml.tar", buf.getvalue(), "gzip", name="ratings.csv.gz")
    with pytest.raises(DataError, match=r"it is a tar archive: extract the table first"):
        read_ratings(tgz)
