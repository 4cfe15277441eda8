"""Hashed randomness: random numbers that are a function of (seed, key) per row, so that a
movie's random vector does not depend on the other movies, their order or the dataset
(splitmix64 streams; used by the ``random`` and ``kg_gnn`` builders)."""

from __future__ import annotations

import hashlib

import numpy as np
from numpy.typing import NDArray

__all__ = ["gaussian_rows", "hashed_uniform", "mix64", "string_keys"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """The splitmix64 finaliser, elementwise (wrapping uint64 arithmetic)."""
    x = np.asarray(x, dtype=np.uint64)
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def hashed_uniform(keys: NDArray[np.uint64], n: int, seed: int) -> NDArray[np.float64]:
    """(M, n) float64 uniforms in [0, 1): column j of row i is the j-th output of a splitmix64
    stream seeded by (seed, keys[i]). A row depends only on its key and the seed, never on the
    other rows or their order."""
    s = mix64(np.array([seed & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
    base = mix64(np.asarray(keys, dtype=np.uint64) ^ s)  # (M,)
    step = np.arange(1, n + 1, dtype=np.uint64) * _GOLDEN  # (n,)
    with np.errstate(over="ignore"):
        z = mix64(base[:, None] + step[None, :])  # (M, n)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))


def string_keys(strings: list[str]) -> NDArray[np.uint64]:
    """(K,) uint64 stable keys of strings (blake2b, 8 bytes)."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "little")
            for s in strings
        ],
        dtype=np.uint64,
    )


def gaussian_rows(keys: NDArray[np.uint64], dim: int, seed: int) -> NDArray[np.float32]:
    """(M, dim) float32 standard normal rows, row i a function of (seed, keys[i]) only
    (Box–Muller over ``hashed_uniform``), built in bounded chunks."""
    out = np.empty((keys.shape[0], dim), dtype=np.float32)
    half = (dim + 1) // 2
    for lo in range(0, keys.shape[0], 4096):
        u = hashed_uniform(keys[lo : lo + 4096], 2 * half, seed)
        r = np.sqrt(-2.0 * np.log1p(-u[:, :half]))  # 1 - u in (0, 1]
        t = 2.0 * np.pi * u[:, half:]
        out[lo : lo + 4096] = np.concatenate([r * np.cos(t), r * np.sin(t)], axis=1)[:, :dim]
    return out
