"""The Interactions cache: round trip, keys that follow the file, and entries never trusted."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from bench.data import cache
from bench.data.cache import (
    CacheWarning,
    cached_interactions,
    default_cache_dir,
    fingerprint,
    load_interactions,
    save_interactions,
    source_key,
)
from bench.data.split import make_split
from bench.data.types import Interactions

ARRAYS = (
    "user",
    "item",
    "rating",
    "timestamp",
    "user_offsets",
    "user_ids",
    "item_ids",
)


def assert_same(a: Interactions, b: Interactions) -> None:
    for name in ARRAYS:
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    assert (a.scale, a.name, a.hash, a.meta) == (b.scale, b.name, b.hash, b.meta)


def rewrite_member(entry: Path, name: str, new: np.ndarray) -> None:
    """Replace one array of an entry, keeping its metadata: a well-formed archive (valid
    zip CRCs) whose content no longer matches its checksum."""
    with np.load(entry) as z:
        members = {k: z[k] for k in z.files}
    members[name] = new
    with open(entry, "wb") as f:
        np.savez(f, **members)


def assert_rejected(cache_dir: Path, match: str | None = None, key: str = "k1") -> None:
    """Loading entry `key` from `cache_dir` warns (a CacheWarning matching `match`) and gives
    None."""
    with pytest.warns(CacheWarning, match=match):
        assert load_interactions(key, cache_dir) is None


@pytest.fixture
def saved(tiny: Interactions, tmp_path: Path) -> tuple[Interactions, Path]:
    inter = dataclasses.replace(tiny, meta={"note": "tiny", "n": 3})
    return inter, save_interactions(inter, "k1", tmp_path)


def test_round_trip_is_equal(saved: tuple[Interactions, Path], tmp_path: Path) -> None:
    inter, entry = saved
    assert entry == tmp_path / "k1.npz" and entry.is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # no temp left
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        back = load_interactions("k1", tmp_path)
    assert back is not None
    assert_same(inter, back)
    assert make_split(back).hash == make_split(inter).hash
    # uncompressed, with the JSON metadata inside the one file
    with zipfile.ZipFile(entry) as zf:
        assert {i.compress_type for i in zf.infolist()} == {zipfile.ZIP_STORED}
    with np.load(entry) as z:
        meta = json.loads(z["meta"].tobytes().decode())
    assert meta["hash"] == inter.hash and meta["n_ratings"] == len(inter) == 30
    assert meta["scale"] == {"low": 0.5, "high": 5.0, "step": 0.5}


def test_verification_hash_is_the_interactions_hash(tiny: Interactions) -> None:
    from bench.data.types import content_hash

    assert content_hash(tiny) == tiny.hash
    # chunking the streamed hash does not change it
    assert content_hash(tiny, chunk=4) == tiny.hash


def test_missing_entry_is_none_without_warning(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_interactions("absent", tmp_path) is None


def test_save_replaces_an_existing_entry(saved: tuple[Interactions, Path], tmp_path: Path) -> None:
    inter, _ = saved
    other = dataclasses.replace(inter, name="renamed")
    save_interactions(other, "k1", tmp_path)
    back = load_interactions("k1", tmp_path)
    assert back is not None and back.name == "renamed"


def test_key_follows_the_file(tmp_path: Path) -> None:
    f = tmp_path / "ratings.csv"
    f.write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n")
    k1 = source_key(f)
    assert source_key(f) == k1  # deterministic
    assert source_key(f, {"sep": ","}) != k1  # reader options are part of the key
    st = f.stat()
    # different content, same size, same mtime: the whole-file hash tells
    f.write_text("userId,movieId,rating,timestamp\n1,10,5.0,100\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    assert source_key(f) != k1
    # back to the first content with a new mtime: the same key (the content is what counts)
    f.write_text("userId,movieId,rating,timestamp\n1,10,4.0,100\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert source_key(f) == k1


def test_fingerprint_covers_every_byte_of_a_large_file(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = bytearray(rng.integers(0, 256, 5 * 1024 * 1024, dtype=np.uint8).tobytes())
    f = tmp_path / "big.bin"
    f.write_bytes(bytes(data))
    seen = {fingerprint(f)}
    positions = {0, len(data) - 1, *rng.integers(0, len(data), 8).tolist()}
    for pos in positions:
        data[pos] ^= 0x01  # one bit anywhere, size unchanged
        f.write_bytes(bytes(data))
        seen.add(fingerprint(f))
        data[pos] ^= 0x01
    assert len(seen) == 1 + len(positions)
    assert fingerprint(f) == hashlib.sha256(f.read_bytes()).hexdigest()


def _flip_16_middle_bytes(raw: bytes) -> bytes:
    out = bytearray(raw)
    mid = len(out) // 2
    out[mid : mid + 16] = bytes(b ^ 0xA5 for b in out[mid : mid + 16])
    return bytes(out)


def _truncate(raw: bytes) -> bytes:
    return raw[: len(raw) * 2 // 3]


@pytest.mark.parametrize(
    ("damage", "match"),
    [(_flip_16_middle_bytes, "corrupt"), (_truncate, None)],
    ids=["corrupt bytes", "truncated file"],
)
def test_damaged_bytes_give_none_and_delete(
    saved: tuple[Interactions, Path],
    tmp_path: Path,
    damage: Callable[[bytes], bytes],
    match: str | None,
) -> None:
    _, entry = saved
    entry.write_bytes(damage(entry.read_bytes()))
    assert_rejected(tmp_path, match)
    assert not entry.exists()


def test_empty_and_garbage_files_are_rejected(tmp_path: Path) -> None:
    for i, content in enumerate([b"", b"not a zip at all", b"PK\x03\x04" + b"\0" * 40]):
        entry = tmp_path / f"g{i}.npz"
        entry.write_bytes(content)
        assert_rejected(tmp_path, key=f"g{i}")
        assert not entry.exists()


def _another_rating(inter: Interactions) -> np.ndarray:
    rating = inter.rating.copy()
    rating[3] = 5.0 if rating[3] != 5.0 else 4.0
    return rating


def _another_user(inter: Interactions) -> np.ndarray:
    user = inter.user.copy()
    user[0] = (user[0] + 1) % inter.n_users  # still a valid code, wrong user
    return user


def _shifted_offsets(inter: Interactions) -> np.ndarray:
    off = inter.user_offsets.copy()
    off[1] += 1  # still non-decreasing from 0 to N: only the checksum can tell
    return off


@pytest.mark.parametrize(
    ("member", "change", "match"),
    [
        ("rating", _another_rating, "content hash"),
        ("user", _another_user, "content hash"),
        ("user_offsets", _shifted_offsets, "user_offsets"),
    ],
    ids=[
        "changed ratings fail the content hash",
        "swapped user codes fail the content hash",
        "changed offsets fail the aux checksum",
    ],
)
def test_a_changed_member_gives_none_and_delete(
    saved: tuple[Interactions, Path],
    tmp_path: Path,
    member: str,
    change: Callable[[Interactions], np.ndarray],
    match: str,
) -> None:
    inter, entry = saved
    rewrite_member(entry, member, change(inter))
    assert_rejected(tmp_path, match)
    assert not entry.exists()


def test_wrong_dtype_or_length_is_rejected(
    saved: tuple[Interactions, Path], tmp_path: Path
) -> None:
    inter, entry = saved
    rewrite_member(entry, "rating", inter.rating.astype(np.float64))
    assert_rejected(tmp_path, "rating")
    save_interactions(inter, "k2", tmp_path)
    rewrite_member(tmp_path / "k2.npz", "item", inter.item[:-1].copy())
    assert_rejected(tmp_path, "lengths", key="k2")


def test_other_format_version_is_rejected(
    saved: tuple[Interactions, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache, "CACHE_FORMAT", cache.CACHE_FORMAT + 1)
    assert_rejected(tmp_path, "format")


def test_bad_key_is_an_error(tmp_path: Path, tiny: Interactions) -> None:
    with pytest.raises(ValueError, match="cache key"):
        save_interactions(tiny, "../escape", tmp_path)


def test_cached_interactions_builds_once_then_rebuilds_after_corruption(
    tiny: Interactions, tmp_path: Path
) -> None:
    src = tmp_path / "ratings.csv"
    src.write_text("placeholder: the builder below does not read it\n")
    calls: list[int] = []

    def build() -> Interactions:
        calls.append(1)
        return tiny

    first = cached_interactions(src, build, cache_dir=tmp_path / "c")
    second = cached_interactions(src, build, cache_dir=tmp_path / "c")
    assert len(calls) == 1
    assert_same(first, second)
    (entry,) = (tmp_path / "c").glob("*.npz")
    entry.write_bytes(entry.read_bytes()[:100])
    with pytest.warns(CacheWarning):
        third = cached_interactions(src, build, cache_dir=tmp_path / "c")
    assert len(calls) == 2
    assert_same(first, third)
    assert load_interactions(entry.stem, tmp_path / "c") is not None  # saved again


def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RATINGBENCH_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "interactions"
    monkeypatch.delenv("RATINGBENCH_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "ratingbench" / "interactions"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == Path.home() / ".cache" / "ratingbench" / "interactions"


def test_meta_is_json_only(tiny: Interactions, tmp_path: Path) -> None:
    bad = dataclasses.replace(tiny, meta={"x": io.BytesIO()})
    with pytest.raises(TypeError):
        save_interactions(bad, "k3", tmp_path)
    assert not list(tmp_path.iterdir())  # nothing left behind
